package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	wire "qmd/ctl/api"
	"qmd/daemon/job"
)

// awkward strings: everything encoding/json escapes or replaces, and the runes around.
var awkward = []string{
	"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\rcr",
	"\b\f\x00\x01\x1f\x7f", "line\u2028sep\u2029par", "bad \xff\xfe utf-8 \xc3",
	"é ü 中文 🧪", "\xed\xa0\x80 surrogate half", strings.Repeat("x", 300),
}

func marshalWire(t *testing.T, j job.Job) []byte {
	t.Helper()
	b, err := json.Marshal(toWire(j, nil))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendJobMatchesEncodingJSON(t *testing.T) {
	code, neg := 0, -3
	base := job.Job{ID: "0123456789ab", State: job.Running, Cluster: "local",
		CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		UpdatedAt: time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC)}
	var jobs []job.Job
	jobs = append(jobs, base)
	full := base
	full.Name, full.SchedulerID, full.Preset, full.Solvent = "n", "42", "draft", "gas"
	full.OwnerUID, full.Level, full.Software, full.TemplateHash = 1000, "L", "NWChem", "ab"
	full.Error, full.ExitCode = "summary\n\nexcerpt", &code
	jobs = append(jobs, full)
	conf := full
	conf.Kind, conf.ParentID = job.KindConformer, "ba9876543210"
	jobs = append(jobs, conf)
	full.ExitCode = &neg
	full.CreatedAt = time.Date(1700, 1, 1, 0, 0, 0, 1, time.FixedZone("x", 3600))
	jobs = append(jobs, full)
	for _, s := range awkward {
		j := full
		j.Name, j.Error, j.Level, j.SchedulerID = s, s, s, s
		jobs = append(jobs, j)
	}
	// Random strings over a small alphabet rich in the bytes that need care.
	alphabet := []string{"a", "\"", "\\", "<", ">", "&", "\n", "\x00", "\x1f", "\x7f",
		"\xff", "\xc3", "é", "\u2028", "\u2029", "🧪", " "}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var sb strings.Builder
		for range rng.IntN(12) {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		j := full
		j.Name = sb.String()
		jobs = append(jobs, j)
	}

	for i, j := range jobs {
		want := marshalWire(t, j)
		got := appendJob(nil, &j)
		if !bytes.Equal(got, want) {
			t.Fatalf("job %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// The hand-written encoder lists wire.Job's fields by name; a field added to the wire
// type must be added there too, or listings would silently lack it.
func TestAppendJobKnowsEveryWireField(t *testing.T) {
	var tags []string
	rt := reflect.TypeFor[wire.Job]()
	for i := range rt.NumField() {
		tags = append(tags, rt.Field(i).Tag.Get("json"))
	}
	want := []string{"id", "state", "cluster", "scheduler_id", "scheduler_reason,omitempty",
		"name", "preset", "solvent", "owner_uid", "level,omitempty", "software,omitempty", "template_hash,omitempty",
		"created_at", "updated_at", "error", "exit_code,omitempty", "kind,omitempty",
		"parent_id,omitempty",
		"history,omitempty"}
	if !slices.Equal(tags, want) {
		t.Errorf("wire.Job fields are now\n%q\nupdate appendJob and this list", tags)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range awkward {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func TestListAnswerIsValidJSONArray(t *testing.T) {
	e := newEnv(t)
	c := e.serve(&Peer{UID: 0})
	have := 0
	for _, n := range []int{0, 1, 300} { // 300 jobs cross a flush boundary
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			for ; have < n; have++ {
				e.add(fmt.Sprintf("%012x", 0xab0000+have), aliceUID, job.Failed)
			}
			status, body := raw(t, c, "GET", "/v1/jobs", nil, nil)
			var got []wire.Job
			if status != 200 || json.Unmarshal(body, &got) != nil || len(got) != n {
				t.Fatalf("status %d, %d bytes, %d jobs; want %d", status, len(body), len(got), n)
			}
			if n > 0 && (got[0].Error == nil || *got[0].Error != "NWChem failed\n\nexcerpt") {
				t.Errorf("first job %+v", got[0])
			}
		})
	}
}
