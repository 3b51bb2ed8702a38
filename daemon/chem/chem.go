// Package chem reads the molecule a chemist submits (XYZ, MOL/SDF or SMILES), checks that
// it can be computed at all, and derives the molecular graph the NMR post-processing needs:
// bonds, the heavy atom each proton sits on, and groups of topologically equivalent atoms
// whose shieldings are averaged. Everything a user typed is treated as hostile input: it is
// size-limited, never handed to a shell, and every rejection says what to fix and where.
package chem

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Atom is one atom with Cartesian coordinates in Å. Element is the canonical symbol
// ("C", "Cl", "H") so that later code can compare symbols without case folding.
type Atom struct {
	Element string
	X, Y, Z float64
}

// Molecule is one record read from the user's input.
type Molecule struct {
	Title string
	Atoms []Atom
	// Charge is the net formal charge the file states (MOL/SDF "M  CHG", the atom
	// block's charge column, V3000 CHG=, or SMILES bracket atoms). It is nil when the file
	// says nothing, so the caller can tell "neutral by default" from "stated neutral".
	Charge *int
	// Bonds are 0-based atom index pairs with i<j: from the bond block for MOL/SDF,
	// perceived from distances for XYZ and SMILES.
	Bonds [][2]int
	// Dimension is "2D" or "3D" when the input says so (MOL header, or implied by XYZ and
	// by Open Babel's 3D output), and "" when it does not. Needs3D uses it.
	Dimension string
}

// MaxInputBytes bounds what Parse and DetectFormat accept, so an upload cannot make the
// daemon hold or scan an arbitrary amount of text.
const MaxInputBytes = 1 << 20

// MaxAtoms is the largest molecule Validate accepts: an NMR calculation with NWChem on
// anything bigger would not finish in a useful time.
const MaxAtoms = 500

// perceiveLimit bounds bond perception inside Parse. Records above it are already far over
// MaxAtoms, and skipping them keeps a hostile file from costing quadratic time and memory.
const perceiveLimit = 4 * MaxAtoms

// InputError is a problem with what the user supplied, as opposed to a failure of the
// machine. Line is the 1-based line in the whole input (for SDF, the full file), or 0 when
// the problem is not tied to one line. Callers use errors.As to show it to the user as is.
type InputError struct {
	Line int
	Msg  string
}

func (e *InputError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// inputErrorf builds an *InputError for line (0 for none).
func inputErrorf(line int, format string, args ...any) *InputError {
	return &InputError{Line: line, Msg: fmt.Sprintf(format, args...)}
}

// Parse reads every record of data in format "xyz", "mol" or "sdf" ("sd" is accepted as
// "sdf"; "mol" and "sdf" share one reader, so a .mol holding several $$$$-separated
// records yields them all). It stops at the first problem and returns it as *InputError.
// SMILES needs Open Babel and goes through FromSMILES instead.
func Parse(format string, data []byte) ([]Molecule, error) {
	if len(data) > MaxInputBytes {
		return nil, inputErrorf(0, "input is %d bytes; the limit is %d bytes (1 MiB)",
			len(data), MaxInputBytes)
	}
	lines := splitLines(data)
	if allBlank(lines) {
		return nil, inputErrorf(0, "the input is empty")
	}
	switch strings.ToLower(format) {
	case "xyz":
		return parseXYZ(lines)
	case "mol", "sdf", "sd":
		return parseMolfile(lines)
	case "smi", "smiles":
		return nil, inputErrorf(0, "SMILES input needs 3D coordinates from Open Babel; "+
			"use FromSMILES")
	default:
		return nil, inputErrorf(0, "unknown input format %q; use xyz, mol, sdf or smiles",
			format)
	}
}

// DetectFormat names the format of an upload: "xyz", "mol", "sdf" or "smiles". The file
// extension decides when it is one of .xyz .mol .sdf .sd .smi .smiles, because users name
// their files deliberately; otherwise the content is sniffed, in the order MOL (a counts
// line tagged V2000/V3000 on line 4; "sdf" if a "$$$$" line follows), XYZ (an atom count
// on line 1), SMILES (the first token of line 1 passes CheckSMILES and uses only
// organic-subset atoms outside brackets, so a title word is not mistaken for SMILES).
func DetectFormat(filename string, data []byte) (string, error) {
	switch strings.ToLower(filepath.Ext(filename)) {
	case ".xyz":
		return "xyz", nil
	case ".mol":
		return "mol", nil
	case ".sdf", ".sd":
		return "sdf", nil
	case ".smi", ".smiles":
		return "smiles", nil
	}
	if len(data) > MaxInputBytes {
		return "", inputErrorf(0, "input is %d bytes; the limit is %d bytes (1 MiB)",
			len(data), MaxInputBytes)
	}
	lines := splitLines(data)
	if allBlank(lines) {
		return "", inputErrorf(0, "the input is empty")
	}
	if len(lines) >= 4 {
		if c := lines[3]; strings.Contains(c, "V2000") || strings.Contains(c, "V3000") {
			for _, l := range lines {
				if strings.TrimSpace(l) == "$$$$" {
					return "sdf", nil
				}
			}
			return "mol", nil
		}
	}
	first := strings.TrimSpace(lines[0])
	if n, err := strconv.Atoi(first); err == nil && n >= 0 {
		return "xyz", nil
	}
	if f := strings.Fields(first); len(f) > 0 && plausibleSMILES(f[0]) {
		return "smiles", nil
	}
	return "", inputErrorf(0, "cannot tell the format of %q; name it .xyz, .mol, .sdf or .smi",
		filepath.Base(filename))
}

// splitLines splits data into lines without their terminators, accepting LF and CRLF and
// dropping a UTF-8 byte-order mark, as files from Windows editors carry both.
func splitLines(data []byte) []string {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	s := string(data)
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return []string{""}
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

// allBlank reports whether every line is whitespace only.
func allBlank(lines []string) bool {
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			return false
		}
	}
	return true
}

// cleanTitle makes a title line safe to carry around: valid UTF-8, no control characters,
// at most 200 bytes. Titles end up in job listings and NWChem input, where a stray control
// byte or a megabyte-long line would do harm; quoting for NWChem remains the writer's job.
func cleanTitle(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

// quoteLine quotes a line for an error message, shortened so that a binary upload does not
// produce a huge message.
func quoteLine(s string) string {
	const max = 60
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut] + "...")
	}
	return strconv.Quote(s)
}

// normalisePair orders a bond's atom indices so that i<j.
func normalisePair(a, b int) [2]int {
	if a > b {
		a, b = b, a
	}
	return [2]int{a, b}
}
