package chem

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// parseXYZ reads one or more concatenated XYZ blocks (atom count, title, atom lines), the
// layout trajectory writers and "cat a.xyz b.xyz" both produce. Blank lines between and
// after blocks are skipped. The count is checked against the atom lines in both directions,
// since a wrong count is the commonest hand-editing mistake and would otherwise silently
// drop atoms or swallow the next block.
func parseXYZ(lines []string) ([]Molecule, error) {
	var mols []Molecule
	lastCount := 0 // 1-based count line of the previous block
	i := 0
	for {
		for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
			i++
		}
		if i >= len(lines) {
			break
		}
		countLine := i + 1
		fields := strings.Fields(lines[i])
		n, err := strconv.Atoi(fields[0])
		if err != nil {
			if len(mols) > 0 && looksLikeAtomLine(lines[i]) {
				return nil, inputErrorf(countLine, "more atom lines than the atom count "+
					"%d on line %d says", len(mols[len(mols)-1].Atoms), lastCount)
			}
			return nil, inputErrorf(countLine, "expected the number of atoms, got %s",
				quoteLine(lines[i]))
		}
		if n < 0 {
			return nil, inputErrorf(countLine, "negative atom count %d", n)
		}
		i++
		if i >= len(lines) {
			return nil, inputErrorf(countLine+1, "the file ends where the title line "+
				"should be")
		}
		m := Molecule{Title: cleanTitle(lines[i]), Dimension: "3D"}
		i++
		m.Atoms = make([]Atom, 0, min(n, len(lines)-i))
		for k := 0; k < n; k++ {
			if i >= len(lines) || isCountLine(lines[i]) || strings.TrimSpace(lines[i]) == "" {
				return nil, inputErrorf(countLine, "the atom count says %d atoms, "+
					"but only %d atom lines follow", n, k)
			}
			a, err := parseXYZAtom(lines[i], i+1)
			if err != nil {
				return nil, err
			}
			m.Atoms = append(m.Atoms, a)
			i++
		}
		if len(m.Atoms) <= perceiveLimit {
			m.Bonds = PerceiveBonds(m.Atoms)
		}
		mols = append(mols, m)
		lastCount = countLine
	}
	return mols, nil
}

// isCountLine reports whether a line is a lone integer, i.e. the start of the next block.
func isCountLine(s string) bool {
	f := strings.Fields(s)
	if len(f) != 1 {
		return false
	}
	_, err := strconv.Atoi(f[0])
	return err == nil
}

// looksLikeAtomLine reports whether a line parses as an XYZ atom line.
func looksLikeAtomLine(s string) bool {
	_, err := parseXYZAtom(s, 0)
	return err == nil
}

// parseXYZAtom reads "El x y z" where El is a symbol in any case or an atomic number.
// Further columns (charges, forces in extended XYZ) are ignored.
func parseXYZAtom(s string, line int) (Atom, error) {
	f := strings.Fields(s)
	if len(f) < 4 {
		return Atom{}, inputErrorf(line, "expected an atom line \"element x y z\", got %s",
			quoteLine(s))
	}
	el, err := parseElement(f[0], line)
	if err != nil {
		return Atom{}, err
	}
	var xyz [3]float64
	for k := range xyz {
		if xyz[k], err = parseCoord(f[k+1], line); err != nil {
			return Atom{}, err
		}
	}
	return Atom{Element: el, X: xyz[0], Y: xyz[1], Z: xyz[2]}, nil
}

// parseElement accepts a symbol in any case or an atomic number.
func parseElement(s string, line int) (string, error) {
	if z, err := strconv.Atoi(s); err == nil {
		if sym, ok := ElementSymbol(z); ok {
			return sym, nil
		}
		return "", inputErrorf(line, "unknown element %q (atomic numbers run from 1 to %d)",
			s, MaxElement)
	}
	if sym, ok := normaliseElement(s); ok {
		return sym, nil
	}
	return "", inputErrorf(line, "unknown element %q", s)
}

// parseCoord reads one coordinate. NaN and infinities are refused here, with the line,
// rather than left for Validate, because the line number is what the user needs.
func parseCoord(s string, line int) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, inputErrorf(line, "coordinate %s is out of range", quoteLine(s))
	}
	if err != nil {
		return 0, inputErrorf(line, "coordinate %s is not a number", quoteLine(s))
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, inputErrorf(line, "coordinate %s is not a finite number", quoteLine(s))
	}
	return v, nil
}

// FormatXYZ writes atoms as an XYZ file (count, title, one atom per line, Å with eight
// decimals): job directories' geometry.xyz, conformer searches' input to Open Babel and
// the validation harness's submissions all use it.
func FormatXYZ(title string, atoms []Atom) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d\n%s\n", len(atoms), strings.ReplaceAll(title, "\n", " "))
	for _, a := range atoms {
		fmt.Fprintf(&b, "%-2s %14.8f %14.8f %14.8f\n", a.Element, a.X, a.Y, a.Z)
	}
	return b.String()
}
