package chem

import (
	"errors"
	"fmt"
)

// minDistance is the closest two atoms may be. The shortest real bond (H2) is 0.74 Å;
// anything under 0.5 Å is a duplicated atom or a unit mistake (Bohr vs Å, pm), and NWChem
// would either fail or compute nonsense for it.
const minDistance = 0.5

// maxCloseReports caps how many too-close pairs Validate lists, so that a file with every
// atom at the origin yields a readable message rather than thousands of lines.
const maxCloseReports = 5

// Validate checks that m with the requested charge and spin multiplicity can be computed,
// and returns every problem found, joined with errors.Join, so the user can fix them all
// in one go. The checks are: atoms present and at most MaxAtoms; known elements; finite
// coordinates; no two atoms closer than 0.5 Å; multiplicity at least 1; the electron count
// is positive and its parity fits the multiplicity (an even count needs an odd
// multiplicity and vice versa), with no more unpaired electrons than electrons.
// m.Charge is not consulted: charge is what the caller settled on, and a user may
// deliberately override the charge written in the file.
func Validate(m Molecule, charge, multiplicity int) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if len(m.Atoms) == 0 {
		add("the molecule has no atoms")
	}
	if len(m.Atoms) > MaxAtoms {
		add("the molecule has %d atoms; this tool handles at most %d", len(m.Atoms), MaxAtoms)
	}
	known := true
	for i, a := range m.Atoms {
		if _, ok := ElementNumber(a.Element); !ok {
			add("atom %d: unknown element %q", i+1, a.Element)
			known = false
		}
		if !finite(a) {
			add("atom %d (%s) has a coordinate that is not a finite number: %g %g %g",
				i+1, a.Element, a.X, a.Y, a.Z)
		}
	}
	if len(m.Atoms) <= MaxAtoms {
		errs = append(errs, closeContacts(m.Atoms)...)
	}
	if multiplicity < 1 {
		add("multiplicity must be 1 (singlet) or more, got %d", multiplicity)
	}
	if known && len(m.Atoms) > 0 {
		errs = append(errs, checkElectrons(Electrons(m, charge), charge, multiplicity)...)
	}
	return errors.Join(errs...)
}

// checkElectrons reports an electron count that no state with this multiplicity can have.
func checkElectrons(e, charge, mult int) []error {
	switch {
	case e < 0:
		return []error{fmt.Errorf("charge %d would leave %d electrons; the charge is too "+
			"positive for this molecule", charge, e)}
	case e == 0:
		return []error{fmt.Errorf("charge %d leaves no electrons; there is nothing to "+
			"compute", charge)}
	case mult < 1:
		return nil // already reported
	case (e+mult-1)%2 != 0:
		parity, other := "an even", mult+1
		if mult%2 == 0 {
			parity = "an odd"
		}
		if mult > 1 {
			other = mult - 1
		}
		return []error{fmt.Errorf("charge %d and multiplicity %d need %s number of "+
			"electrons, but the molecule has %d; set --multiplicity %d or --charge %d",
			charge, mult, parity, e, other, charge+1)}
	case mult-1 > e:
		return []error{fmt.Errorf("multiplicity %d needs %d unpaired electrons, but the "+
			"molecule has only %d electrons", mult, mult-1, e)}
	}
	return nil
}

// closeContacts reports atom pairs closer than minDistance, naming both atoms by 1-based
// index and element.
func closeContacts(atoms []Atom) []error {
	var errs []error
	extra := 0
	for i := range atoms {
		for j := i + 1; j < len(atoms); j++ {
			d := distance(atoms[i], atoms[j])
			if !(d < minDistance) {
				continue
			}
			if len(errs) == maxCloseReports {
				extra++
				continue
			}
			errs = append(errs, fmt.Errorf("atoms %d (%s) and %d (%s) are %.3f Å apart; "+
				"no bond is shorter than %.1f Å (duplicated atom, or coordinates not in Å?)",
				i+1, atoms[i].Element, j+1, atoms[j].Element, d, minDistance))
		}
	}
	if extra > 0 {
		errs = append(errs, fmt.Errorf("and %d more pairs of atoms closer than %.1f Å",
			extra, minDistance))
	}
	return errs
}

// Electrons is the electron count of m at the given net charge: the sum of atomic numbers
// minus the charge. Unknown elements count as 0; Validate reports them separately.
func Electrons(m Molecule, charge int) int {
	n := 0
	for _, a := range m.Atoms {
		z, _ := ElementNumber(a.Element)
		n += z
	}
	return n - charge
}

// Needs3D reports whether m lacks usable 3D coordinates and must be embedded (To3D) before
// a quantum-chemistry job can use it: all atoms at one point (a "0D" MOL as written for
// SMILES-derived records), a MOL header that says 2D, or, with no header hint, every z
// exactly 0. A single atom never needs 3D. A header that says 3D is believed even when the
// molecule is flat, because planar molecules (benzene) are legitimately drawn in z=0.
func Needs3D(m Molecule) bool {
	if len(m.Atoms) < 2 {
		return false
	}
	same, flat := true, true
	a0 := m.Atoms[0]
	for _, a := range m.Atoms {
		if a.X != a0.X || a.Y != a0.Y || a.Z != a0.Z {
			same = false
		}
		if a.Z != 0 {
			flat = false
		}
	}
	switch {
	case same:
		return true
	case m.Dimension == "3D":
		return false
	case m.Dimension == "2D":
		return true
	}
	return flat
}
