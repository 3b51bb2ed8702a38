package chem

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"qmd/scheduler/runner"
)

// MaxSMILES is the longest SMILES string accepted. Anything longer describes a molecule
// far beyond MaxAtoms, and the limit keeps argv small.
const MaxSMILES = 2000

// obabelTimeout bounds one Open Babel run so a stuck embedding cannot hold a submission.
// --gen3d takes about a second for small drug-like molecules and about ten seconds for a
// 120-atom alkane; molecules near MaxAtoms may need the caller to allow more.
const obabelTimeout = 60 * time.Second

// obabelEnv runs Open Babel on one thread. By default its OpenMP code takes every core,
// and next to running NWChem jobs those threads wait on each other: a 3D embedding that
// takes 0.1 s alone took two minutes on a busy two-core login node.
var obabelEnv = []string{"OMP_NUM_THREADS=1"}

// smilesPunct are the non-alphanumeric characters SMILES uses.
const smilesPunct = "[]()=#$:/\\@+-%.*"

// plausibleSMILES reports whether s passes CheckSMILES and every letter outside bracket
// atoms belongs to an organic-subset atom (B C N O P S F Cl Br I, aromatic b c n o p s).
// DetectFormat uses it so that a title word or a PDB record is not taken for SMILES.
func plausibleSMILES(s string) bool {
	if CheckSMILES(s) != nil {
		return false
	}
	inBracket := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '[':
			inBracket = true
		case c == ']':
			inBracket = false
		case inBracket:
		case strings.HasPrefix(s[i:], "Cl"), strings.HasPrefix(s[i:], "Br"):
			i++
		case strings.IndexByte("BCNOPSFIbcnops", c) >= 0:
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
			return false
		}
	}
	return true
}

func isSMILESRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		strings.ContainsRune(smilesPunct, r)
}

// CheckSMILES rejects a SMILES string before it reaches Open Babel: empty, longer than
// MaxSMILES, containing whitespace, control or non-SMILES characters, starting with '-'
// (a bond to nothing, and a string that a program could take for an option), with
// unbalanced brackets or parentheses (Open Babel silently drops an unclosed branch), or
// with a '*' wildcard atom, which has no element to compute. Errors are *InputError.
func CheckSMILES(s string) error {
	if s == "" {
		return inputErrorf(0, "the SMILES string is empty")
	}
	if len(s) > MaxSMILES {
		return inputErrorf(0, "the SMILES string is %d characters long; the limit is %d",
			len(s), MaxSMILES)
	}
	for i, r := range s {
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || r < 0x20 || r == 0x7f:
			return inputErrorf(0, "the SMILES string contains whitespace or a control "+
				"character at position %d; give the SMILES alone, without a name", i+1)
		case !isSMILESRune(r):
			return inputErrorf(0, "the SMILES string contains %q at position %d, which is "+
				"not a SMILES character", r, i+1)
		}
	}
	if s[0] == '-' {
		return inputErrorf(0, "the SMILES string starts with '-', a bond with no atom "+
			"before it")
	}
	inBracket, depth := false, 0
	for i, r := range s {
		switch r {
		case '[':
			if inBracket {
				return inputErrorf(0, "SMILES: '[' at position %d inside another bracket "+
					"atom", i+1)
			}
			inBracket = true
		case ']':
			if !inBracket {
				return inputErrorf(0, "SMILES: ']' at position %d closes no bracket atom", i+1)
			}
			inBracket = false
		case '(':
			depth++
		case ')':
			if depth == 0 {
				return inputErrorf(0, "SMILES: ')' at position %d closes no branch", i+1)
			}
			depth--
		case '*':
			return inputErrorf(0, "SMILES: wildcard atom '*' at position %d has no element; "+
				"replace it with a real atom", i+1)
		}
	}
	if inBracket {
		return inputErrorf(0, "SMILES: a bracket atom '[' is never closed with ']'")
	}
	if depth != 0 {
		return inputErrorf(0, "SMILES: %d branch(es) opened with '(' are never closed", depth)
	}
	return nil
}

// SMILESCharge sums the formal charges written on bracket atoms ("[NH4+]", "[O-]",
// "[Fe+2]", "[N++]"); atoms outside brackets are neutral by the SMILES rules, so this is
// the net charge of the molecule. It is computed here rather than asked of Open Babel
// because its XYZ output carries no charges.
func SMILESCharge(s string) (int, error) {
	total := 0
	for rest := s; ; {
		open := strings.IndexByte(rest, '[')
		if open < 0 {
			return total, nil
		}
		end := strings.IndexByte(rest[open:], ']')
		if end < 0 {
			return 0, inputErrorf(0, "SMILES: a bracket atom '[' is never closed with ']'")
		}
		atom := rest[open+1 : open+end]
		rest = rest[open+end+1:]
		if c := strings.IndexByte(atom, ':'); c >= 0 {
			atom = atom[:c] // atom class
		}
		k := strings.IndexAny(atom, "+-")
		if k < 0 {
			continue
		}
		sign := 1
		if atom[k] == '-' {
			sign = -1
		}
		tail := atom[k+1:]
		q := 1
		switch {
		case tail == "":
		case tail[0] >= '0' && tail[0] <= '9':
			n, err := strconv.Atoi(tail)
			if err != nil || n > 15 {
				return 0, inputErrorf(0, "SMILES: cannot read the charge of [%s]", atom)
			}
			q = n
		case strings.Trim(tail, atom[k:k+1]) == "":
			q += len(tail)
		default:
			return 0, inputErrorf(0, "SMILES: cannot read the charge of [%s]", atom)
		}
		total += sign * q
	}
}

// SMILESFromFile reads a SMILES file: the first token of the first non-blank line is the
// SMILES, the rest of that line its name. Only the first molecule is used.
func SMILESFromFile(data []byte) (smiles, name string, err error) {
	if len(data) > MaxInputBytes {
		return "", "", inputErrorf(0, "input is %d bytes; the limit is %d bytes (1 MiB)",
			len(data), MaxInputBytes)
	}
	for n, l := range splitLines(data) {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if err := CheckSMILES(f[0]); err != nil {
			var ie *InputError
			if errors.As(err, &ie) {
				ie.Line = n + 1
			}
			return "", "", err
		}
		return f[0], cleanTitle(strings.Join(f[1:], " ")), nil
	}
	return "", "", inputErrorf(0, "the input is empty")
}

// FromSMILES builds a 3D molecule from a SMILES string with Open Babel
// ("obabel -:SMILES -oxyz --gen3d", hydrogens added, geometry roughly optimised), then
// perceives bonds from the coordinates. The string is checked with CheckSMILES first and
// passed as the single argument "-:"+smiles, never through a shell. obabel exits 0 even
// for SMILES it cannot read, so an empty result or "0 molecules converted" is turned into
// an *InputError quoting Open Babel's reason. Charge is set from the bracket atoms and
// Title to the SMILES. An empty obabel means "obabel" on PATH.
func FromSMILES(ctx context.Context, r runner.Runner, obabel, smiles string) (Molecule, error) {
	if err := CheckSMILES(smiles); err != nil {
		return Molecule{}, err
	}
	q, err := SMILESCharge(smiles)
	if err != nil {
		return Molecule{}, err
	}
	if obabel == "" {
		obabel = "obabel"
	}
	argv := []string{obabel, "-:" + smiles, "-oxyz", "--gen3d"}
	res, err := r.Run(ctx, runner.Command{Argv: argv, Timeout: obabelTimeout,
		Env: obabelEnv})
	if err != nil {
		return Molecule{}, fmt.Errorf("Open Babel on SMILES %q: %w", smiles, err)
	}
	if !converted(res) {
		return Molecule{}, inputErrorf(0, "invalid SMILES %q: %s", smiles,
			babelReason(res.Stderr))
	}
	mols, err := parseXYZ(splitLines(res.Stdout))
	if err != nil {
		// %v, not %w: this is Open Babel's output at fault, not the user's input.
		return Molecule{}, fmt.Errorf("reading Open Babel's XYZ for SMILES %q: %v", smiles, err)
	}
	if len(mols) != 1 {
		return Molecule{}, fmt.Errorf("Open Babel returned %d molecules for SMILES %q, "+
			"expected 1", len(mols), smiles)
	}
	m := mols[0]
	if Needs3D(m) {
		return Molecule{}, fmt.Errorf("Open Babel could not generate 3D coordinates for "+
			"SMILES %q", smiles)
	}
	m.Title = smiles
	m.Charge = &q
	m.Dimension = "3D"
	return m, nil
}

// To3D embeds a MOL record that lacks 3D coordinates (see Needs3D) with Open Babel:
// "obabel -imol -omol -h --gen3d" with the record on stdin, adding implicit hydrogens and
// keeping the file's bonds and charges. molfile must hold exactly one record (SplitSDF
// cuts an SDF into records). Like FromSMILES it runs obabel without a shell and reports
// what Open Babel could not read as *InputError.
func To3D(ctx context.Context, r runner.Runner, obabel string, molfile []byte) (Molecule, error) {
	if len(molfile) > MaxInputBytes {
		return Molecule{}, inputErrorf(0, "input is %d bytes; the limit is %d bytes (1 MiB)",
			len(molfile), MaxInputBytes)
	}
	if allBlank(splitLines(molfile)) {
		return Molecule{}, inputErrorf(0, "the input is empty")
	}
	if obabel == "" {
		obabel = "obabel"
	}
	argv := []string{obabel, "-imol", "-omol", "-h", "--gen3d"}
	res, err := r.Run(ctx, runner.Command{Argv: argv, Stdin: molfile, Timeout: obabelTimeout,
		Env: obabelEnv})
	if err != nil {
		return Molecule{}, fmt.Errorf("Open Babel 3D embedding: %w", err)
	}
	if !converted(res) {
		return Molecule{}, inputErrorf(0, "Open Babel could not read the MOL record: %s",
			babelReason(res.Stderr))
	}
	mols, err := parseMolfile(splitLines(res.Stdout))
	if err != nil {
		return Molecule{}, fmt.Errorf("reading Open Babel's MOL output: %v", err)
	}
	if len(mols) != 1 {
		return Molecule{}, inputErrorf(0, "expected one MOL record, Open Babel read %d; "+
			"pass a single record", len(mols))
	}
	if Needs3D(mols[0]) {
		return Molecule{}, fmt.Errorf("Open Babel could not generate 3D coordinates")
	}
	mols[0].Dimension = "3D"
	return mols[0], nil
}

// converted reports whether obabel produced a molecule. It exits 0 after failing to read
// its input, so the exit status says nothing; its "N molecules converted" line and its
// output do.
func converted(res runner.Result) bool {
	if len(bytes.TrimSpace(res.Stdout)) == 0 {
		return false
	}
	for _, l := range strings.Split(string(res.Stderr), "\n") {
		if strings.TrimSpace(l) == "0 molecules converted" {
			return false
		}
	}
	return true
}

// babelReason picks Open Babel's explanation out of its stderr, skipping the banner lines
// ("====", "*** Open Babel Warning in ...") and the conversion count.
func babelReason(stderr []byte) string {
	for _, l := range strings.Split(string(stderr), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "", strings.HasPrefix(l, "==="), strings.HasPrefix(l, "*** Open Babel"),
			strings.HasSuffix(l, "converted"):
			continue
		}
		return cleanTitle(l)
	}
	return "Open Babel could not read it (0 molecules converted)"
}

// SplitSDF cuts an SD file into its records, each ending with its own newline and
// without the "$$$$" line, so that one record can be handed to To3D. Blank records are
// dropped; the order matches the molecules Parse returns.
func SplitSDF(data []byte) [][]byte {
	var out [][]byte
	var cur []string
	flush := func() {
		if !allBlank(cur) {
			out = append(out, []byte(strings.Join(cur, "\n")+"\n"))
		}
		cur = cur[:0]
	}
	for _, l := range splitLines(data) {
		if strings.TrimSpace(l) == "$$$$" {
			flush()
			continue
		}
		cur = append(cur, l)
	}
	flush()
	return out
}
