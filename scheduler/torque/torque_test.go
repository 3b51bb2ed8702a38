package torque

import (
	"slices"
	"strings"
	"testing"

	"qmd/daemon/job"
	"qmd/scheduler/pbs"
)

// TestLayouts reads the same job in Torque's layout and in the wrappers', and checks that
// a tab-led line is a continuation in the first and an attribute in the second.
func TestLayouts(t *testing.T) {
	torque := "Job Id: 7.torque01\n" +
		"    Job_Name = long_na\n" +
		"\tme_x\n" +
		"    job_state = C\n" +
		"    comment = a = b\n" +
		"\t = c\n" +
		"    exit_status = 3\n\n"
	wrapper := "Job Id:\t7.torque01\n" +
		"\tJob_Name = long_name_x\n" +
		"\tjob_state = C\n" +
		"\tcomment = a = b = c\n" +
		"\texit_status = 3\n\n"
	for name, text := range map[string]string{"torque": torque, "wrapper": wrapper} {
		blocks, bad := readBlocks(text)
		if bad != nil || len(blocks) != 1 {
			t.Fatalf("%s: %d blocks, %+v", name, len(blocks), bad)
		}
		b := blocks[0]
		want := map[string]string{"Job_Name": "long_name_x", "job_state": "C",
			"comment": "a = b = c", "exit_status": "3"}
		if b.id != "7.torque01" || len(b.attrs) != len(want) {
			t.Errorf("%s: %+v", name, b)
		}
		for k, v := range want {
			if b.attrs[k] != v {
				t.Errorf("%s: %s = %q, want %q", name, k, b.attrs[k], v)
			}
		}
	}

	// An empty value, with and without the trailing blank.
	blocks, _ := readBlocks("Job Id: 8.t\n    comment = \n    Job_Name =\n    job_state = Q\n")
	if a := blocks[0].attrs; a["comment"] != "" || a["Job_Name"] != "" || a["job_state"] != "Q" {
		t.Errorf("empty values: %q", a)
	}
}

// TestTQ01WrappedValues: the case's wrapped Error_Path and exec_host are joined without
// a separator, even where a node name was cut.
func TestTQ01WrappedValues(t *testing.T) {
	c := caseByID(t, "TQ-01")
	blocks, bad := readBlocks(c.Stdout)
	if bad != nil || len(blocks) != 1 {
		t.Fatalf("%d blocks, %+v", len(blocks), bad)
	}
	a := blocks[0].attrs
	for k, want := range map[string]string{
		"Error_Path": "login1:/home/alice/projects/genome_assembly/run_2024_03_04/" +
			"align_chr1.e4242",
		"exec_host": "node01/0-35+node02/0-35+node03/0-35+node04/0-35+node05/0-35+" +
			"node06/0-35+node07/0-35+node08/0-35+node09/0-35+node10/0-35+node11/0-35+" +
			"node12/0-35",
		"exit_status": "1",
	} {
		if a[k] != want {
			t.Errorf("%s = %q, want %q", k, a[k], want)
		}
	}
	if got := pbs.ListVariable(a["Variable_List"], "PBS_O_WORKDIR"); got !=
		"/home/alice/projects/genome_assembly/run_2024_03_04" {
		t.Errorf("PBS_O_WORKDIR = %q", got)
	}
}

// TestGEN01TorqueIDSpelling: Torque's qstat prints a shorter server name than qsub did;
// the tracked id still matches the record.
func TestGEN01TorqueIDSpelling(t *testing.T) {
	c := caseByID(t, "GEN-01")
	if !strings.Contains(c.Check, "1584224.biocluster.example.org") {
		t.Fatal("GEN-01 changed")
	}
	sub := pbs.ParseQsub([]byte("1584224.biocluster.example.org\n"), nil, 0)
	recs := ParseQstat([]byte("Job Id: 1584224.biocluster\n    job_state = R\n"), nil, 0)
	if len(recs) != 1 || !pbs.SameJob(sub.ID, recs[0].ID) || recs[0].State != job.Running {
		t.Errorf("qsub %+v, qstat %+v", sub, recs)
	}
	arr := ParseQstat([]byte("Job Id: 1584224[].biocluster\n    job_state = R\n"), nil, 0)
	if pbs.SameJob(sub.ID, arr[0].ID) {
		t.Error("an array id matched the plain job")
	}
}

// TestGEN02TorqueXML: Torque's -x is XML, never history; qmd's Torque argv has no -x, and
// XML that arrives anyway is not read as states.
func TestGEN02TorqueXML(t *testing.T) {
	c := caseByID(t, "GEN-02")
	recs := ParseQstat([]byte(c.Stdout), nil, 0)
	if len(recs) != 1 || recs[0].Outcome != pbs.OutcomeTransient {
		t.Errorf("XML read as %+v", recs)
	}
	if slices.Contains(QstatArgs([]string{"1.t"}), "-x") {
		t.Error("Torque qstat asks for -x")
	}
}

func TestArgs(t *testing.T) {
	if got := QstatArgs([]string{"1.t", "2[].t"}); !slices.Equal(got,
		[]string{"qstat", "-f", "1.t", "2[].t"}) {
		t.Errorf("QstatArgs = %q", got)
	}
	if got := QdelArgs([]string{"1.t"}); !slices.Equal(got, []string{"qdel", "1.t"}) {
		t.Errorf("QdelArgs = %q", got)
	}
	if got, want := QsubArgs("7f3a00c0ffee", []string{"-q", "batch"}, "job.pbs"),
		pbs.QsubArgs("7f3a00c0ffee", []string{"-q", "batch"}, "job.pbs"); !slices.Equal(got,
		want) {
		t.Errorf("QsubArgs = %q, want %q", got, want)
	}
}

// TestStates walks every Torque letter, and the letters that must not read as states.
func TestStates(t *testing.T) {
	want := map[string]job.State{"Q": job.Pending, "H": job.Pending, "W": job.Pending,
		"T": job.Pending, "R": job.Running, "E": job.Completing, "S": job.Suspended}
	for raw, st := range want {
		if got, ok := MapState(raw); !ok || got != st {
			t.Errorf("MapState(%q) = %s, %v", raw, got, ok)
		}
	}
	for _, raw := range []string{"C", "U", "F", "X", "M", "B", "", "r"} {
		if _, ok := MapState(raw); ok {
			t.Errorf("MapState(%q) is known", raw)
		}
	}
}

// TestExecCodes: every code of Torque's table (-1 to -14) is there, and the walltime codes
// are the only timeouts.
func TestExecCodes(t *testing.T) {
	for code := -14; code <= -1; code++ {
		if _, ok := ExecCodes[code]; !ok {
			t.Errorf("ExecCodes lacks %d", code)
		}
	}
	for code, c := range ExecCodes {
		if code >= 0 || c.Name == "" || c.Meaning == "" || !c.State.Terminal() {
			t.Errorf("ExecCodes[%d] = %+v", code, c)
		}
		if (c.State == job.Timeout) != (code == -11 || code == -29) {
			t.Errorf("ExecCodes[%d] is %s", code, c.State)
		}
	}
}
