// Package shifts turns GIAO shieldings into 1H and 13C chemical shifts.
//
// A shielding means nothing to a chemist until it is referenced, and the reference must
// match the level of theory and solvent of the calculation, so every result carries the
// Reference it used. Two methods exist: TMS referencing (δ = σ_TMS − σ, with TMS computed
// at the same level) and linear scaling fitted against experiment (δ = slope·σ + intercept).
package shifts

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"qmd/ctl/api"
)

// Methods of referencing.
const (
	MethodTMS    = "tms"
	MethodLinear = "linear"
)

// Presets and solvents the shipped references cover (see package level for the full set
// offered to users).
const (
	PresetDraft      = "draft"
	PresetProduction = "production"
	SolventGas       = "gas"
	SolventCHCl3     = "chcl3"
	SolventDMSO      = "dmso"
)

// ErrNoReference is wrapped by For when no reference exists for a preset and solvent, so
// the daemon can tell "not computed yet" from a bad request.
var ErrNoReference = errors.New("no reference shieldings")

// Reference is how shieldings computed at one level and solvent become shifts.
type Reference struct {
	// Preset is "draft" or "production"; Solvent is "gas", "chcl3" or "dmso".
	Preset, Solvent string
	// Method is MethodTMS or MethodLinear.
	Method string
	// TMSH and TMSC are the TMS shieldings at the same level and solvent (MethodTMS);
	// zero means unknown, and that element then gets no shift.
	TMSH, TMSC float64
	// δ = slope·σ + intercept (MethodLinear); a zero slope means no factors for that element.
	SlopeH, InterceptH, SlopeC, InterceptC float64
	// Level is the level of theory, e.g. "B3LYP/6-31G*//B3LYP/6-31G* COSMO(chcl3)".
	Level string
	// Source says how the values were obtained, with citations.
	Source string
}

type key struct{ preset, solvent, method string }

func keyOf(preset, solvent, method string) key {
	norm := func(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
	return key{norm(preset), norm(solvent), norm(method)}
}

var (
	mu       sync.RWMutex
	registry = func() map[key]Reference {
		m := make(map[key]Reference, len(shipped))
		for _, r := range shipped {
			m[keyOf(r.Preset, r.Solvent, r.Method)] = r
		}
		return m
	}()
)

// Register adds or replaces a reference, keyed by preset, solvent and method, so that TMS
// shieldings computed by the daemon after start-up take effect without a new release.
func Register(r Reference) {
	k := keyOf(r.Preset, r.Solvent, r.Method)
	r.Preset, r.Solvent, r.Method = k.preset, k.solvent, k.method
	mu.Lock()
	defer mu.Unlock()
	registry[k] = r
}

func lookup(preset, solvent, method string) (Reference, bool) {
	mu.RLock()
	defer mu.RUnlock()
	r, ok := registry[keyOf(preset, solvent, method)]
	return r, ok
}

// TMS returns the TMS-referenced Reference for preset and solvent, if known.
func TMS(preset, solvent string) (Reference, bool) {
	return lookup(preset, solvent, MethodTMS)
}

// Linear returns the linear-scaling Reference for preset and solvent, if known.
func Linear(preset, solvent string) (Reference, bool) {
	return lookup(preset, solvent, MethodLinear)
}

// For returns the reference qmd uses by default. Production uses linear scaling, because
// TMS referencing at that level is poor for 13C (ethanol CH3/CH2 off by 3–7 ppm) while the
// DELTA50 fit is not. Draft uses the factors qmd fit-scaling fitted on qmd's own draft
// shieldings when they exist (scaling.json, or the daemon's scaling_file), and TMS
// otherwise; factors from other programs transfer badly, so none are borrowed. Without
// such a reference the error (wrapping ErrNoReference) names the missing one rather than
// falling back to a reference of another level, which would give plausible-looking wrong
// shifts.
func For(preset, solvent string) (Reference, error) {
	k := keyOf(preset, solvent, "")
	switch k.preset {
	case PresetProduction:
		if r, ok := Linear(k.preset, k.solvent); ok {
			return r, nil
		}
		return Reference{}, fmt.Errorf("shifts: %w: no linear scaling factors for preset "+
			"%s in solvent %q", ErrNoReference, k.preset, k.solvent)
	case PresetDraft:
		if r, ok := Linear(k.preset, k.solvent); ok {
			return r, nil
		}
		if r, ok := TMS(k.preset, k.solvent); ok {
			return r, nil
		}
		return Reference{}, fmt.Errorf("shifts: %w: TMS shieldings for preset %s in "+
			"solvent %q have not been computed (TMS at B3LYP/6-31G*//B3LYP/6-31G*, %s)",
			ErrNoReference, k.preset, k.solvent, solventModel(k.solvent))
	}
	return Reference{}, fmt.Errorf("shifts: unknown preset %q (want %s or %s)",
		preset, PresetDraft, PresetProduction)
}

func solventModel(solvent string) string {
	if solvent == SolventGas {
		return "gas phase"
	}
	return "COSMO " + solvent
}

// AtomShift is one atom of a result. Its fields and order are those of api.Shift, so
// api.Shift(a) converts it.
type AtomShift struct {
	Atom      int      `json:"atom"` // 1-based, input order
	Element   string   `json:"element"`
	Shielding float64  `json:"shielding"` // the atom's own value, rounded to 4 decimals
	Shift     *float64 `json:"shift"`     // from the group mean; nil for other elements
	BondedTo  *int     `json:"bonded_to"` // 1-based heavy atom an H sits on
	Group     int      `json:"group"`
}

// Compute references shieldings[i] of atom i (elements[i]). Only H and C get a shift.
//
// Atoms that share a groups value and an element are chemically equivalent (a CH3's three
// H, say): their shift comes from the mean shielding of the group, because a single
// conformer's H shieldings differ by tenths of a ppm while the experiment, averaged by fast
// rotation, shows one line. Each atom's Shielding stays its own value. groups may be nil
// (no averaging; Group is then the atom number). bondedHeavy[i] is the 0-based index of
// the heavy atom atom i is bonded to, or -1; it may be nil. Shifts are rounded to 0.01 ppm
// and shieldings to 0.0001 ppm, the precision NWChem prints.
//
// The result has one entry per shielding; a missing element gives no shift. Shifts are
// nil, not guessed, when the reference lacks a value for the element or the method is
// unknown.
func Compute(ref Reference, elements []string, shieldings []float64, groups []int,
	bondedHeavy []int) []AtomShift {
	type gkey struct {
		group int
		elem  string
	}
	type acc struct {
		sum float64
		n   int
	}
	n := len(shieldings)
	elem := func(i int) string {
		if i < len(elements) {
			return strings.TrimSpace(elements[i])
		}
		return ""
	}
	group := func(i int) int {
		if i < len(groups) {
			return groups[i]
		}
		return i + 1
	}
	sums := make(map[gkey]acc)
	for i := 0; i < n; i++ {
		k := gkey{group(i), strings.ToUpper(elem(i))}
		a := sums[k]
		a.sum += shieldings[i]
		a.n++
		sums[k] = a
	}
	out := make([]AtomShift, n)
	for i := 0; i < n; i++ {
		a := AtomShift{Atom: i + 1, Element: elem(i), Shielding: round(shieldings[i], 4),
			Group: group(i)}
		g := sums[gkey{a.Group, strings.ToUpper(a.Element)}]
		if d, ok := ref.Shift(a.Element, g.sum/float64(g.n)); ok {
			d = round(d, 2)
			a.Shift = &d
		}
		if i < len(bondedHeavy) && bondedHeavy[i] >= 0 && bondedHeavy[i] < n {
			b := bondedHeavy[i] + 1
			a.BondedTo = &b
		}
		out[i] = a
	}
	return out
}

// Shift references one shielding, unrounded; false when r has no value for the element.
// Compute uses it for whole results; the validation harness for single sites.
func (r Reference) Shift(element string, sigma float64) (float64, bool) {
	if math.IsNaN(sigma) || math.IsInf(sigma, 0) {
		return 0, false
	}
	isH, isC := strings.EqualFold(element, "H"), strings.EqualFold(element, "C")
	var d float64
	switch {
	case r.Method == MethodTMS && isH && r.TMSH != 0:
		d = r.TMSH - sigma
	case r.Method == MethodTMS && isC && r.TMSC != 0:
		d = r.TMSC - sigma
	case r.Method == MethodLinear && isH && r.SlopeH != 0:
		d = r.SlopeH*sigma + r.InterceptH
	case r.Method == MethodLinear && isC && r.SlopeC != 0:
		d = r.SlopeC*sigma + r.InterceptC
	default:
		return 0, false
	}
	return d, !math.IsNaN(d) && !math.IsInf(d, 0)
}

// round rounds half away from zero and never returns negative zero, which would print
// as "-0" in results.
func round(x float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	r := math.Round(x*p) / p
	if r == 0 {
		return 0
	}
	return r
}

// API is the reference as reported with a result. api.Reference has no fields for scaling
// factors, so for linear scaling the factors are appended to Source: a result must say
// exactly how its shifts were obtained.
func (r Reference) API() api.Reference {
	a := api.Reference{Method: r.Method, Level: r.Level, Solvent: r.Solvent, Source: r.Source}
	switch r.Method {
	case MethodTMS:
		if r.TMSH != 0 {
			h := r.TMSH
			a.H = &h
		}
		if r.TMSC != 0 {
			c := r.TMSC
			a.C = &c
		}
	case MethodLinear:
		f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
		a.Source += fmt.Sprintf("; 1H: δ = %s·σ + %s; 13C: δ = %s·σ + %s",
			f(r.SlopeH), f(r.InterceptH), f(r.SlopeC), f(r.InterceptC))
	}
	return a
}
