package pbs

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// qstatDoc builds a `qstat -f -F json -x` answer for n jobs, each with a Variable_List of
// the size a login environment gives, and the raw newline and \q of broken output when
// broken is set.
func qstatDoc(n int, broken bool) []byte {
	var b strings.Builder
	b.WriteString("{\n    \"timestamp\":1709560800,\n    \"pbs_version\":\"2022.1.3\",\n" +
		"    \"pbs_server\":\"pbs01\",\n    \"Jobs\":{\n")
	odd := `plain`
	if broken {
		odd = "() {  eval `modulecmd bash $*`\n} \\q"
	}
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "        \"%d.pbs01\":{\n            \"Job_Name\":\"qmd%012x\",\n"+
			"            \"job_state\":\"F\",\n            \"Exit_status\":%d,\n"+
			"            \"ctime\":\"Mon Mar  4 09:00:00 2024\",\n"+
			"            \"Variable_List\":{\n", 1000+i, i, i%3)
		for v := 0; v < 40; v++ {
			fmt.Fprintf(&b, "                \"VAR_%d\":\"/opt/software/pkg%d/bin:/usr/bin\",\n",
				v, v)
		}
		fmt.Fprintf(&b, "                \"ODD\":\"%s\",\n"+
			"                \"QMD_JOB_ID\":\"%012x\"\n            }\n        }", odd, i)
	}
	b.WriteString("\n    }\n}\n")
	return []byte(b.String())
}

// BenchmarkParseQstat reads a 100-job answer, the most one call asks for, valid and
// broken, with encoding/json on the valid one as the baseline the tolerant reader's cost
// is judged against (compare the ns/job of the sub-benchmarks from one run).
func BenchmarkParseQstat(b *testing.B) {
	const jobs = MaxIDsPerCall
	for _, bc := range []struct {
		name string
		doc  []byte
		run  func([]byte) int
	}{
		{"tolerant/valid", qstatDoc(jobs, false), func(d []byte) int {
			return len(ParseQstat(d, nil, 0))
		}},
		{"tolerant/broken", qstatDoc(jobs, true), func(d []byte) int {
			return len(ParseQstat(d, nil, 0))
		}},
		{"encoding-json/valid", qstatDoc(jobs, false), func(d []byte) int {
			var v struct{ Jobs map[string]map[string]any }
			if json.Unmarshal(d, &v) != nil {
				return 0
			}
			return len(v.Jobs)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if got := bc.run(bc.doc); got != jobs {
				b.Fatalf("read %d jobs, want %d", got, jobs)
			}
			b.SetBytes(int64(len(bc.doc)))
			for b.Loop() {
				bc.run(bc.doc)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*jobs), "ns/job")
		})
	}
}
