// Package nwchem reads NWChem 7.0.2 output and decides whether a run succeeded.
//
// NWChem can exit 0 after a failure, and its non-zero exit codes are MPI_ABORT codes that do
// not name the cause, so qmd judges a run from the text NWChem printed: Parse pulls out the
// numbers qmd keeps (energy, optimised geometry, GIAO shieldings), and Check combines the
// parsed output with stderr and the exit status into a Failure a chemist can act on.
package nwchem

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Atom is one row of NWChem's "Output coordinates in angstroms" table. NWChem re-centres and
// re-orients the molecule, so these are not in the input frame; the atom order is kept.
type Atom struct {
	Element string  `json:"element"`
	X       float64 `json:"x"`
	Y       float64 `json:"y"`
	Z       float64 `json:"z"`
}

// Shielding is one atom's GIAO shielding in ppm.
type Shielding struct {
	Atom       int     `json:"atom"` // 1-based, input order
	Element    string  `json:"element"`
	Isotropic  float64 `json:"isotropic"`
	Anisotropy float64 `json:"anisotropy"`
}

// Output holds what qmd needs from one NWChem output. Zero values mean "not printed": the
// flags and counts, not the numbers, tell a finished run from a truncated one.
type Output struct {
	Energy       float64     `json:"energy"` // last "Total DFT energy", hartree
	HasEnergy    bool        `json:"has_energy"`
	OptConverged bool        `json:"opt_converged"` // "Optimization converged" seen
	OptFailed    bool        `json:"opt_failed"`    // maximum number of steps reached
	OptSteps     int         `json:"opt_steps"`     // number on the last "@ <step>" line
	Geometry     []Atom      `json:"geometry"`      // table after the last converged marker, Å
	Shieldings   []Shielding `json:"shieldings"`    // last GIAO section only
	Finished     bool        `json:"finished"`      // "Total times  cpu: … wall: …" printed
	Version      string      `json:"version"`       // e.g. "7.0.2"
	Solvent      string      `json:"solvent"`       // COSMO solvname_short, "" without COSMO
	// SolventLong is COSMO's solvname_long. NWChem prints "unknown" for a solvent name it
	// does not know and then silently uses water, so Check needs it to reject such runs.
	SolventLong string  `json:"solvent_long"`
	Dielectric  float64 `json:"dielectric"` // COSMO dielec, 0 without COSMO
}

// maxLine bounds one output line. NWChem pads some lines to a few hundred columns; anything
// beyond this is not NWChem output, and failing beats holding an unbounded line in memory.
const maxLine = 4 << 20

// num matches a Fortran real: plain, E or D exponent (NWChem prints "-1.3D-08").
const num = `([-+]?(?:\d+\.?\d*|\.\d+)(?:[EeDd][-+]?\d+)?)`

var (
	reVersion   = regexp.MustCompile(`Northwest Computational Chemistry Package \(NWChem\)\s+(\S+)`)
	reBranch    = regexp.MustCompile(`^\s*nwchem branch\s*=\s*(\S+)`)
	reEnergy    = regexp.MustCompile(`^\s*Total DFT energy\s*=\s*` + num)
	reStep      = regexp.MustCompile(`^@\s*(\d+)\s`)
	reConverged = regexp.MustCompile(`^\s*Optimization converged\s*$`)
	reOptFailed = regexp.MustCompile(`Failed to converge in maximum number of steps`)
	reCoordHead = regexp.MustCompile(`^\s*Output coordinates in angstroms`)
	reCoordRow  = regexp.MustCompile(`^\s*(\d+)\s+(\S+)` +
		strings.Repeat(`\s+`+num, 4) + `\s*$`) // index, tag, charge, x, y, z
	reGIAO       = regexp.MustCompile(`Chemical Shielding Tensors \(GIAO`)
	reShieldAtom = regexp.MustCompile(`^\s*Atom:\s+(\d+)\s+(\S+)`)
	reIsotropic  = regexp.MustCompile(`^\s*isotropic\s*=\s*` + num)
	reAnisotropy = regexp.MustCompile(`^\s*anisotropy\s*=\s*` + num)
	reTaskTimes  = regexp.MustCompile(`^\s*Task\s+times\s+cpu:`)
	reTotalTimes = regexp.MustCompile(`^\s*Total times\s+cpu:.*wall:`)
	reSolvShort  = regexp.MustCompile(`^\s*solvname_short:\s*(\S+)`)
	reSolvLong   = regexp.MustCompile(`^\s*solvname_long:\s*(.*\S)`)
	reDielec     = regexp.MustCompile(`^\s*dielec:\s*` + num)
)

// parseFloat accepts Fortran D exponents, which strconv does not.
func parseFloat(s string) (float64, bool) {
	s = strings.Map(func(r rune) rune {
		if r == 'D' || r == 'd' {
			return 'E'
		}
		return r
	}, s)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// echoTracker skips the deck that "echo" copies to the top of the output, so a title or
// comment in the user's deck can never be mistaken for a marker NWChem printed.
type echoTracker struct{ in bool }

// skip reports whether line belongs to the echoed deck (including its frame lines).
func (e *echoTracker) skip(line string) bool {
	t := strings.TrimSpace(line)
	if !e.in {
		if strings.HasPrefix(t, "=") && strings.Contains(t, "echo of input deck") {
			e.in = true
			return true
		}
		return false
	}
	if t != "" && strings.Trim(t, "=") == "" {
		e.in = false
	}
	return true
}

// Geometry table states.
const (
	geomIdle   = iota
	geomHeader // header seen, column titles and dashes may follow
	geomRows   // reading atom rows
)

// maxGeomJunk is how many lines (titles, dashes) may sit between the coordinate header and
// the first atom row before the table is given up on.
const maxGeomJunk = 6

type parser struct {
	out  Output
	echo echoTracker

	geomWanted bool // a converged marker was seen and its table not read yet
	geomState  int
	geomJunk   int
	geom       []Atom

	inGIAO  bool
	curAtom int // index of the GIAO "Atom:" block being read, 0 if none
	curElem string
	curIso  bool // isotropic already taken for curAtom
	curAni  bool
}

// Parse reads NWChem output line by line; it keeps no more than one line and the results in
// memory, so multi-megabyte outputs are fine. It is tolerant of truncated output: whatever
// was printed is returned. The error is non-nil only when reading fails (including a line
// longer than 4 MiB); the Output returned with it holds what was read up to that point.
func Parse(r io.Reader) (*Output, error) {
	p := &parser{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxLine)
	for sc.Scan() {
		p.line(sc.Text())
	}
	p.flushGeometry()
	if err := sc.Err(); err != nil {
		return &p.out, fmt.Errorf("nwchem: reading output: %w", err)
	}
	return &p.out, nil
}

func (p *parser) line(line string) {
	if p.echo.skip(line) {
		return
	}
	if p.geomState != geomIdle && p.geometryLine(line) {
		return
	}
	// strings.Contains guards keep the regexps off the vast majority of lines.
	switch {
	case strings.Contains(line, "Total DFT energy") && reEnergy.MatchString(line):
		if v, ok := parseFloat(reEnergy.FindStringSubmatch(line)[1]); ok {
			p.out.Energy, p.out.HasEnergy = v, true
		}
	case strings.HasPrefix(line, "@"):
		if m := reStep.FindStringSubmatch(line); m != nil {
			if n, err := strconv.Atoi(m[1]); err == nil {
				p.out.OptSteps = n
			}
		}
	case strings.Contains(line, "Optimization converged") && reConverged.MatchString(line):
		p.out.OptConverged = true
		p.geomWanted = true
	case strings.Contains(line, "Failed to converge") && reOptFailed.MatchString(line):
		p.out.OptFailed = true
	case strings.Contains(line, "Output coordinates") && reCoordHead.MatchString(line):
		if p.geomWanted {
			p.geomState, p.geomJunk, p.geom = geomHeader, 0, nil
		}
	case strings.Contains(line, "Chemical Shielding") && reGIAO.MatchString(line):
		p.inGIAO, p.curAtom = true, 0
		p.out.Shieldings = nil
	case p.inGIAO && p.giaoLine(line):
	case strings.Contains(line, "Total times") && reTotalTimes.MatchString(line):
		p.out.Finished = true
	case strings.Contains(line, "solvname_") || strings.Contains(line, "dielec:"):
		p.solventLine(line)
	case strings.Contains(line, "Northwest Computational Chemistry Package"):
		if m := reVersion.FindStringSubmatch(line); m != nil && p.out.Version == "" {
			p.out.Version = m[1]
		}
	case strings.Contains(line, "nwchem branch"):
		if m := reBranch.FindStringSubmatch(line); m != nil && p.out.Version == "" {
			p.out.Version = m[1]
		}
	}
}

// geometryLine consumes a line of the coordinate table; false hands it back to line().
func (p *parser) geometryLine(line string) bool {
	m := reCoordRow.FindStringSubmatch(line)
	if m != nil {
		idx, _ := strconv.Atoi(m[1])
		x, okx := parseFloat(m[4])
		y, oky := parseFloat(m[5])
		z, okz := parseFloat(m[6])
		if idx == len(p.geom)+1 && okx && oky && okz {
			p.geom = append(p.geom, Atom{Element: elementOf(m[2]), X: x, Y: y, Z: z})
			p.geomState = geomRows
			return true
		}
	}
	if p.geomState == geomHeader {
		p.geomJunk++
		if p.geomJunk > maxGeomJunk {
			p.geomState = geomIdle
			return false
		}
		return true
	}
	p.flushGeometry()
	return false
}

// flushGeometry publishes a finished table; the last converged optimisation wins.
func (p *parser) flushGeometry() {
	if p.geomState == geomRows && len(p.geom) > 0 {
		p.out.Geometry = p.geom
		p.geomWanted = false
	}
	p.geomState, p.geom = geomIdle, nil
}

// giaoLine handles the per-atom blocks of the GIAO section; false if the line is not one.
func (p *parser) giaoLine(line string) bool {
	if reTaskTimes.MatchString(line) {
		p.inGIAO, p.curAtom = false, 0
		return true
	}
	if m := reShieldAtom.FindStringSubmatch(line); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n <= 0 {
			p.curAtom = 0
			return true
		}
		p.curAtom, p.curElem, p.curIso, p.curAni = n, elementOf(m[2]), false, false
		return true
	}
	if p.curAtom == 0 {
		return false
	}
	if m := reIsotropic.FindStringSubmatch(line); m != nil {
		if v, ok := parseFloat(m[1]); ok && !p.curIso {
			p.out.Shieldings = append(p.out.Shieldings,
				Shielding{Atom: p.curAtom, Element: p.curElem, Isotropic: v})
			p.curIso = true
		}
		return true
	}
	if m := reAnisotropy.FindStringSubmatch(line); m != nil {
		if v, ok := parseFloat(m[1]); ok && p.curIso && !p.curAni {
			p.out.Shieldings[len(p.out.Shieldings)-1].Anisotropy = v
			p.curAni = true
		}
		return true
	}
	return false
}

func (p *parser) solventLine(line string) {
	if m := reSolvShort.FindStringSubmatch(line); m != nil {
		p.out.Solvent = m[1]
	} else if m := reSolvLong.FindStringSubmatch(line); m != nil {
		p.out.SolventLong = m[1]
	} else if m := reDielec.FindStringSubmatch(line); m != nil {
		if v, ok := parseFloat(m[1]); ok {
			p.out.Dielectric = v
		}
	}
}

// symbols lists element symbols so that NWChem tags such as "C1" or "Hb" map to an element
// the rest of qmd understands. Two-letter symbols are tried first, as NWChem does.
var symbols = func() map[string]string {
	const list = "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni " +
		"Cu Zn Ga Ge As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba " +
		"La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po " +
		"At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn " +
		"Nh Fl Mc Lv Ts Og"
	m := make(map[string]string)
	for _, s := range strings.Fields(list) {
		m[strings.ToLower(s)] = s
	}
	return m
}()

// elementOf turns an NWChem atom tag into an element symbol; an unrecognised tag (a ghost
// "bq" atom, say) is returned unchanged rather than guessed.
func elementOf(tag string) string {
	letters := tag
	for i, r := range tag {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z') {
			letters = tag[:i]
			break
		}
	}
	l := strings.ToLower(letters)
	if strings.HasPrefix(l, "bq") {
		return tag // ghost atom: a basis centre without a nucleus
	}
	if len(l) >= 2 {
		if s, ok := symbols[l[:2]]; ok {
			return s
		}
	}
	if len(l) >= 1 {
		if s, ok := symbols[l[:1]]; ok {
			return s
		}
	}
	return tag
}
