package pbs

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestRepairJSON pins each repair: what is changed and what must stay.
func TestRepairJSON(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     string
		quotes bool
		want   string
	}{
		{"raw newline and tab", "{\"a\":\"x\ny\tz\"}", false, `{"a":"x\ny\tz"}`},
		{"other control bytes", "{\"a\":\"\x01\x1b\r\"}", false, `{"a":"\u0001\u001b\r"}`},
		{"invalid escapes", `{"a":"\q \u@\h \x"}`, false, `{"a":"\\q \\u@\\h \\x"}`},
		{"short \\u", `{"a":"\u12"}`, false, `{"a":"\\u12"}`},
		{"valid escapes stay", `{"a":"\"\\\/\b\f\n\r\t\u00e9"}`, false,
			`{"a":"\"\\\/\b\f\n\r\t\u00e9"}`},
		{"backslash at the very end", `{"a":"x\`, false, `{"a":"x\\`},
		{"outside strings untouched", "{\n\t\"a\" : 1 }\n", false, "{\n\t\"a\" : 1 }\n"},
		{"bare quotes", "{\n\"a\":\"say \"hi\" now\",\n\"b\":1\n}", true,
			"{\n\"a\":\"say \\\"hi\\\" now\",\n\"b\":1\n}"},
		{"bare quotes left alone without quotes", "{\"a\":\"say \"hi\" now\"}", false,
			"{\"a\":\"say \"hi\" now\"}"},
		{"lone backslash ending a value", "{\n\"a\":\"C:\\\",\n\"b\":1\n}", true,
			"{\n\"a\":\"C:\\\\\",\n\"b\":1\n}"},
		{"escaped JSON inside a value", "{\n\"a\":\"{\\\"k\\\":[1]}\"\n}", true,
			"{\n\"a\":\"{\\\"k\\\":[1]}\"\n}"},
	} {
		if got := string(repairJSON([]byte(tc.in), tc.quotes)); got != tc.want {
			t.Errorf("%s: repairJSON(%q) =\n %q\nwant\n %q", tc.name, tc.in, got, tc.want)
		}
	}
}

// TestRepairKeepsValidJSON: the safe repair never changes valid JSON, and what it returns
// for PBS-shaped output with raw bytes in strings is valid JSON with the same text.
func TestRepairKeepsValidJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("ab\"\\/\n\t\x01\x7fé€😀 {}[]:,u0")
	for i := 0; i < 2000; i++ {
		vals := map[string]string{}
		for j := 0; j < 4; j++ {
			var k, v strings.Builder
			for n := rng.IntN(12); n > 0; n-- {
				k.WriteRune(alphabet[rng.IntN(len(alphabet))])
				v.WriteRune(alphabet[rng.IntN(len(alphabet))])
			}
			vals[k.String()] = v.String()
		}
		valid, err := json.MarshalIndent(vals, "", "    ")
		if err != nil {
			t.Fatal(err)
		}
		if got := repairJSON(valid, false); !bytes.Equal(got, valid) {
			t.Fatalf("repair changed valid JSON:\n%s\n%s", valid, got)
		}

		// The same document as PBS prints it: strings copied raw, backslashes and
		// control characters unescaped. Quotes, and backslashes that happen to form a
		// valid escape ("\b"), are left out: raw, they are ambiguous.
		var raw bytes.Buffer
		raw.WriteString("{\n")
		first := true
		for k, v := range vals {
			if ambiguous(k) || ambiguous(v) {
				continue
			}
			if !first {
				raw.WriteString(",\n")
			}
			first = false
			raw.WriteString(`    "` + k + `":"` + v + `"`)
		}
		raw.WriteString("\n}\n")
		fixed := repairJSON(raw.Bytes(), false)
		var back map[string]string
		if err := json.Unmarshal(fixed, &back); err != nil {
			t.Fatalf("repaired %q is not JSON: %v\n%s", raw.Bytes(), err, fixed)
		}
		for k, v := range back {
			if !strings.Contains(raw.String(), k) || !strings.Contains(raw.String(), v) {
				t.Fatalf("repair changed the text: %q -> %q", raw.Bytes(), fixed)
			}
		}
	}
}

// TestScanValue follows values without decoding them, and refuses what it cannot follow.
func TestScanValue(t *testing.T) {
	for _, tc := range []struct {
		in  string
		end int // -1: an error
	}{
		{`"ab\"c" x`, 7},
		{`{"a":{"b":[1,"}"]}} x`, 19},
		{`-12.5e3,`, 7},
		{`true}`, 4},
		{`{"a":1`, -1},
		{`"abc`, -1},
		{``, -1},
		{`,`, -1},
		{strings.Repeat("[", 100000) + strings.Repeat("]", 100000), 200000},
	} {
		end, err := scanValue([]byte(tc.in), 0)
		if tc.end < 0 && err == nil || tc.end >= 0 && (err != nil || end != tc.end) {
			t.Errorf("scanValue(%.40q) = %d, %v; want %d", tc.in, end, err, tc.end)
		}
	}
}

// ambiguous reports whether s, printed raw between quotes, could be read two ways.
func ambiguous(s string) bool {
	if strings.ContainsRune(s, '"') || strings.HasSuffix(s, `\`) {
		return true
	}
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '\\' && strings.IndexByte(`\/bfnrtu`, s[i+1]) >= 0 {
			return true
		}
	}
	return false
}
