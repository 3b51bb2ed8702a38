package chem

import (
	"strconv"
	"strings"
)

// parseMolfile reads MDL molfiles: a single MOL, or an SDF whose records end in "$$$$".
// V2000 and V3000 records may be mixed. Data items after "M  END" are skipped, since the
// daemon needs only the structure. Blank lines after the last record are ignored, but a
// blank first line inside a record is a legitimate empty title.
func parseMolfile(lines []string) ([]Molecule, error) {
	var mols []Molecule
	i := 0
	for !allBlank(lines[i:]) {
		m, next, err := parseMolRecord(lines, i)
		if err != nil {
			return nil, err
		}
		mols = append(mols, m)
		i = next
		for i < len(lines) && strings.TrimSpace(lines[i]) != "$$$$" {
			i++
		}
		if i < len(lines) {
			i++
		}
	}
	return mols, nil
}

// parseMolRecord reads the record whose title line is lines[start] and returns it with
// the index of the first line after its connection table.
func parseMolRecord(lines []string, start int) (Molecule, int, error) {
	if len(lines)-start < 4 {
		return Molecule{}, 0, inputErrorf(len(lines)+1, "the file ends inside the MOL "+
			"header (title, program and comment lines, then the counts line)")
	}
	for k := start + 1; k < start+4; k++ {
		if strings.TrimSpace(lines[k]) == "$$$$" {
			return Molecule{}, 0, inputErrorf(k+1, "record ends inside the MOL header")
		}
	}
	m := Molecule{Title: cleanTitle(lines[start])}
	if h := lines[start+1]; len(h) >= 22 {
		if d := h[20:22]; d == "2D" || d == "3D" {
			m.Dimension = d
		}
	}
	counts := lines[start+3]
	if strings.Contains(counts, "V3000") {
		return parseV3000(m, lines, start+4)
	}
	return parseV2000(m, lines, start+3)
}

// fixedInt reads columns [from,to) of s as an integer, as the V2000 fixed-width layout
// prescribes.
func fixedInt(s string, from, to int) (int, bool) {
	if len(s) < to {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(s[from:to]))
	return n, err == nil
}

// twoInts reads the first two integers of a V2000 counts or bond line: by fixed columns
// first, then as whitespace-separated fields, because some writers misalign the columns.
func twoInts(s string) (int, int, bool) {
	a, okA := fixedInt(s, 0, 3)
	b, okB := fixedInt(s, 3, 6)
	if okA && okB {
		return a, b, true
	}
	f := strings.Fields(s)
	if len(f) < 2 {
		return 0, 0, false
	}
	a, errA := strconv.Atoi(f[0])
	b, errB := strconv.Atoi(f[1])
	return a, b, errA == nil && errB == nil
}

// parseV2000 reads the counts line at lines[c], the atom and bond blocks and the
// properties block up to "M  END".
func parseV2000(m Molecule, lines []string, c int) (Molecule, int, error) {
	na, nb, ok := twoInts(lines[c])
	if !ok || na < 0 || nb < 0 {
		return m, 0, inputErrorf(c+1, "expected the counts line (atoms, bonds), got %s",
			quoteLine(lines[c]))
	}
	i := c + 1
	m.Atoms = make([]Atom, 0, min(na, len(lines)-i))
	atomCharge, atomChargeSeen := 0, false
	for k := 0; k < na; k++ {
		if i >= len(lines) || isBlockEnd(lines[i]) {
			return m, 0, inputErrorf(c+1, "the counts line says %d atoms, but only %d "+
				"atom lines follow", na, k)
		}
		a, code, err := parseV2000Atom(lines[i], i+1)
		if err != nil {
			return m, 0, err
		}
		if q := chargeCode(code); q != 0 {
			atomCharge += q
			atomChargeSeen = true
		}
		m.Atoms = append(m.Atoms, a)
		i++
	}
	seen := make(map[[2]int]bool, min(nb, len(lines)-i))
	for k := 0; k < nb; k++ {
		if i >= len(lines) || isBlockEnd(lines[i]) {
			return m, 0, inputErrorf(c+1, "the counts line says %d bonds, but only %d "+
				"bond lines follow", nb, k)
		}
		a, b, ok := twoInts(lines[i])
		if !ok {
			return m, 0, inputErrorf(i+1, "expected a bond line (atom, atom, type), got %s",
				quoteLine(lines[i]))
		}
		if err := addBond(&m, seen, a, b, i+1); err != nil {
			return m, 0, err
		}
		i++
	}
	chg, chgSeen := 0, false
	for i < len(lines) {
		l, skip := lines[i], 0
		if strings.HasPrefix(l, "M  END") {
			i++
			break
		}
		if strings.HasPrefix(l, ">") || strings.TrimSpace(l) == "$$$$" {
			break // "M  END" is missing; tolerate it, the blocks are complete
		}
		switch {
		case strings.HasPrefix(l, "M  CHG"):
			q, err := parseChgLine(l, i+1, len(m.Atoms))
			if err != nil {
				return m, 0, err
			}
			chg += q
			chgSeen = true
		case strings.HasPrefix(l, "A  "), strings.HasPrefix(l, "G  "):
			skip = 1 // atom alias and group abbreviation take a second line of text
		case strings.HasPrefix(l, "S  SKP"):
			if n, err := strconv.Atoi(strings.TrimSpace(l[6:])); err == nil && n > 0 {
				skip = min(n, len(lines))
			}
		}
		i++
		// Skipped lines never include "$$$$", so records always end where SplitSDF
		// cuts them.
		for ; skip > 0 && i < len(lines) && strings.TrimSpace(lines[i]) != "$$$$"; skip-- {
			i++
		}
	}
	// In V2000, any "M  CHG" line supersedes the atom block's charge column entirely.
	switch {
	case chgSeen:
		m.Charge = &chg
	case atomChargeSeen:
		m.Charge = &atomCharge
	}
	return m, min(i, len(lines)), nil
}

// isBlockEnd reports lines that cannot belong to an atom or bond block: the end of the
// connection table, an SDF data header, or the record separator.
func isBlockEnd(l string) bool {
	return strings.HasPrefix(l, "M  ") || strings.HasPrefix(l, ">") ||
		strings.TrimSpace(l) == "$$$$"
}

// chargeCode converts the V2000 atom block's charge column (1=+3 ... 7=-3, 4 = doublet
// radical) into a formal charge.
func chargeCode(code int) int {
	if code >= 1 && code <= 7 && code != 4 {
		return 4 - code
	}
	return 0
}

// parseV2000Atom reads one atom line by its fixed columns (x 0-10, y 10-20, z 20-30,
// symbol 31-34, charge code 36-39), falling back to whitespace-separated fields.
func parseV2000Atom(s string, line int) (Atom, int, error) {
	var xs, ys, zs, sym, code string
	if len(s) >= 34 && isFloat(s[0:10]) && isFloat(s[10:20]) && isFloat(s[20:30]) &&
		strings.TrimSpace(s[31:34]) != "" {
		xs, ys, zs, sym = s[0:10], s[10:20], s[20:30], s[31:34]
		if len(s) >= 39 {
			code = s[36:39]
		}
	} else {
		f := strings.Fields(s)
		if len(f) < 4 {
			return Atom{}, 0, inputErrorf(line, "expected an atom line (x y z symbol), "+
				"got %s", quoteLine(s))
		}
		xs, ys, zs, sym = f[0], f[1], f[2], f[3]
		if len(f) >= 6 {
			code = f[5]
		}
	}
	a, err := makeAtom(strings.TrimSpace(sym), xs, ys, zs, line)
	if err != nil {
		return Atom{}, 0, err
	}
	n, _ := strconv.Atoi(strings.TrimSpace(code))
	return a, n, nil
}

// isFloat reports whether a fixed-width field holds a number.
func isFloat(s string) bool {
	_, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return err == nil
}

// makeAtom builds an atom from a symbol and coordinate text.
func makeAtom(sym, xs, ys, zs string, line int) (Atom, error) {
	el, ok := normaliseElement(sym)
	if !ok {
		return Atom{}, inputErrorf(line, "unknown element %q", sym)
	}
	a := Atom{Element: el}
	var err error
	for _, p := range []struct {
		dst *float64
		s   string
	}{{&a.X, xs}, {&a.Y, ys}, {&a.Z, zs}} {
		if *p.dst, err = parseCoord(strings.TrimSpace(p.s), line); err != nil {
			return Atom{}, err
		}
	}
	return a, nil
}

// addBond records a bond given 1-based atom numbers, refusing numbers outside the atom
// block and bonds from an atom to itself, and dropping duplicates.
func addBond(m *Molecule, seen map[[2]int]bool, a, b, line int) error {
	n := len(m.Atoms)
	if a < 1 || a > n || b < 1 || b > n {
		return inputErrorf(line, "bond between atoms %d and %d, but there are only %d atoms",
			a, b, n)
	}
	if a == b {
		return inputErrorf(line, "bond from atom %d to itself", a)
	}
	p := normalisePair(a-1, b-1)
	if !seen[p] {
		seen[p] = true
		m.Bonds = append(m.Bonds, p)
	}
	return nil
}

// parseChgLine sums an "M  CHGnn8 aaa vvv ..." line.
func parseChgLine(l string, line, natoms int) (int, error) {
	f := strings.Fields(l[6:])
	bad := inputErrorf(line, "cannot read the charge line %s", quoteLine(l))
	if len(f) < 1 {
		return 0, bad
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 0 || len(f) < 1+2*n {
		return 0, bad
	}
	sum := 0
	for k := 0; k < n; k++ {
		atom, err1 := strconv.Atoi(f[1+2*k])
		q, err2 := strconv.Atoi(f[2+2*k])
		if err1 != nil || err2 != nil {
			return 0, bad
		}
		if atom < 1 || atom > natoms {
			return 0, inputErrorf(line, "charge on atom %d, but there are only %d atoms",
				atom, natoms)
		}
		if q < -15 || q > 15 {
			return 0, inputErrorf(line, "charge %d on atom %d is out of range", q, atom)
		}
		sum += q
	}
	return sum, nil
}

// v30Line is one logical "M  V30" line after continuation lines are joined.
type v30Line struct {
	line   int // 1-based line of its first physical line
	tokens []string
}

// parseV3000 reads the V3000 connection table that starts at lines[i] (after the counts
// line) up to "M  END". Only the top-level CTAB's ATOM and BOND blocks are used; other
// blocks (SGROUP, COLLECTION, templates) are skipped, since they do not change which atoms
// exist or how they are connected.
func parseV3000(m Molecule, lines []string, i int) (Molecule, int, error) {
	var v30 []v30Line
	for i < len(lines) {
		l := lines[i]
		if strings.HasPrefix(l, "M  END") {
			i++
			break
		}
		if strings.HasPrefix(l, ">") || strings.TrimSpace(l) == "$$$$" {
			break
		}
		if !strings.HasPrefix(l, "M  V30") {
			i++
			continue
		}
		first := i + 1
		part := strings.TrimPrefix(l, "M  V30")
		var content strings.Builder // a Builder, since a hostile file may continue for ever
		for strings.HasSuffix(part, "-") && i+1 < len(lines) &&
			strings.HasPrefix(lines[i+1], "M  V30") {
			content.WriteString(strings.TrimSuffix(part, "-"))
			i++
			part = strings.TrimPrefix(lines[i], "M  V30 ")
		}
		content.WriteString(part)
		v30 = append(v30, v30Line{line: first, tokens: tokenizeV30(content.String())})
		i++
	}

	var stack []string
	idx := map[int]int{} // V3000 atom number -> position in m.Atoms
	seen := map[[2]int]bool{}
	countsLine, na, nb, nBondLines := 0, 0, 0, 0
	chg, chgSeen, ctabSeen := 0, false, false
	for _, v := range v30 {
		t := v.tokens
		if len(t) == 0 {
			continue
		}
		where := strings.Join(stack, "/")
		switch {
		case t[0] == "BEGIN" && len(t) > 1:
			stack = append(stack, t[1])
			if strings.Join(stack, "/") == "CTAB" {
				ctabSeen = true
			}
		case t[0] == "END" && len(t) > 1:
			if len(stack) == 0 || stack[len(stack)-1] != t[1] {
				return m, 0, inputErrorf(v.line, "END %s without a matching BEGIN %s",
					t[1], t[1])
			}
			stack = stack[:len(stack)-1]
		case where == "CTAB" && t[0] == "COUNTS":
			if len(t) < 3 {
				return m, 0, inputErrorf(v.line, "COUNTS needs the atom and bond counts")
			}
			var err1, err2 error
			na, err1 = strconv.Atoi(t[1])
			nb, err2 = strconv.Atoi(t[2])
			if err1 != nil || err2 != nil || na < 0 || nb < 0 {
				return m, 0, inputErrorf(v.line, "cannot read the COUNTS line")
			}
			countsLine = v.line
		case where == "CTAB/ATOM":
			q, hasQ, err := addV3000Atom(&m, idx, t, v.line)
			if err != nil {
				return m, 0, err
			}
			if hasQ {
				chg += q
				chgSeen = true
			}
		case where == "CTAB/BOND":
			if len(t) < 4 {
				return m, 0, inputErrorf(v.line, "expected a bond line (index type atom "+
					"atom), got %d fields", len(t))
			}
			a, errA := strconv.Atoi(t[2])
			b, errB := strconv.Atoi(t[3])
			if errA != nil || errB != nil {
				return m, 0, inputErrorf(v.line, "cannot read the atoms of bond %s", t[0])
			}
			pa, okA := idx[a]
			pb, okB := idx[b]
			if !okA || !okB {
				return m, 0, inputErrorf(v.line, "bond %s refers to atom %d or %d, which "+
					"is not in the atom block", t[0], a, b)
			}
			if err := addBond(&m, seen, pa+1, pb+1, v.line); err != nil {
				return m, 0, err
			}
			nBondLines++
		}
	}
	if !ctabSeen {
		return m, 0, inputErrorf(0, "V3000 record %q has no \"BEGIN CTAB\" block", m.Title)
	}
	if len(stack) != 0 {
		return m, 0, inputErrorf(0, "V3000 block %q is never closed with END %s",
			stack[len(stack)-1], stack[len(stack)-1])
	}
	if countsLine > 0 && (na != len(m.Atoms) || nb != nBondLines) {
		return m, 0, inputErrorf(countsLine, "COUNTS says %d atoms and %d bonds, but the "+
			"blocks hold %d atoms and %d bonds", na, nb, len(m.Atoms), nBondLines)
	}
	if chgSeen {
		m.Charge = &chg
	}
	return m, i, nil
}

// addV3000Atom reads "index type x y z aamap [KEY=value ...]" and returns its CHG= value.
func addV3000Atom(m *Molecule, idx map[int]int, t []string, line int) (int, bool, error) {
	if len(t) < 5 {
		return 0, false, inputErrorf(line, "expected an atom line (index type x y z aamap), "+
			"got %d fields", len(t))
	}
	n, err := strconv.Atoi(t[0])
	if err != nil || n < 1 {
		return 0, false, inputErrorf(line, "atom index %q is not a positive number", t[0])
	}
	if _, dup := idx[n]; dup {
		return 0, false, inputErrorf(line, "atom index %d appears twice", n)
	}
	sym := t[1]
	if len(sym) >= 2 && sym[0] == '"' && sym[len(sym)-1] == '"' {
		sym = sym[1 : len(sym)-1]
	}
	a, err := makeAtom(sym, t[2], t[3], t[4], line)
	if err != nil {
		return 0, false, err
	}
	q, hasQ := 0, false
	for _, kv := range t[min(6, len(t)):] {
		v, ok := strings.CutPrefix(kv, "CHG=")
		if !ok {
			continue
		}
		if q, err = strconv.Atoi(v); err != nil || q < -15 || q > 15 {
			return 0, false, inputErrorf(line, "cannot read the charge %q", kv)
		}
		hasQ = true
	}
	idx[n] = len(m.Atoms)
	m.Atoms = append(m.Atoms, a)
	return q, hasQ, nil
}

// tokenizeV30 splits a V3000 line at blanks, keeping parenthesised lists such as
// "ENDPTS=(3 1 2 3)" and double-quoted strings in one token.
func tokenizeV30(s string) []string {
	var out []string
	var cur strings.Builder
	depth, quoted := 0, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case quoted:
		case r == '(':
			depth++
		case r == ')' && depth > 0:
			depth--
		case (r == ' ' || r == '\t') && depth == 0:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
			continue
		}
		cur.WriteRune(r)
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}
