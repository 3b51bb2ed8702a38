// Package validate measures how close qmd's shifts come to experiment. It reads a
// validation set (molecules with measured 1H and 13C shifts), runs each molecule through
// a qmd daemon like any chemist's job, compares the computed shifts group by group, and
// writes a report with error statistics and plots. It also fits linear-scaling factors
// from such a report (Fit), so that qmd's own shieldings, not another program's, define
// how shieldings become shifts.
package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"unicode"
)

// Nuclei a set may hold.
const (
	NucleusH = "1H"
	NucleusC = "13C"
)

// Set is a validation set as stored on disk (see etc/validation/).
type Set struct {
	Description  string `json:"description"`
	Source       string `json:"source"`
	Verification string `json:"verification,omitempty"`
	Conditions   string `json:"conditions,omitempty"`
	// DefaultSubset names the molecules a quick run (make validate) computes; empty
	// means all of them.
	DefaultSubset []string   `json:"default_subset,omitempty"`
	Molecules     []Molecule `json:"molecules"`
}

// Molecule is one compound with its measured groups.
type Molecule struct {
	Name   string `json:"name"`
	SMILES string `json:"smiles"`
	// XYZ optionally gives a starting geometry whose heavy atoms come first and in SMILES
	// order; without it the geometry comes from Open Babel like any SMILES submission.
	XYZ    string  `json:"xyz,omitempty"`
	Groups []Group `json:"groups"`
	Note   string  `json:"note,omitempty"`
}

// Group is a set of atoms with one measured shift per solvent, or, for sites the
// molecular graph cannot tell apart but the spectrum can (the two N-methyls of DMF), one
// shift per site. Atoms are 0-based heavy-atom positions in the SMILES; for 1H they are
// the heavy atoms the protons sit on.
type Group struct {
	Label   string                `json:"label"`
	Nucleus string                `json:"nucleus"`
	Atoms   []int                 `json:"smiles_atom_idx"`
	Shift   map[string]ShiftValue `json:"shift"`
	// Exchangeable marks protons that exchange with water (OH, NH); Compare also detects
	// them from the atom they sit on.
	Exchangeable bool   `json:"exchangeable,omitempty"`
	Note         string `json:"note,omitempty"`
}

// ShiftValue is a single shift or, for a group of graph-equivalent sites with distinct
// lines, one per site (matched to the computed values in sorted order).
type ShiftValue []float64

// UnmarshalJSON accepts a number or a list of numbers.
func (v *ShiftValue) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) || bytes.Contains(b, []byte("null")) {
		return errors.New("shift is null; give a number, or leave the solvent out")
	}
	if len(b) > 0 && b[0] == '[' {
		var xs []float64
		if err := json.Unmarshal(b, &xs); err != nil {
			return err
		}
		*v = xs
		return nil
	}
	var x float64
	if err := json.Unmarshal(b, &x); err != nil {
		return fmt.Errorf("shift must be a number or a list of numbers: %w", err)
	}
	*v = ShiftValue{x}
	return nil
}

// MarshalJSON writes a single value as a number.
func (v ShiftValue) MarshalJSON() ([]byte, error) {
	if len(v) == 1 {
		return json.Marshal(v[0])
	}
	return json.Marshal([]float64(v))
}

// solventKeys maps the names sets use for NMR solvents to qmd's solvent names.
var solventKeys = map[string]string{
	"cdcl3": "chcl3", "chcl3": "chcl3", "chloroform": "chcl3", "chloroform-d": "chcl3",
	"dmso-d6": "dmso", "dmso": "dmso", "(cd3)2so": "dmso",
	"gas": "gas", "vacuum": "gas",
}

// maxName bounds molecule names, which appear in job names, tables and plot labels.
const maxName = 80

// Solvent returns qmd's name for a set's solvent key ("CDCl3" → "chcl3").
func Solvent(key string) (string, bool) {
	s, ok := solventKeys[strings.ToLower(strings.TrimSpace(key))]
	return s, ok
}

// Load reads and checks a set. Every problem is reported, each naming the molecule and
// group, so a hand-edited set can be mended in one pass.
func Load(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read validation set: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Set
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("validation set %s: %w", path, err)
	}
	if err := s.Check(); err != nil {
		return nil, fmt.Errorf("validation set %s: %w", path, err)
	}
	return &s, nil
}

// Check reports every inconsistency in the set.
func (s *Set) Check() error {
	var errs []error
	if len(s.Molecules) == 0 {
		errs = append(errs, errors.New("no molecules"))
	}
	names := map[string]bool{}
	for i, m := range s.Molecules {
		where := fmt.Sprintf("molecule %d (%s)", i+1, m.Name)
		switch {
		case strings.TrimSpace(m.Name) == "":
			errs = append(errs, fmt.Errorf("%s: no name", where))
		case names[m.Name]:
			errs = append(errs, fmt.Errorf("%s: name used twice", where))
		case len(m.Name) > maxName:
			errs = append(errs, fmt.Errorf("molecule %d: name is %d bytes; at most %d", i+1,
				len(m.Name), maxName))
		case strings.ContainsFunc(m.Name, func(r rune) bool {
			return !unicode.IsPrint(r) || r == '|'
		}):
			errs = append(errs, fmt.Errorf("molecule %d: name %q has a control character "+
				"or '|'; names appear in tables and plots", i+1, m.Name))
		}
		names[m.Name] = true
		if strings.TrimSpace(m.SMILES) == "" {
			errs = append(errs, fmt.Errorf("%s: no smiles", where))
		}
		if len(m.Groups) == 0 {
			errs = append(errs, fmt.Errorf("%s: no groups", where))
		}
		for j, g := range m.Groups {
			errs = append(errs, g.check(fmt.Sprintf("%s group %d (%s %s)", where, j+1,
				g.Nucleus, g.Label))...)
		}
	}
	for _, n := range s.DefaultSubset {
		if !names[n] {
			errs = append(errs, fmt.Errorf("default_subset names %q, which is not a molecule "+
				"of the set", n))
		}
	}
	return errors.Join(errs...)
}

func (g Group) check(where string) []error {
	var errs []error
	if g.Nucleus != NucleusH && g.Nucleus != NucleusC {
		errs = append(errs, fmt.Errorf("%s: nucleus %q (want %s or %s)", where, g.Nucleus,
			NucleusH, NucleusC))
	}
	if len(g.Atoms) == 0 {
		errs = append(errs, fmt.Errorf("%s: no atoms", where))
	}
	for i, a := range g.Atoms {
		if a < 0 {
			errs = append(errs, fmt.Errorf("%s: negative atom index %d", where, a))
		}
		if slices.Contains(g.Atoms[:i], a) {
			errs = append(errs, fmt.Errorf("%s: atom %d listed twice", where, a))
		}
	}
	seen := map[string]string{}
	for k := range g.Shift {
		if s, ok := Solvent(k); ok {
			if other, dup := seen[s]; dup {
				errs = append(errs, fmt.Errorf("%s: %q and %q are the same solvent", where,
					other, k))
			}
			seen[s] = k
		}
	}
	if len(g.Shift) == 0 {
		errs = append(errs, fmt.Errorf("%s: no shifts", where))
	}
	for k, v := range g.Shift {
		if _, ok := Solvent(k); !ok {
			errs = append(errs, fmt.Errorf("%s: unknown solvent %q (want CDCl3, DMSO-d6 or gas)",
				where, k))
		}
		if len(v) != 1 && len(v) != len(g.Atoms) {
			errs = append(errs, fmt.Errorf("%s: %d shifts for %d sites in %s; give one shift, "+
				"or one per site", where, len(v), len(g.Atoms), k))
		}
		if slices.ContainsFunc(v, func(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) }) {
			errs = append(errs, fmt.Errorf("%s: shift in %s is not a number", where, k))
		}
	}
	return errs
}

// Select returns the molecules to run: all of them when all is set or the set has no
// default subset, the default subset otherwise; names, when given, picks molecules by
// name instead, and an unknown name is an error.
func (s *Set) Select(all bool, names []string) ([]Molecule, error) {
	if len(names) > 0 {
		var out []Molecule
		for i, n := range names {
			if slices.Contains(names[:i], n) {
				return nil, fmt.Errorf("molecule %q named twice", n)
			}
			i := slices.IndexFunc(s.Molecules, func(m Molecule) bool { return m.Name == n })
			if i < 0 {
				return nil, fmt.Errorf("no molecule %q in the set", n)
			}
			out = append(out, s.Molecules[i])
		}
		return out, nil
	}
	if all || len(s.DefaultSubset) == 0 {
		return s.Molecules, nil
	}
	var out []Molecule
	for _, m := range s.Molecules {
		if slices.Contains(s.DefaultSubset, m.Name) {
			out = append(out, m)
		}
	}
	return out, nil
}

// ShiftIn returns the group's measured shifts in qmd's solvent (e.g. "chcl3").
func (g Group) ShiftIn(solvent string) (ShiftValue, bool) {
	for k, v := range g.Shift {
		if s, _ := Solvent(k); s == solvent {
			return v, true
		}
	}
	return nil, false
}
