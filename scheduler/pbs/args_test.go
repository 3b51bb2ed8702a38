package pbs

import (
	"fmt"
	"slices"
	"testing"

	"qmd/daemon/job"
)

func TestTag(t *testing.T) {
	id, err := job.NewID()
	if err != nil {
		t.Fatal(err)
	}
	if got := Tag(id); got != "qmd"+id || len(got) != 15 {
		t.Errorf("Tag(%q) = %q, want qmd%s (15 characters)", id, got, id)
	}
	if got := Tag("0123456789abcdef"); got != "qmd0123456789ab" {
		t.Errorf("a long id is not cut to 15: %q", got)
	}
}

func TestQsubArgs(t *testing.T) {
	const id = "7f3a00c0ffee"
	for _, tc := range []struct {
		opts []string
		want []string
	}{
		{nil, []string{"qsub", "-N", "qmd7f3a00c0ffee", "-v", "QMD_JOB_ID=7f3a00c0ffee",
			"job.pbs"}},
		{[]string{"-q", "workq", "-l", "select=1:ncpus=4"}, []string{"qsub", "-q", "workq",
			"-l", "select=1:ncpus=4", "-N", "qmd7f3a00c0ffee", "-v", "QMD_JOB_ID=7f3a00c0ffee",
			"job.pbs"}},
		// The site's -v, in either spelling, joins qmd's single -v.
		{[]string{"-v", "OMP_NUM_THREADS=4", "-A", "PROJ-0001", "-vSCRATCH=/tmp"},
			[]string{"qsub", "-A", "PROJ-0001", "-N", "qmd7f3a00c0ffee", "-v",
				"OMP_NUM_THREADS=4,SCRATCH=/tmp,QMD_JOB_ID=7f3a00c0ffee", "job.pbs"}},
		// -V (export the whole environment) is another option, not a -v.
		{[]string{"-V"}, []string{"qsub", "-V", "-N", "qmd7f3a00c0ffee", "-v",
			"QMD_JOB_ID=7f3a00c0ffee", "job.pbs"}},
	} {
		if got := QsubArgs(id, tc.opts, "job.pbs"); !slices.Equal(got, tc.want) {
			t.Errorf("QsubArgs(%q) =\n %q\nwant\n %q", tc.opts, got, tc.want)
		}
	}
}

func TestQstatQdelArgs(t *testing.T) {
	ids := []string{"1.pbs01", "2[].pbs01"}
	if got := QstatArgs(ids); !slices.Equal(got, []string{"qstat", "-f", "-F", "json", "-x",
		"1.pbs01", "2[].pbs01"}) {
		t.Errorf("QstatArgs = %q", got)
	}
	if got := QdelArgs(ids); !slices.Equal(got, []string{"qdel", "1.pbs01", "2[].pbs01"}) {
		t.Errorf("QdelArgs = %q", got)
	}
}

func TestChunk(t *testing.T) {
	ids := make([]string, 250)
	for i := range ids {
		ids[i] = fmt.Sprintf("%d.pbs01", i)
	}
	chunks := Chunk(ids, 0)
	if len(chunks) != 3 || len(chunks[0]) != MaxIDsPerCall || len(chunks[2]) != 50 {
		t.Fatalf("chunk sizes %d", len(chunks))
	}
	if !slices.Equal(slices.Concat(chunks...), ids) {
		t.Error("chunks lose or reorder ids")
	}
	// Appending to one chunk must not overwrite the next.
	_ = append(chunks[0], "x")
	if chunks[1][0] != "100.pbs01" {
		t.Error("append to a chunk overwrote the next one")
	}
	if got := Chunk(nil, 10); len(got) != 0 {
		t.Errorf("Chunk(nil) = %q", got)
	}
	if got := Chunk(ids[:3], 2); len(got) != 2 || len(got[1]) != 1 {
		t.Errorf("Chunk(3 ids, 2) = %q", got)
	}
}
