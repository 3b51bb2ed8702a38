// Package conformer turns one molecule into the handful of conformers whose NMR shieldings
// have to be averaged. A flexible molecule such as diethyl ether or ethyl acetate is
// present in solution as several conformers, and the shifts a chemist measures are their
// Boltzmann average. qmd generates conformers with Open Babel (Generate), drops the
// high-energy ones and near-duplicates (Prune, RMSD), runs one DFT optimisation and NMR
// job per conformer, and averages the shieldings with weights from the final DFT
// energies (Weights, Average). RotatableBonds tells whether a search is worth running.
package conformer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"qmd/daemon/chem"
	"qmd/scheduler/runner"
)

// Defaults for Options. With them Generate takes about 2 s for diethyl ether and ethyl
// acetate and 6–11 s for octane or ibuprofen (measured on 2 cores, both busy with NWChem),
// which is acceptable while a job is being submitted.
const (
	DefaultMaxConformers = 20
	DefaultEnergyWindow  = 3.0  // kcal/mol
	DefaultRMSDThreshold = 0.25 // Å
	DefaultForceField    = "MMFF94"
	DefaultMinimizeSteps = 2000
	DefaultTimeout       = 60 * time.Second
)

// kJPerKcal converts Open Babel's kJ/mol force fields to kcal/mol.
const kJPerKcal = 4.184

// Options steer Generate. A zero field takes its default.
type Options struct {
	// Obabel is the Open Babel program; "obabel" on PATH when empty.
	Obabel string
	// MaxConformers is the population Open Babel's genetic search is asked for
	// (--nconf), and so an upper bound on the conformers returned. Default 20.
	MaxConformers int
	// EnergyWindow keeps conformers within this many kcal/mol of the lowest force-field
	// energy. Default 3.0: at 298 K a conformer 3 kcal/mol up has under 1 % of the
	// population, and force-field energies are rarely better than 1–2 kcal/mol, so the
	// window must be wider than the populations alone would suggest.
	EnergyWindow float64
	// RMSDThreshold, in Å over heavy atoms after superposition, below which two
	// conformers count as one and only the lower-energy one is kept. Default 0.25: the
	// two gauche forms of butane, distinct minima that must both be counted, are only
	// 0.47 Å apart, and anti versus gauche in diethyl ether 0.52 Å, while copies of one
	// minimum after Generate's minimisation lie within about 0.1 Å of each other.
	RMSDThreshold float64
	// ForceField is the Open Babel force field for the minimisation: MMFF94 (default),
	// MMFF94s, UFF, GAFF or Ghemical. When MMFF94 or MMFF94s has no parameters for the
	// molecule (selenium, most metals), Generate falls back to UFF.
	ForceField string
	// MinimizeSteps is the number of steepest-descent steps for the conformers that
	// survive a first pass of MinimizeSteps/4 steps (default 2000). Open Babel's
	// conjugate gradients stop early on these molecules (diethyl ether ends up to
	// 1.7 kcal/mol above the minimum), so steepest descent is used, and it converges
	// slowly. Measured on 20 ethyl acetate candidates against 20000 steps: after 250
	// steps they lie up to 5.9 kcal/mol and 0.33 Å (heavy atoms) from their minimum,
	// after 500 steps 1.4 kcal/mol and 0.22 Å, after 2000 steps 0.43 kcal/mol (mostly
	// methyl rotation) and 0.013 Å, which is what the window and Prune need. Time grows
	// in proportion.
	MinimizeSteps int
	// Timeout bounds each Open Babel run. Default 60 s.
	Timeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Obabel == "" {
		o.Obabel = "obabel"
	}
	if o.MaxConformers <= 0 {
		o.MaxConformers = DefaultMaxConformers
	}
	if o.EnergyWindow == 0 {
		o.EnergyWindow = DefaultEnergyWindow
	}
	if o.RMSDThreshold == 0 {
		o.RMSDThreshold = DefaultRMSDThreshold
	}
	if o.ForceField == "" {
		o.ForceField = DefaultForceField
	}
	if o.MinimizeSteps <= 0 {
		o.MinimizeSteps = DefaultMinimizeSteps
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// Conformer is one geometry of the molecule, atoms in the order of the input.
type Conformer struct {
	Atoms []chem.Atom
	// Energy is the force-field energy in kcal/mol of the minimised geometry, from
	// Options.ForceField, or UFF when that had no parameters. It is 0 for the input geometry
	// returned unsearched (no rotatable bonds, or no force field fits the molecule).
	Energy float64
	// ForceField names the force field Energy comes from, "" when none was run.
	ForceField string
}

// kcalForceFields and kJForceFields sort Open Babel's force fields by the unit of the
// energies it reports for them.
var kcalForceFields = map[string]bool{"MMFF94": true, "MMFF94s": true}
var kJForceFields = map[string]bool{"UFF": true, "GAFF": true, "Ghemical": true}

// Generate searches the conformers of mol with Open Babel and returns the pruned set,
// lowest force-field energy first, each with its atoms in exactly the order of mol.Atoms.
// That order is checked for every conformer (same elements in the same places, same
// bonds perceived from distances), because NMR shieldings are later matched by index.
//
// A molecule with no rotatable bonds (RotatableBonds) is returned as given, without
// running Open Babel. Otherwise Open Babel runs three times, single-threaded:
//
//  1. obabel -ixyz -osdf -O DIR/search.sdf --conformer --nconf N --score energy
//     --writeconformers, with the molecule as XYZ on standard input. This is Open Babel's
//     genetic algorithm: its first population holds up to N distinct torsion combinations
//     that pass a clash filter, and generations are then selected on force-field energy.
//     It is seeded the same way every run, so the result is reproducible, and N bounds
//     its cost, unlike --systematic (11 minutes for diethyl succinate) or Confab (which
//     writes no energies). The SDF keeps the bond orders Open Babel perceived, for the
//     force-field atom types of the next run.
//  2. obabel -isdf DIR/search.sdf -oxyz --minimize --ff FF --sd --steps S/4 --append
//     Energy: a rough minimisation of every candidate, each written with its energy
//     after the title. Prune then drops duplicates and candidates more than
//     EnergyWindow+3 kcal/mol up, the slack covering the unconverged energies.
//  3. The same with --steps S on the survivors, written to DIR/survivors.xyz; Prune with
//     EnergyWindow and RMSDThreshold gives the result.
//
// Files are used because the genetic algorithm prints its progress on standard output
// and Open Babel reads only the first molecule of XYZ on standard input, so r must run
// obabel on this machine (runner.Local). When MMFF94 or MMFF94s has no parameters for the
// molecule UFF is used instead. When Open Babel finds nothing, or no force field fits, the input
// geometry alone is returned, so a caller always has at least one conformer.
//
// Shortcomings: XYZ carries no formal charges, so Open Babel guesses them from the
// geometry and force-field energies of ions may be poor; ring conformations (chair and
// boat) are not searched, only torsions about rotatable bonds; and the result is at most
// N conformers, so for a molecule with many rotors (octane fills all 20) a set of
// symmetry-related copies may be cut part-way, which skews Boltzmann weights computed
// from it. Force-field minima can also merge or split on DFT optimisation, so the
// optimised geometries should go through Prune again before Weights.
func Generate(ctx context.Context, r runner.Runner, mol chem.Molecule, o Options) (
	[]Conformer, error) {
	o = o.withDefaults()
	if err := checkAtoms(mol.Atoms); err != nil {
		return nil, err
	}
	if !kcalForceFields[o.ForceField] && !kJForceFields[o.ForceField] {
		return nil, fmt.Errorf("conformer search: unknown force field %q; use MMFF94, "+
			"MMFF94s, UFF, GAFF or Ghemical", o.ForceField)
	}
	input := Conformer{Atoms: slices.Clone(mol.Atoms)}
	bonds := mol.Bonds
	if len(bonds) == 0 {
		bonds = chem.PerceiveBonds(mol.Atoms)
	}
	if RotatableBonds(mol.Atoms, bonds) == 0 {
		return []Conformer{input}, nil
	}

	dir, err := os.MkdirTemp("", "qmd-conformer-")
	if err != nil {
		return nil, fmt.Errorf("conformer search: %w", err)
	}
	defer os.RemoveAll(dir)
	search := filepath.Join(dir, "search.sdf")
	argv := []string{o.Obabel, "-ixyz", "-osdf", "-O", search,
		"--conformer", "--nconf", strconv.Itoa(o.MaxConformers), "--score", "energy",
		"--writeconformers"}
	res, err := r.Run(ctx, runner.Command{Argv: argv, Stdin: []byte(chem.FormatXYZ("qmd", mol.Atoms)),
		Timeout: o.Timeout, Env: obabelEnv})
	if err != nil {
		return nil, fmt.Errorf("Open Babel conformer search: %w", err)
	}
	if info, err := os.Stat(search); err != nil || info.Size() == 0 {
		return nil, fmt.Errorf("Open Babel conformer search wrote no conformers: %s",
			reason(res.Stderr))
	}

	// Run 2, a short minimisation of every candidate, is enough to sort out duplicates
	// and clearly high ones; run 3 converges the survivors.
	ff := o.ForceField
	in := []string{"-isdf", search}
	rough, err := minimise(ctx, r, o, ff, in, o.MinimizeSteps/stage1Fraction, mol.Atoms)
	if errors.Is(err, errNoForceField) && kcalForceFields[ff] {
		ff = "UFF"
		rough, err = minimise(ctx, r, o, ff, in, o.MinimizeSteps/stage1Fraction, mol.Atoms)
	}
	if errors.Is(err, errNoForceField) {
		return []Conformer{input}, nil
	}
	if err != nil {
		return nil, err
	}
	rough = Prune(rough, o.EnergyWindow+stage1Slack, o.RMSDThreshold)
	if len(rough) == 0 {
		return []Conformer{input}, nil
	}
	// A file, not standard input: Open Babel reads only the first molecule of an XYZ
	// stream on standard input.
	var xyz []byte
	for _, c := range rough {
		xyz = append(xyz, chem.FormatXYZ("qmd", c.Atoms)...)
	}
	survivors := filepath.Join(dir, "survivors.xyz")
	if err := os.WriteFile(survivors, xyz, 0o600); err != nil {
		return nil, fmt.Errorf("conformer search: %w", err)
	}
	fine, err := minimise(ctx, r, o, ff, []string{"-ixyz", survivors}, o.MinimizeSteps,
		mol.Atoms)
	if err != nil {
		return nil, err
	}
	kept := Prune(fine, o.EnergyWindow, o.RMSDThreshold)
	if len(kept) == 0 {
		return []Conformer{input}, nil
	}
	if len(kept) > o.MaxConformers {
		kept = kept[:o.MaxConformers]
	}
	return kept, nil
}

// stage1Fraction and stage1Slack set the first, rough minimisation: it takes
// MinimizeSteps/stage1Fraction steps, after which energies can still be 1.4 kcal/mol
// high (ethyl acetate after 500 steps), so its window is EnergyWindow+stage1Slack.
const (
	stage1Fraction = 4
	stage1Slack    = 3.0 // kcal/mol
)

// obabelEnv runs Open Babel single-threaded. Debian's build parallelises the force
// field with OpenMP, which gains nothing on molecules this small and, when NWChem jobs
// hold the other cores, makes its threads wait on each other: a 1.1 s minimisation of
// diethyl ether took 59 s next to two busy NWChem processes, and 0.4 s with one thread.
var obabelEnv = []string{"OMP_NUM_THREADS=1"}

// errNoForceField is Open Babel failing to set up a force field for the molecule.
var errNoForceField = errors.New("the force field has no parameters for this molecule")

// minimise runs Open Babel's steepest-descent minimisation with force field ff on every
// conformer of the input file (in: format option and path) and reads back geometries
// and energies, converted to kcal/mol.
// Conformers whose bonds, as perceived from distances, differ from those of atoms are
// dropped: the force field has broken or made a bond, and such a geometry is not a
// conformer of the molecule.
func minimise(ctx context.Context, r runner.Runner, o Options, ff string, in []string,
	steps int, atoms []chem.Atom) ([]Conformer, error) {
	argv := append([]string{o.Obabel}, in...)
	argv = append(argv, "-oxyz", "--minimize", "--ff", ff, "--sd",
		"--steps", strconv.Itoa(max(steps, 1)), "--append", "Energy")
	res, err := r.Run(ctx, runner.Command{Argv: argv, Timeout: o.Timeout, Env: obabelEnv})
	if err != nil {
		return nil, fmt.Errorf("Open Babel %s minimisation: %w", ff, err)
	}
	if bytes.Contains(res.Stderr, []byte("Could not setup force field")) &&
		len(bytes.TrimSpace(res.Stdout)) == 0 {
		return nil, errNoForceField
	}
	blocks, err := xyzBlocks(res.Stdout, len(atoms))
	if err != nil {
		return nil, fmt.Errorf("reading Open Babel's minimised conformers: %w", err)
	}
	scale := 1.0
	if kJForceFields[ff] {
		scale = 1 / kJPerKcal
	}
	want := chem.PerceiveBonds(atoms)
	var cs []Conformer
	for k, b := range blocks {
		mols, err := chem.Parse("xyz", b)
		if err == nil && len(mols) != 1 {
			err = fmt.Errorf("%d molecules in one block", len(mols))
		}
		if err == nil {
			err = sameAtoms(atoms, mols[0].Atoms)
		}
		var e float64
		if err == nil {
			e, err = titleEnergy(mols[0].Title)
		}
		if err != nil {
			return nil, fmt.Errorf("Open Babel's minimised conformer %d: %v", k+1, err)
		}
		if !slices.Equal(chem.PerceiveBonds(mols[0].Atoms), want) {
			continue
		}
		cs = append(cs, Conformer{Atoms: mols[0].Atoms, Energy: e * scale, ForceField: ff})
	}
	return cs, nil
}

// xyzBlocks cuts Open Babel's XYZ output into one block per conformer. Each block is the
// count line, the title and n atom lines, so the cut needs no parsing, and each block is
// parsed on its own, well under chem.Parse's size limit whatever the number of
// conformers. A count line other than n means Open Babel changed the atoms.
func xyzBlocks(out []byte, n int) ([][]byte, error) {
	lines := bytes.SplitAfter(out, []byte("\n"))
	var blocks [][]byte
	for i := 0; i < len(lines); {
		if len(bytes.TrimSpace(lines[i])) == 0 {
			i++
			continue
		}
		if got := string(bytes.TrimSpace(lines[i])); got != strconv.Itoa(n) {
			return nil, fmt.Errorf("line %d: expected the atom count %d, got %q", i+1, n,
				got)
		}
		if i+n+2 > len(lines) {
			return nil, fmt.Errorf("line %d: the output ends inside a conformer", i+1)
		}
		blocks = append(blocks, bytes.Join(lines[i:i+n+2], nil))
		i += n + 2
	}
	return blocks, nil
}

// titleEnergy reads the energy that --append Energy adds as the last word of the title.
func titleEnergy(title string) (float64, error) {
	f := strings.Fields(title)
	if len(f) == 0 {
		return 0, errors.New("no energy in the title line")
	}
	e, err := strconv.ParseFloat(f[len(f)-1], 64)
	if err != nil || math.IsNaN(e) || math.IsInf(e, 0) {
		return 0, fmt.Errorf("cannot read an energy from the title %q", title)
	}
	return e, nil
}

// sameAtoms checks that Open Babel kept the atoms and their order: it would add hydrogens
// to an atom it takes for under-valent, and any change would attach shieldings to the
// wrong atoms.
func sameAtoms(want, got []chem.Atom) error {
	if len(got) != len(want) {
		return fmt.Errorf("has %d atoms, the input %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Element != want[i].Element {
			return fmt.Errorf("atom %d is %s, in the input %s", i+1, got[i].Element,
				want[i].Element)
		}
	}
	return nil
}

// checkAtoms refuses input that Open Babel could not be given as XYZ.
func checkAtoms(atoms []chem.Atom) error {
	if len(atoms) == 0 {
		return errors.New("conformer search: the molecule has no atoms")
	}
	for i, a := range atoms {
		if _, ok := chem.ElementNumber(a.Element); !ok {
			return fmt.Errorf("conformer search: atom %d has unknown element %q", i+1,
				a.Element)
		}
		for _, x := range []float64{a.X, a.Y, a.Z} {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("conformer search: atom %d has a non-finite coordinate",
					i+1)
			}
		}
	}
	return nil
}

// reason picks Open Babel's explanation out of its stderr, without the conversion count.
func reason(stderr []byte) string {
	var lines []string
	for _, l := range strings.Split(string(stderr), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "===") || strings.HasSuffix(l, "converted") {
			continue
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		return "Open Babel gave no reason"
	}
	return strings.Join(lines, "; ")
}
