package pbs

import "testing"

func TestValidID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"123.pbs01", true},
		{"123", true},
		{"3965544[].pbs01", true},
		{"3965544[12].pbs01.example.org", true},
		{"123[]", true},
		{"1584224.biocluster.example.org", true},
		{"123.pbs-01_a", true},
		{"", false},
		{"pbs01", false},
		{"123.", false},
		{"123..pbs01", false},
		{"123.pbs01.", false},
		{"123[.pbs01", false},
		{"123[a].pbs01", false},
		{"123 .pbs01", false},
		{"12x.pbs01", false},
		{"123.pbs01\n", false},
	} {
		if got := ValidID(tc.id); got != tc.ok {
			t.Errorf("ValidID(%q) = %v, want %v", tc.id, got, tc.ok)
		}
	}
}

// TestNamedJobID: the id is found before or after the message, and numbers or addresses in
// a message are not taken for one.
func TestNamedJobID(t *testing.T) {
	for _, tc := range []struct{ line, id string }{
		{"qstat: Unknown Job Id 2009.pbs01", "2009.pbs01"},
		{"qstat: Unknown Job Id Error 4242.torque01", "4242.torque01"},
		{"qstat: 5487654.pbs01 Job has finished, use -x or -H to obtain historical job " +
			"information", "5487654.pbs01"},
		{"qdel: Job has finished 1234.pbs01", "1234.pbs01"},
		{"qdel: Kill job error on job id 23: Unable to contact slurm controller", "23"},
		{"qdel: Unknown Job Id 12[].pbs01", "12[].pbs01"},
		{"qstat: cannot connect to server pbs01 (errno=15010)", ""},
		{"Unable to communicate with head1(10.0.0.1)", ""},
		{"Unable to communicate with 10.0.0.1", ""},
		{"qsub: would exceed complex's per-user limit of 100 jobs", ""},
		{"", ""},
	} {
		if got := namedJobID(tc.line); got != tc.id {
			t.Errorf("namedJobID(%q) = %q, want %q", tc.line, got, tc.id)
		}
	}
}
