package runner

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// shells are the shells quoted words must survive: /bin/sh is dash on Debian.
var shells = []string{"/bin/sh", "/bin/bash"}

func TestQuote(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "''"},
		{"nwchem", "nwchem"},
		{"/usr/bin/nwchem", "/usr/bin/nwchem"},
		{"--oversubscribe", "--oversubscribe"},
		{"job_1.nw", "job_1.nw"},
		{"user@host:/p,q+r%s", "user@host:/p,q+r%s"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"'", `''\'''`},
		{"$HOME", "'$HOME'"},
		{"$(touch pwned)", "'$(touch pwned)'"},
		{"`id`", "'`id`'"},
		{"!!", "'!!'"},
		{"a\nb", "'a\nb'"},
		{"6-31G*", "'6-31G*'"},
		{"~", "'~'"},
		{"x;y", "'x;y'"},
		{"\xff", "'\xff'"},
		{"é", "'é'"},
		// Bare, these would be an assignment or a reserved word in command position.
		{"A=b", "'A=b'"},
		{"--mca=x", "'--mca=x'"},
		{"if", "'if'"},
		{"time", "'time'"},
		{"done", "'done'"},
		{"iff", "iff"},
	}
	for _, tt := range tests {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestQuoteArgv(t *testing.T) {
	tests := []struct {
		argv []string
		want string
	}{
		{nil, ""},
		{[]string{"nwchem"}, "nwchem"},
		{[]string{"mpirun", "-np", "2", "nwchem"}, "mpirun -np 2 nwchem"},
		{[]string{"/bin/echo", "a b", "", "it's"}, `/bin/echo 'a b' '' 'it'\''s'`},
	}
	for _, tt := range tests {
		if got := QuoteArgv(tt.argv); got != tt.want {
			t.Errorf("QuoteArgv(%q) = %q, want %q", tt.argv, got, tt.want)
		}
	}
}

// TestQuoteArgvCommandWord checks that the first word of a quoted argv names the program to
// run in both shells, even when it looks like an assignment or a reserved word.
func TestQuoteArgvCommandWord(t *testing.T) {
	bin := t.TempDir()
	names := []string{"V=1", "if", "time", "done", "plain"}
	for _, n := range names {
		script := "#!/bin/sh\nprintf '%s' \"${0##*/}\"; printf ' %s' \"$@\"\n"
		if err := os.WriteFile(filepath.Join(bin, n), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "PATH="+bin+":/usr/bin:/bin")

	for _, sh := range shells {
		for _, n := range names {
			argv := []string{n, "x", "y z"}
			cmd := exec.Command(sh, "-c", QuoteArgv(argv))
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if want := n + " x y z"; err != nil || string(out) != want {
				t.Errorf("%s -c %q: %q, %v; want %q", sh, QuoteArgv(argv), out, err, want)
			}
		}
	}
}

// TestQuoteArgvRoundTrip runs printf through each shell with awkward arguments and checks
// that every word arrives as one argument, byte for byte.
func TestQuoteArgvRoundTrip(t *testing.T) {
	args := []string{
		"", " ", "a b", "it's", `"`, `\`, `\'`, "$HOME", "${x:-y}", "$(echo hi)", "`echo hi`",
		"!", "!!", "a\nb", "\t", "*", "?", "[a]", "{a,b}", "~root", "#c", "x;y", "x|y", "x&y",
		"<", ">", "A=b", "--x=y", "-n", "%s", "\xff\xfe", "é", "'''", "''\\''",
	}
	want := strings.Join(args, "\x00") + "\x00"
	for _, sh := range shells {
		line := QuoteArgv(append([]string{"printf", `%s\0`}, args...))
		out, err := exec.Command(sh, "-c", line).Output()
		if err != nil {
			t.Fatalf("%s -c %q: %v", sh, line, err)
		}
		if string(out) != want {
			got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
			t.Errorf("%s: arguments = %q, want %q", sh, got, args)
		}
	}
}

// FuzzQuote checks the property the batch scripts and SSH rely on: a quoted word reaches
// the program unchanged in sh and bash. The seeds live in testdata/fuzz/FuzzQuote; plain
// go test runs only those, and go test -fuzz FuzzQuote explores further.
func FuzzQuote(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			t.Skip("an argument cannot hold NUL")
		}
		q := Quote(s)
		for _, sh := range shells {
			out, err := exec.Command(sh, "-c", "printf '%s' "+q).Output()
			if err != nil {
				t.Fatalf("%s -c \"printf '%%s' \"%s: %v", sh, q, err)
			}
			if !bytes.Equal(out, []byte(s)) {
				t.Fatalf("%s printed %q for Quote(%q) = %s", sh, out, s, q)
			}
		}
		if !strings.Contains(s, "'") && q != s && q != "'"+s+"'" {
			t.Fatalf("Quote(%q) = %s: neither bare nor plainly wrapped", s, q)
		}
	})
}
