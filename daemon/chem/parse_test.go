package chem

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// fixture reads a file from testdata.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func intp(i int) *int { return &i }

// parseOne parses data and insists on exactly one record.
func parseOne(t *testing.T, format string, data []byte) Molecule {
	t.Helper()
	mols, err := Parse(format, data)
	if err != nil {
		t.Fatalf("Parse(%s): %v", format, err)
	}
	if len(mols) != 1 {
		t.Fatalf("Parse(%s): %d records, want 1", format, len(mols))
	}
	return mols[0]
}

func elements(m Molecule) string {
	var b strings.Builder
	for _, a := range m.Atoms {
		b.WriteString(a.Element)
	}
	return b.String()
}

func chargeString(c *int) string {
	if c == nil {
		return "nil"
	}
	return strconv.Itoa(*c)
}

var ethanolBonds = [][2]int{{0, 1}, {0, 3}, {0, 4}, {0, 5}, {1, 2}, {1, 6}, {1, 7}, {2, 8}}

// TestParseRecords checks what every supported layout yields, record by record.
func TestParseRecords(t *testing.T) {
	type rec struct {
		title, elements, charge, dim string
		bonds                        [][2]int // nil: not checked
	}
	ethanol := rec{"ethanol", "CCOHHHHHH", "nil", "3D", ethanolBonds}
	water := rec{"water", "OHH", "nil", "3D", [][2]int{{0, 1}, {0, 2}}}
	v2000Ammonium := "ammonium\n\n\n" +
		"  5  4  0  0  0  0  0  0  0  0999 V2000\n" +
		"    1.0261   -0.0821   -0.0507 N   0  3  0  0  0  0  0  0  0  0  0  0\n" +
		"    2.0529   -0.0821   -0.0507 H   0  0\n" +
		"    0.6839    0.6335    0.6012 H   0  0\n" +
		"    0.6839   -1.0045    0.2430 H   0  0\n" +
		"    0.6839    0.1247   -0.9964 H   0  0\n" +
		"  1  2  1  0\n  1  3  1  0\n  1  4  1  0\n  1  5  1  0\n" +
		"M  END\n"
	tests := []struct {
		name, format string
		data         []byte
		want         []rec
	}{
		{"xyz", "xyz", fixture(t, "ethanol.xyz"), []rec{ethanol}},
		{"xyz two blocks", "xyz",
			append(append(fixture(t, "ethanol.xyz"), "\n\n"...), fixture(t, "water.xyz")...),
			[]rec{ethanol, water}},
		{"xyz numbers, any case, extra columns, CRLF, trailing blanks", "xyz",
			[]byte("3\r\nwater\r\n8 0 0 0 -0.8\r\nh 0.96 0 0 0.4\r\nH -0.24 0.93 0 0.4\r\n\r\n\n"),
			[]rec{water}},
		{"xyz zero atoms", "xyz", []byte("0\nnothing\n"),
			[]rec{{"nothing", "", "nil", "3D", nil}}},
		{"mol v2000", "mol", fixture(t, "ethanol_v2000.mol"), []rec{ethanol}},
		{"mol v2000 CRLF with BOM", "mol", []byte("\xef\xbb\xbf" + strings.ReplaceAll(
			string(fixture(t, "ethanol_v2000.mol")), "\n", "\r\n")), []rec{ethanol}},
		{"mol v2000 M CHG", "mol", fixture(t, "acetate_v2000.mol"),
			[]rec{{"acetate", "CCOOHHH", "-1", "3D",
				[][2]int{{0, 1}, {0, 4}, {0, 5}, {0, 6}, {1, 2}, {1, 3}}}}},
		{"mol v2000 atom-block charge, no header dimension", "mol", []byte(v2000Ammonium),
			[]rec{{"ammonium", "NHHHH", "1", "", [][2]int{{0, 1}, {0, 2}, {0, 3}, {0, 4}}}}},
		{"mol v2000 M CHG supersedes atom block", "mol", []byte(strings.Replace(
			v2000Ammonium, "M  END", "M  CHG  2   1   1   2  -1\nM  CHG  1   3   2\nM  END", 1)),
			[]rec{{"ammonium", "NHHHH", "2", "", nil}}},
		{"mol v2000 explicit zero charge", "mol", []byte(strings.Replace(
			v2000Ammonium, "M  END", "M  CHG  1   1   0\nM  END", 1)),
			[]rec{{"ammonium", "NHHHH", "0", "", nil}}},
		{"mol v2000 free-format columns, no M END, alias lines", "mol", []byte(
			"water\n\n\n3 2\n0.0 0.0 0.0 O\n0.96 0 0 H\n-0.24 0.93 0 H\n" +
				"1 2 1\n1 3 1\nA    1\nM  CHG is an alias text\n"),
			[]rec{{"water", "OHH", "nil", "", [][2]int{{0, 1}, {0, 2}}}}},
		{"mol v2000 duplicate and reversed bonds", "mol", []byte(
			"water\n\n\n  3  3\n0.0 0.0 0.0 O\n0.96 0 0 H\n-0.24 0.93 0 H\n" +
				"  2  1  1\n  1  2  1\n  3  1  1\nM  END\n"),
			[]rec{{"water", "OHH", "nil", "", [][2]int{{0, 1}, {0, 2}}}}},
		{"mol v2000 2D", "mol", fixture(t, "ethanol_2d.mol"),
			[]rec{{"ethanol 2D", "CCO", "nil", "2D", [][2]int{{0, 1}, {1, 2}}}}},
		{"mol v3000", "mol", fixture(t, "ammonium_v3000.mol"),
			[]rec{{"ammonium", "NHHHH", "1", "3D", [][2]int{{0, 1}, {0, 2}, {0, 3}, {0, 4}}}}},
		{"mol v3000 continuation, numbering, other blocks", "mol", []byte(
			"hydroxide and water\n  test              3D\n\n" +
				"  0  0  0     0  0            999 V3000\n" +
				"M  V30 BEGIN CTAB\n" +
				"M  V30 COUNTS 5 3 1 0 0\n" +
				"M  V30 BEGIN ATOM\n" +
				"M  V30 10 O 0 0 0 0 CHG=-1\n" +
				"M  V30 20 H 0.97 0 0 0\n" +
				"M  V30 30 O 3 0 0 0 -\n" +
				"M  V30 MASS=18\n" +
				"M  V30 40 \"H\" 3.96 0 0 0\n" +
				"M  V30 50 H 2.76 0.93 0 0 CHG=0\n" +
				"M  V30 END ATOM\n" +
				"M  V30 BEGIN BOND\n" +
				"M  V30 1 1 20 10\n" +
				"M  V30 2 1 30 40 CFG=(1 2)\n" +
				"M  V30 3 1 30 50\n" +
				"M  V30 END BOND\n" +
				"M  V30 BEGIN SGROUP\n" +
				"M  V30 1 SUP 0 ATOMS=(2 1 2) LABEL=\"O H\"\n" +
				"M  V30 END SGROUP\n" +
				"M  V30 END CTAB\n" +
				"M  END\n"),
			[]rec{{"hydroxide and water", "OHOHH", "-1", "3D",
				[][2]int{{0, 1}, {2, 3}, {2, 4}}}}},
		{"sdf", "sdf", fixture(t, "multi.sdf"), []rec{
			water,
			{"methane", "CHHHH", "nil", "3D", [][2]int{{0, 1}, {0, 2}, {0, 3}, {0, 4}}},
			{"acetate", "CCOOHHH", "-1", "3D", nil},
		}},
		{"sdf via sd alias, last record without $$$$", "sd", []byte(strings.TrimSuffix(
			string(fixture(t, "multi.sdf")), "$$$$\n")), []rec{water,
			{"methane", "CHHHH", "nil", "3D", nil}, {"acetate", "CCOOHHH", "-1", "3D", nil}}},
		{"sdf mixing V2000 and V3000", "sdf", []byte(string(fixture(t, "ethanol_v2000.mol")) +
			"$$$$\n" + string(fixture(t, "ammonium_v3000.mol")) + "$$$$\n\n\n"),
			[]rec{ethanol, {"ammonium", "NHHHH", "1", "3D", nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mols, err := Parse(tt.format, tt.data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(mols) != len(tt.want) {
				t.Fatalf("got %d records, want %d", len(mols), len(tt.want))
			}
			for i, w := range tt.want {
				m := mols[i]
				got := rec{m.Title, elements(m), chargeString(m.Charge), m.Dimension, nil}
				if got.title != w.title || got.elements != w.elements ||
					got.charge != w.charge || got.dim != w.dim {
					t.Errorf("record %d = %+v, want %+v", i, got, w)
				}
				if w.bonds != nil && !reflect.DeepEqual(m.Bonds, w.bonds) {
					t.Errorf("record %d bonds = %v, want %v", i, m.Bonds, w.bonds)
				}
				for k, b := range m.Bonds {
					if b[0] >= b[1] {
						t.Errorf("record %d bond %d = %v, want i<j", i, k, b)
					}
				}
			}
		})
	}
}

// TestParseCoordinates checks that numbers land in the right fields for each layout.
func TestParseCoordinates(t *testing.T) {
	x := parseOne(t, "xyz", fixture(t, "ethanol.xyz"))
	m := parseOne(t, "mol", fixture(t, "ethanol_v2000.mol"))
	v3 := parseOne(t, "mol", fixture(t, "ammonium_v3000.mol"))
	tests := []struct {
		name string
		got  Atom
		want Atom
	}{
		{"xyz O", x.Atoms[2], Atom{"O", 2.93105, 0.77042, -1.06091}},
		{"v2000 O", m.Atoms[2], Atom{"O", 2.9265, -1.1844, -0.7266}},
		{"v3000 H", v3.Atoms[2], Atom{"H", 0.683893, 0.63348, 0.601205}},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %+v, want %+v", tt.name, tt.got, tt.want)
		}
	}
}

// TestParseErrors checks every rejection and its exact message, since the message is
// what the user sees.
func TestParseErrors(t *testing.T) {
	sdf := string(fixture(t, "multi.sdf"))
	head := "t\n\n\n"
	water := "  3  2\n" +
		"    0.0000    0.0000    0.0000 O   0  0\n" +
		"    0.9600    0.0000    0.0000 H   0  0\n" +
		"   -0.2400    0.9300    0.0000 H   0  0\n"
	v3 := func(body string) string {
		return head + "  0  0  0     0  0            999 V3000\n" +
			"M  V30 BEGIN CTAB\n" + body + "M  V30 END CTAB\nM  END\n"
	}
	atoms := "M  V30 BEGIN ATOM\nM  V30 1 O 0 0 0 0\nM  V30 2 H 0.96 0 0 0\nM  V30 END ATOM\n"
	tests := []struct {
		name, format, data, want string
		line                     int
	}{
		{"empty", "xyz", "", "the input is empty", 0},
		{"blank", "sdf", " \n\t\n", "the input is empty", 0},
		{"too big", "xyz", strings.Repeat("x", MaxInputBytes+1),
			"input is 1048577 bytes; the limit is 1048576 bytes (1 MiB)", 0},
		{"unknown format", "pdb", "x",
			`unknown input format "pdb"; use xyz, mol, sdf or smiles`, 0},
		{"smiles", "smiles", "CCO",
			"SMILES input needs 3D coordinates from Open Babel; use FromSMILES", 0},

		{"xyz count", "xyz", "abc\nt\n", `line 1: expected the number of atoms, got "abc"`, 1},
		{"xyz negative count", "xyz", "-1\nt\n", "line 1: negative atom count -1", 1},
		{"xyz no title", "xyz", "3\n", "line 2: the file ends where the title line should be", 2},
		{"xyz too few", "xyz", "3\nt\nO 0 0 0\nH 1 0 0\n",
			"line 1: the atom count says 3 atoms, but only 2 atom lines follow", 1},
		{"xyz too few before next block", "xyz", "3\nt\nO 0 0 0\nH 1 0 0\n1\nt\nH 0 0 0\n",
			"line 1: the atom count says 3 atoms, but only 2 atom lines follow", 1},
		{"xyz too many", "xyz", "2\nt\nO 0 0 0\nH 1 0 0\nH 0 1 0\n",
			"line 5: more atom lines than the atom count 2 on line 1 says", 5},
		{"xyz short line", "xyz", "2\nt\nO 0 0 0\nH 1 0\n",
			`line 4: expected an atom line "element x y z", got "H 1 0"`, 4},
		{"xyz unknown element", "xyz", "2\nt\nO 0 0 0\nXx 1 0 0\n",
			`line 4: unknown element "Xx"`, 4},
		{"xyz bad atomic number", "xyz", "1\nt\n119 0 0 0\n",
			`line 3: unknown element "119" (atomic numbers run from 1 to 118)`, 3},
		{"xyz bad number", "xyz", "1\nt\nO 0 x 0\n", `line 3: coordinate "x" is not a number`, 3},
		{"xyz NaN", "xyz", "1\nt\nO 0 NaN 0\n",
			`line 3: coordinate "NaN" is not a finite number`, 3},
		{"xyz Inf", "xyz", "1\nt\nO -inf 0 0\n",
			`line 3: coordinate "-inf" is not a finite number`, 3},
		{"xyz overflow", "xyz", "1\nt\nO 1e999 0 0\n",
			`line 3: coordinate "1e999" is out of range`, 3},
		{"xyz second block", "xyz", "1\na\nH 0 0 0\n1\nb\nQ 0 0 0\n",
			`line 6: unknown element "Q"`, 6},

		{"mol short header", "mol", "title\nprogram\n",
			"line 3: the file ends inside the MOL header (title, program and comment " +
				"lines, then the counts line)", 3},
		{"mol counts", "mol", head + "xx\n",
			`line 4: expected the counts line (atoms, bonds), got "xx"`, 4},
		{"mol too few atoms", "mol", head + "  4  0\n" + water[7:] + "M  END\n",
			"line 4: the counts line says 4 atoms, but only 3 atom lines follow", 4},
		{"mol too few bonds", "mol", head + water + "  1  2  1\nM  END\n",
			"line 4: the counts line says 2 bonds, but only 1 bond lines follow", 4},
		{"mol bad atom line", "mol", head + water[:7] + "    0.0 O\n",
			`line 5: expected an atom line (x y z symbol), got "    0.0 O"`, 5},
		{"mol unknown element", "mol", head + strings.Replace(water, " O ", " Xx", 1),
			`line 5: unknown element "Xx"`, 5},
		{"mol query atom", "mol", head + strings.Replace(water, " O ", " R#", 1),
			`line 5: unknown element "R#"`, 5},
		{"mol bond range", "mol", head + water + "  1  2  1\n  1  5  1\nM  END\n",
			"line 9: bond between atoms 1 and 5, but there are only 3 atoms", 9},
		{"mol bond to self", "mol", head + water + "  1  2  1\n  3  3  1\nM  END\n",
			"line 9: bond from atom 3 to itself", 9},
		{"mol bad bond line", "mol", head + water + "  1  2  1\n  x\nM  END\n",
			`line 9: expected a bond line (atom, atom, type), got "  x"`, 9},
		{"mol charge atom range", "mol",
			head + water + "  1  2  1\n  1  3  1\nM  CHG  1   4  -1\n",
			"line 10: charge on atom 4, but there are only 3 atoms", 10},
		{"mol charge garbage", "mol",
			head + water + "  1  2  1\n  1  3  1\nM  CHG  2   1  -1\n",
			`line 10: cannot read the charge line "M  CHG  2   1  -1"`, 10},
		{"sdf error in second record", "sdf", strings.Replace(sdf,
			"0.6655   -1.0614    0.1136 H", "0.6655   -1.0614    0.1136 Xx", 1),
			`line 24: unknown element "Xx"`, 24},
		{"sdf empty record", "sdf", sdf + "\n$$$$\n" + sdf,
			"line 54: record ends inside the MOL header", 54},

		{"v3000 no ctab", "mol", head + "  0  0  0     0  0            999 V3000\nM  END\n",
			`V3000 record "t" has no "BEGIN CTAB" block`, 0},
		{"v3000 counts", "mol", v3("M  V30 COUNTS 3 0 0 0 0\n" + atoms),
			"line 6: COUNTS says 3 atoms and 0 bonds, but the blocks hold 2 atoms and 0 bonds", 6},
		{"v3000 bad counts", "mol", v3("M  V30 COUNTS x 0 0 0 0\n"),
			"line 6: cannot read the COUNTS line", 6},
		{"v3000 unknown element", "mol", v3(strings.Replace(atoms, " H ", " [C,N] ", 1)),
			`line 8: unknown element "[C,N]"`, 8},
		{"v3000 duplicate index", "mol", v3(strings.Replace(atoms, "V30 2 H", "V30 1 H", 1)),
			"line 8: atom index 1 appears twice", 8},
		{"v3000 short atom", "mol", v3("M  V30 BEGIN ATOM\nM  V30 1 O 0 0\nM  V30 END ATOM\n"),
			"line 7: expected an atom line (index type x y z aamap), got 4 fields", 7},
		{"v3000 bad charge", "mol",
			v3(strings.Replace(atoms, " 0.96 0 0 0", " 0.96 0 0 0 CHG=x", 1)),
			`line 8: cannot read the charge "CHG=x"`, 8},
		{"v3000 bond atom", "mol",
			v3(atoms + "M  V30 BEGIN BOND\nM  V30 1 1 1 3\nM  V30 END BOND\n"),
			"line 11: bond 1 refers to atom 1 or 3, which is not in the atom block", 11},
		{"v3000 unmatched end", "mol", v3(atoms + "M  V30 END BOND\n"),
			"line 10: END BOND without a matching BEGIN BOND", 10},
		{"v3000 unclosed", "mol", head + "  0  0  0     0  0            999 V3000\n" +
			"M  V30 BEGIN CTAB\n" + atoms + "M  END\n",
			`V3000 block "CTAB" is never closed with END CTAB`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mols, err := Parse(tt.format, []byte(tt.data))
			if err == nil {
				t.Fatalf("Parse succeeded with %d records, want error %q", len(mols), tt.want)
			}
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error %v is %T, want *InputError", err, err)
			}
			if err.Error() != tt.want || ie.Line != tt.line {
				t.Errorf("error = %q (line %d)\n          want %q (line %d)",
					err.Error(), ie.Line, tt.want, tt.line)
			}
		})
	}
}

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		file, data, want string
	}{
		{"ethanol.XYZ", "anything", "xyz"},
		{"a.mol", "", "mol"},
		{"a.sdf", "", "sdf"},
		{"a.sd", "", "sdf"},
		{"a.smi", "", "smiles"},
		{"dir.v2/a.SMILES", "", "smiles"},
		{"upload", string(fixture(t, "ethanol.xyz")), "xyz"},
		{"upload.txt", string(fixture(t, "ethanol_v2000.mol")), "mol"},
		{"upload", string(fixture(t, "ammonium_v3000.mol")), "mol"},
		{"upload", string(fixture(t, "multi.sdf")), "sdf"},
		{"upload", "CC(=O)[O-] acetate\n", "smiles"},
		{"upload", "\xef\xbb\xbfc1ccccc1\r\n", "smiles"},
		{"upload", "C[C@@H](Cl)Br\n", "smiles"},
	}
	for _, tt := range tests {
		got, err := DetectFormat(tt.file, []byte(tt.data))
		if err != nil || got != tt.want {
			t.Errorf("DetectFormat(%q) = %q, %v; want %q", tt.file, got, err, tt.want)
		}
	}
	errTests := []struct {
		file, data, want string
	}{
		{"upload", "", "the input is empty"},
		{"upload", "ethanol\nCCO\n",
			`cannot tell the format of "upload"; name it .xyz, .mol, .sdf or .smi`},
		{"x/upload.pdb", "ATOM      1  N   ALA A   1\n",
			`cannot tell the format of "upload.pdb"; name it .xyz, .mol, .sdf or .smi`},
		{"upload", strings.Repeat("C", MaxInputBytes+1),
			"input is 1048577 bytes; the limit is 1048576 bytes (1 MiB)"},
	}
	for _, tt := range errTests {
		_, err := DetectFormat(tt.file, []byte(tt.data))
		var ie *InputError
		if !errors.As(err, &ie) || err.Error() != tt.want {
			t.Errorf("DetectFormat(%q) error = %v, want *InputError %q", tt.file, err, tt.want)
		}
	}
}

func TestInputErrorText(t *testing.T) {
	if got := (&InputError{Line: 7, Msg: `unknown element "Xx"`}).Error(); got !=
		`line 7: unknown element "Xx"` {
		t.Errorf("got %q", got)
	}
	if got := (&InputError{Msg: "the input is empty"}).Error(); got != "the input is empty" {
		t.Errorf("got %q", got)
	}
}

// TestTitleCleaned checks that control bytes and invalid UTF-8 in a title are neutralised
// and that very long titles are cut, since titles reach job listings and NWChem input.
func TestTitleCleaned(t *testing.T) {
	m := parseOne(t, "xyz", []byte("1\n \x1b[31mred\x00\xff \n H 0 0 0\n"))
	if m.Title != "[31mred \uFFFD" {
		t.Errorf("title = %q", m.Title)
	}
	m = parseOne(t, "xyz", []byte("1\n"+strings.Repeat("é", 300)+"\nH 0 0 0\n"))
	if len(m.Title) > 200 || !strings.HasPrefix(m.Title, "éé") ||
		strings.ContainsRune(m.Title, '\uFFFD') {
		t.Errorf("long title not cut on a rune boundary: %d bytes", len(m.Title))
	}
}

// TestSplitSDF checks that SplitSDF cuts an SD file into the same records Parse reads,
// so that the record of molecule i can be handed to To3D; an alias line whose text is
// "$$$$" must not make the two disagree.
func TestSplitSDF(t *testing.T) {
	data := fixture(t, "multi.sdf")
	data = append(data, "alias\n\n\n  1  0\n0 0 0 C\nA    1\n$$$$\n"...)
	recs := SplitSDF(data)
	mols, err := Parse("sdf", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(mols) {
		t.Fatalf("SplitSDF gave %d records, Parse %d", len(recs), len(mols))
	}
	for i, r := range recs {
		m := parseOne(t, "mol", r)
		if !reflect.DeepEqual(m, mols[i]) {
			t.Errorf("record %d differs: %+v vs %+v", i, m, mols[i])
		}
	}
}
