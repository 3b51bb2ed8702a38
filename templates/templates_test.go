package templates

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"qmd/scheduler/runner"
)

var update = flag.Bool("update", false, "rewrite the golden renders in testdata/")

var waterAtoms = []Atom{
	{Element: "O", X: 0, Y: 0, Z: 0.1173},
	{Element: "H", X: 0, Y: 0.7572, Z: -0.4692},
	{Element: "H", X: 0, Y: -0.7572, Z: -0.4692},
}

var ethanolAtoms = []Atom{
	{Element: "C", X: 0.93432, Y: 0.04080, Z: 0.05198},
	{Element: "C", X: 2.44861, Y: 0.04766, Z: 0.04963},
	{Element: "O", X: 2.93029, Y: 1.34304, Z: 0.37527},
	{Element: "H", X: 0.54952, Y: -0.95435, Z: -0.18762},
	{Element: "H", X: 0.54232, Y: 0.75551, Z: -0.67907},
	{Element: "H", X: 0.54884, Y: 0.34291, Z: 1.03135},
	{Element: "H", X: 2.84003, Y: -0.23632, Z: -0.93205},
	{Element: "H", X: 2.83560, Y: -0.65643, Z: 0.79199},
	{Element: "H", X: 2.59071, Y: 1.95955, Z: -0.29565},
}

// TestGolden renders each default template with the data qmd's presets produce and
// compares it with testdata/<name>.golden; go test -update rewrites the files.
func TestGolden(t *testing.T) {
	tests := []struct {
		name     string
		template string
		data     any
	}{
		{
			name:     "deck_draft_gas_water.nw",
			template: NWChemNMR,
			data: Deck{
				JobID: "j-0001", Prefix: "job", Level: "B3LYP/6-31G*//B3LYP/6-31G* gas",
				MemoryMB: 1000, PermanentDir: "./output", ScratchDir: "./scratch",
				Charge: 0, Multiplicity: 1, Atoms: waterAtoms, Functional: "b3lyp",
				OptBasis: "6-31G*", NMRBasis: "6-31G*", MaxOptSteps: 100,
			},
		},
		{
			name:     "deck_production_chcl3_ethanol_cation.nw",
			template: NWChemNMR,
			data: Deck{
				JobID: "j-0002", Prefix: "job",
				Level:    "B3LYP/6-311+G(2d,p)//B3LYP/6-31G* COSMO(chcl3)",
				MemoryMB: 2000, PermanentDir: "./output", ScratchDir: "./scratch",
				Charge: 1, Multiplicity: 2, Atoms: ethanolAtoms, Functional: "b3lyp",
				OptBasis: "6-31G*", NMRBasis: "6-311+G(2d,p)", Solvent: "chcl3",
				MaxOptSteps: 150,
			},
		},
		{
			name:     "script_nwchem.sh",
			template: LocalScript,
			data: Script{
				JobID: "j-0001", Level: "B3LYP/6-31G*//B3LYP/6-31G* gas", Deck: "job.nw",
				Command: []string{"nwchem"},
			},
		},
		{
			name:     "script_mpirun.sh",
			template: LocalScript,
			data: Script{
				JobID: "j-0002", Level: "B3LYP/6-311+G(2d,p)//B3LYP/6-31G* COSMO(chcl3)",
				Deck: "job.nw",
				Command: []string{"mpirun", "--oversubscribe", "--allow-run-as-root", "-np", "2",
					"/usr/bin/nwchem"},
			},
		},
	}
	s := mustNew(t, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Render(tt.template, tt.data)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			path := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("render differs from %s:\n--- got\n%s\n--- want\n%s", path, got, want)
			}
		})
	}
}

func mustNew(t *testing.T, overrideDir string) *Set {
	t.Helper()
	s, err := New(overrideDir)
	if err != nil {
		t.Fatalf("New(%q): %v", overrideDir, err)
	}
	return s
}

// overlay makes an override directory holding the given templates.
func overlay(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var sampleScript = Script{JobID: "j1", Level: "draft", Deck: "job.nw", Command: []string{"nwchem"}}

// TestOverride checks that an override shadows only the files it holds.
func TestOverride(t *testing.T) {
	dir := overlay(t, map[string]string{NWChemNMR: "custom deck for {{.JobID}}\n"})
	s := mustNew(t, dir)
	def := mustNew(t, "")

	deck, err := s.Render(NWChemNMR, Deck{JobID: "j1"})
	if err != nil {
		t.Fatal(err)
	}
	if deck != "custom deck for j1\n" {
		t.Errorf("overridden deck = %q", deck)
	}

	got, err := s.Render(LocalScript, sampleScript)
	if err != nil {
		t.Fatal(err)
	}
	want, err := def.Render(LocalScript, sampleScript)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("script not overridden, yet it differs from the embedded one:\n%s", got)
	}
}

func TestNewErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{filepath.Join(t.TempDir(), "missing"), file} {
		if _, err := New(dir); err == nil {
			t.Errorf("New(%q) succeeded", dir)
		}
	}
}

// TestRenderErrors checks that a broken template fails the render rather than writing a
// deck or script with holes in it.
func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		dirs    []string // directories created where a template file is expected
		tmpl    string
		data    any
		wantErr string
	}{
		{
			name:    "unknown field",
			files:   map[string]string{LocalScript: "run {{.Nope}}\n"},
			tmpl:    LocalScript,
			data:    sampleScript,
			wantErr: "Nope",
		},
		{
			name:    "missing map key",
			files:   map[string]string{LocalScript: "run {{.cmd}}\n"},
			tmpl:    LocalScript,
			data:    map[string]any{"deck": "job.nw"},
			wantErr: "cmd",
		},
		{
			name:    "parse error",
			files:   map[string]string{NWChemNMR: "start {{.Prefix\n"},
			tmpl:    NWChemNMR,
			data:    Deck{},
			wantErr: "parse template",
		},
		{
			name:    "unknown template",
			tmpl:    "sge/job.sh.tmpl",
			data:    sampleScript,
			wantErr: "sge/job.sh.tmpl",
		},
		{
			name:    "unreadable override is not skipped",
			dirs:    []string{LocalScript},
			tmpl:    LocalScript,
			data:    sampleScript,
			wantErr: "override",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := overlay(t, tt.files)
			for _, d := range tt.dirs {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			out, err := mustNew(t, dir).Render(tt.tmpl, tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Render() = %q, %v; want an error mentioning %q", out, err, tt.wantErr)
			}
		})
	}
}

// TestHash checks that the hash recorded with each job follows the templates' text.
func TestHash(t *testing.T) {
	names := []string{NWChemNMR, LocalScript}
	hash := func(dir string, names ...string) string {
		t.Helper()
		h, err := mustNew(t, dir).Hash(names...)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}

	base := hash("", names...)
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(base) {
		t.Errorf("Hash = %q, want 16 hex digits", base)
	}
	if again := hash("", names...); again != base {
		t.Errorf("Hash not stable: %s then %s", base, again)
	}

	embeddedScript, err := mustNew(t, "").Source(LocalScript)
	if err != nil {
		t.Fatal(err)
	}
	same := overlay(t, map[string]string{LocalScript: string(embeddedScript)})
	if h := hash(same, names...); h != base {
		t.Errorf("an override equal to the default changed the hash: %s vs %s", h, base)
	}

	v1 := overlay(t, map[string]string{LocalScript: string(embeddedScript) + "# site v1\n"})
	v2 := overlay(t, map[string]string{LocalScript: string(embeddedScript) + "# site v2\n"})
	h1, h2 := hash(v1, names...), hash(v2, names...)
	if h1 == base || h2 == base || h1 == h2 {
		t.Errorf("hash did not follow the override: default %s, v1 %s, v2 %s", base, h1, h2)
	}
	if hash(v1, NWChemNMR) != hash("", NWChemNMR) {
		t.Error("overriding the script changed the hash of the deck alone")
	}

	if _, err := mustNew(t, "").Hash("nope.tmpl"); err == nil {
		t.Error("Hash of an unknown template succeeded")
	}
}

// TestScriptRuns renders the local batch script and runs it with /bin/sh, with a fake
// NWChem command. Arguments must arrive literally: "$(touch pwned)" must not run.
func TestScriptRuns(t *testing.T) {
	tests := []struct {
		name       string
		command    []string
		term       bool // send SIGTERM to the script's process group once it runs
		wantOut    string
		wantStatus int
	}{
		{
			name:       "hostile arguments stay inert",
			command:    []string{"/bin/echo", "a b", "$(touch pwned)", "it's", "`touch pwned`"},
			wantOut:    "a b $(touch pwned) it's `touch pwned` job.nw\n",
			wantStatus: 0,
		},
		{
			name:       "program fails",
			command:    []string{"/bin/sh", "-c", `echo "deck $1"; exit 7`, "sh"},
			wantOut:    "deck job.nw\n",
			wantStatus: 7,
		},
		{
			name:       "cancelled",
			command:    []string{"/bin/sh", "-c", "echo started; exec sleep 10", "sh"},
			term:       true,
			wantOut:    "started\n",
			wantStatus: 143,
		},
	}
	s := mustNew(t, "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script, err := s.Render(LocalScript, Script{
				JobID: "j1", Level: "draft", Deck: "job.nw", Command: tt.command,
			})
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			err = os.WriteFile(filepath.Join(dir, "job.sh"), []byte(script), 0o644)
			if err != nil {
				t.Fatal(err)
			}

			before := time.Now().Unix()
			cmd := exec.Command("/bin/sh", "job.sh")
			cmd.Dir = dir
			cmd.Env = runner.Environ(os.Environ())
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if cmd.ProcessState == nil { // a failed test left the script running
					_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				}
			})
			if tt.term {
				waitForFile(t, filepath.Join(dir, "output", "nwchem.out"), "started\n")
				if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
			}
			err = cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != tt.wantStatus {
				t.Errorf("script exit code = %d (%v), want %d; stderr %q", code, err,
					tt.wantStatus, stderr.String())
			}

			out, err := os.ReadFile(filepath.Join(dir, "output", "nwchem.out"))
			if err != nil || string(out) != tt.wantOut {
				t.Errorf("output/nwchem.out = %q, %v; want %q", out, err, tt.wantOut)
			}
			for _, f := range []string{"pwned", "exit_status.tmp"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
					t.Errorf("file %s exists", f)
				}
			}
			checkExitFile(t, dir, tt.wantStatus, before)
		})
	}
}

// checkExitFile checks exit_status holds "code unix-time" with a time from this run.
func checkExitFile(t *testing.T, dir string, wantCode int, notBefore int64) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "exit_status"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] != strconv.Itoa(wantCode) {
		t.Fatalf("exit_status = %q, want %d and a time", b, wantCode)
	}
	at, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || at < notBefore || at > time.Now().Unix() {
		t.Errorf("exit_status time %q is not the time of this run", f[1])
	}
}

func waitForFile(t *testing.T, path, content string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil && string(b) == content {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never held %q", path, content)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
