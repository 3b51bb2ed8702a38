package pbs

import (
	"slices"
	"strings"
	"testing"
)

// Behaviour cases describe daemon logic, which backend tests drive with fake commands;
// what is tested here is the parsers' and argv builders' share of each.

// TestPB04FinishedWithoutHistory: qstat asked without -x answers exit 35 "Job has
// finished". That is neither a failure nor an unknown job: the record says finished, with
// the id, so the daemon asks again with -x, which QstatArgs always passes.
func TestPB04FinishedWithoutHistory(t *testing.T) {
	c := caseByID(t, "PB-04")
	if c.Kind != "behaviour" {
		t.Fatalf("PB-04 is a %s case", c.Kind)
	}
	recs := ParseQstat([]byte(c.Stdout), []byte(c.Stderr), c.ExitCode)
	if len(recs) != 1 || recs[0].Outcome != OutcomeFinished || recs[0].ID != "5487654.pbs01" {
		t.Fatalf("PB-04 reads as %+v, want one finished record for 5487654.pbs01", recs)
	}

	argv := QstatArgs([]string{"5487654.pbs01"})
	want := []string{"qstat", "-f", "-F", "json", "-x", "5487654.pbs01"}
	if !slices.Equal(argv, want) {
		t.Errorf("QstatArgs = %q, want %q", argv, want)
	}
	// The case's argv is the one without -x; qmd's own carries every flag of it and -x.
	for _, flag := range c.Argv[1 : len(c.Argv)-1] {
		if !slices.Contains(argv, flag) {
			t.Errorf("QstatArgs lacks %q", flag)
		}
	}
}

// TestGEN01IDSpelling: qsub prints the server's full domain, qstat a shorter name; the
// tracked id still matches, and an array id never matches the plain job of the same
// number.
func TestGEN01IDSpelling(t *testing.T) {
	c := caseByID(t, "GEN-01")
	const stored = "1584224.biocluster.example.org"
	if !strings.Contains(c.Check, stored) {
		t.Fatalf("GEN-01 no longer names %s", stored)
	}
	row := strings.Fields(strings.Split(strings.TrimSpace(c.Stdout), "\n")[2])
	if !SameJob(stored, row[0]) || row[4] != "R" {
		t.Errorf("%q does not match the qstat row %q", stored, row)
	}
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"1584224.biocluster.example.org", "1584224.biocluster", true},
		{"1584224.BIOCLUSTER", "1584224.biocluster.example.org", true},
		{"1584224.biocluster", "1584224", true},
		{"21", "21", true},
		{"1584224[].biocluster", "1584224.biocluster", false},
		{"1584224[3].biocluster", "1584224[].biocluster", false},
		{"1584224.biocluster", "1584225.biocluster", false},
		{"1584224.biocluster", "1584224.otherserver", false},
		{"", "", false},
		{"x1.server", "x1.server", false},
	} {
		if got := SameJob(tc.a, tc.b); got != tc.same {
			t.Errorf("SameJob(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
		if got := SameJob(tc.b, tc.a); got != tc.same {
			t.Errorf("SameJob(%q, %q) = %v, want %v", tc.b, tc.a, got, tc.same)
		}
	}
}

// TestGEN02WrongFlavour: Torque's XML (its -x) given to a cluster configured as PBS Pro
// is a configuration error: DetectFlavour says torque, and the PBS parser reports a
// transient record naming torque instead of reading states from it.
func TestGEN02WrongFlavour(t *testing.T) {
	c := caseByID(t, "GEN-02")
	if f, ok := DetectFlavour([]byte(c.Stdout)); !ok || f != FlavourTorque {
		t.Errorf("DetectFlavour(GEN-02) = %q, %v; want torque", f, ok)
	}
	recs := ParseQstat([]byte(c.Stdout), []byte(c.Stderr), c.ExitCode)
	if len(recs) != 1 || recs[0].Outcome != OutcomeTransient || recs[0].ID != "" ||
		!strings.Contains(recs[0].Reason, "torque") {
		t.Errorf("GEN-02 through the pbs parser: %+v", recs)
	}
}

func TestDetectFlavour(t *testing.T) {
	for _, tc := range []struct {
		out    string
		flavor string
		ok     bool
	}{
		{`{"timestamp":1,"pbs_version":"2022.1.3","pbs_server":"pbs01"}`, FlavourPBS, true},
		{"\n  {\n", FlavourPBS, true},
		{"\xef\xbb\xbf{}", FlavourPBS, true},
		{"Job Id: 4242.torque01\n    job_state = R\n", FlavourTorque, true},
		{"Job Id:\t23\n\tjob_state = R\n", FlavourTorque, true},
		{"<Data><Job><Job_Id>1.t</Job_Id></Job></Data>", FlavourTorque, true},
		{"<?xml version=\"1.0\"?><Data/>", FlavourTorque, true},
		{"pbs_version = 2022.1.3.20230614134139\n", FlavourPBS, true},
		{"Version: 6.1.3\nCommit: abc\n", FlavourTorque, true},
		{"", "", false},
		{"   \n", "", false},
		{"Job id  Name  User\n", "", false},
	} {
		f, ok := DetectFlavour([]byte(tc.out))
		if f != tc.flavor || ok != tc.ok {
			t.Errorf("DetectFlavour(%q) = %q, %v; want %q, %v", tc.out, f, ok, tc.flavor, tc.ok)
		}
	}
}
