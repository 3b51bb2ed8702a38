package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// goTool is the go command of the toolchain running the tests, so the checks below use
// the same Go as the build rather than whatever PATH offers.
func goTool(t *testing.T) string {
	t.Helper()
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no go command at %s: %v", p, err)
	}
	return p
}

// TestNoHeavyDeps keeps qmctl small and installable on login nodes: it must not link the
// daemon's SQLite driver (cgo), SSH client or metrics library.
func TestNoHeavyDeps(t *testing.T) {
	out, err := exec.Command(goTool(t), "list", "-deps", "qmd/ctl/cmd/qmctl").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/mattn/go-sqlite3",
		"golang.org/x/crypto/ssh",
		"github.com/prometheus/client_golang",
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if pkg == f || strings.HasPrefix(pkg, f+"/") {
				t.Errorf("qmctl depends on %s", pkg)
			}
		}
	}
	if !strings.Contains(string(out), "qmd/ctl/client") {
		t.Errorf("go list output does not look like qmctl's dependencies:\n%s", out)
	}
}

// TestVersionLdflags builds qmctl the way a release does and checks the -X path, which
// would otherwise fail silently if the package or variable were renamed.
func TestVersionLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "qmctl")
	build := exec.Command(goTool(t), "build", "-o", bin,
		"-ldflags", "-X qmd/ctl/cli.Version=1.2.3-test", "qmd/ctl/cmd/qmctl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "version", "--socket", filepath.Join(t.TempDir(), "none.sock"))
	out, err := cmd.Output()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Errorf("qmctl version without a daemon: err %v, want exit status 2", err)
	}
	if string(out) != "qmctl 1.2.3-test\n" {
		t.Errorf("stdout %q, want the linked version", out)
	}
}
