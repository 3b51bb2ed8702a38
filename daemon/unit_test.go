package daemon_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestSystemdUnit verifies systemd/qmd.service with systemd-analyze: no warning at all
// (verify exits 0 on unknown keys, so its output is read), and an exposure score under 4.
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("systemd-analyze not found but CI is set")
		}
		t.Skip("systemd-analyze not found")
	}
	qmd, _ := binaries(t)
	unit, err := os.ReadFile("../systemd/qmd.service")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "qmd.service")
	text := strings.ReplaceAll(string(unit), "/usr/local/bin/qmd", qmd)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	out, _ = exec.Command(analyze, "security", "--offline=true", path).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for qmd.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	if score >= 4.0 {
		t.Errorf("exposure level %.1f, want under 4.0:\n%s", score, out)
	}
	t.Logf("systemd-analyze security: exposure %.1f", score)
}
