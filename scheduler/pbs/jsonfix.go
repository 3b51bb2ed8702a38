package pbs

import (
	"encoding/json"
	"errors"
	"fmt"
)

// PBS Pro writes `qstat -F json` by printing attribute strings between quotes without
// escaping all of them: a Variable_List copied from a user's environment can hold raw
// newlines and tabs (exported bash functions), backslashes that do not start a JSON
// escape (a PS1 of `\u@\h`, Windows paths, `\q`), and in some versions bare quotes. The
// functions here turn such bytes back into JSON, then cut the document into one piece
// per job, so a job whose record still cannot be read costs only that job.

// repairJSON returns b with the strings made valid. Inside a string, a raw control
// character becomes its \u escape and a backslash that does not start a valid escape is
// doubled. Neither can change valid JSON, which has no such bytes. With quotes set, a
// quote that cannot end the string (see closesString) is escaped as well, and so is a
// backslash before a quote that can only be the string's end. That is a guess, which can
// change a valid document, so readJSON makes it only when the safe repair left something
// unreadable, and keeps its reading only for the jobs it reads better.
func repairJSON(b []byte, quotes bool) []byte {
	out := make([]byte, 0, len(b)+len(b)/16)
	in := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !in {
			out = append(out, c)
			in = c == '"'
			continue
		}
		switch {
		case c == '"':
			if quotes && !closesString(b, i+1) {
				out = append(out, '\\', '"')
				continue
			}
			out = append(out, c)
			in = false
		case c == '\\':
			switch {
			case i+1 >= len(b):
				out = append(out, '\\', '\\')
			case b[i+1] == '"' && quotes && closesValue(b, i+2):
				out = append(out, '\\', '\\') // a lone backslash ending a value
			case validEscape(b[i+1:]):
				out = append(out, c, b[i+1])
				i++
			default:
				out = append(out, '\\', '\\')
			}
		case c < 0x20:
			out = appendControl(out, c)
		default:
			out = append(out, c)
		}
	}
	return out
}

// validEscape reports whether rest (the bytes after a backslash) starts a JSON escape.
func validEscape(rest []byte) bool {
	switch rest[0] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return true
	case 'u':
		if len(rest) < 5 {
			return false
		}
		for _, h := range rest[1:5] {
			if !isHex(h) {
				return false
			}
		}
		return true
	}
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// appendControl appends the JSON escape of a control character.
func appendControl(out []byte, c byte) []byte {
	switch c {
	case '\n':
		return append(out, '\\', 'n')
	case '\t':
		return append(out, '\\', 't')
	case '\r':
		return append(out, '\\', 'r')
	}
	const hex = "0123456789abcdef"
	return append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
}

// closesString reports whether a quote followed by b[i:] can end a string in the layout
// qstat -F json prints, one member per line: a key's quote is followed by a colon and its
// value, a value's by the end of the line, a comma and the end of the line, or a closing
// brace. A quote followed by anything else is taken as part of the text. The guess relies
// on that layout; on any other, fewer strings close and the repair reads fewer jobs, so
// readJSON does not keep it.
func closesString(b []byte, i int) bool {
	i = skipBlanks(b, i)
	if i >= len(b) {
		return true
	}
	switch b[i] {
	case '}', ']', '\n', '\r':
		return true
	case ',':
		i = skipBlanks(b, i+1)
		return i >= len(b) || b[i] == '\n' || b[i] == '\r'
	case ':':
		i = skipBlanks(b, i+1)
		return i < len(b) && startsValue(b[i:])
	}
	return false
}

// closesValue is closesString for a quote that can only end a value, never a key: the
// quote after a lone backslash. "\":" is far likelier escaped JSON inside a value
// ({\"a\":1}) than a key that ends in a backslash.
func closesValue(b []byte, i int) bool {
	j := skipBlanks(b, i)
	return j >= len(b) || b[j] != ':' && closesString(b, i)
}

// startsValue reports whether b starts a JSON value.
func startsValue(b []byte) bool {
	switch c := b[0]; {
	case c == '"', c == '{', c == '[', c == '-', c >= '0' && c <= '9':
		return true
	}
	for _, lit := range []string{"true", "false", "null"} {
		if len(b) >= len(lit) && string(b[:len(lit)]) == lit &&
			(len(b) == len(lit) || isDelimiter(b[len(lit)])) {
			return true
		}
	}
	return false
}

// skipBlanks skips spaces and tabs.
func skipBlanks(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

// errSyntax reports structure the scanner cannot follow; it is wrapped with the offset.
var errSyntax = errors.New("not JSON")

// skipSpace skips JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString returns the offset just past the string starting at b[i] (a quote).
func scanString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("%w: unterminated string at byte %d", errSyntax, i)
}

// scanValue returns the offset just past the value starting at b[i]. Objects and arrays
// are followed by counting brackets outside strings, without recursion, so deep nesting
// in hostile input cannot exhaust the stack; whether the value is valid inside is left to
// encoding/json.
func scanValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, fmt.Errorf("%w: value expected at end of input", errSyntax)
	}
	switch b[i] {
	case '"':
		return scanString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := scanString(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("%w: unclosed %q at byte %d", errSyntax, b[i], i)
	}
	j := i
	for j < len(b) && !isDelimiter(b[j]) {
		j++
	}
	if j == i {
		return 0, fmt.Errorf("%w: value expected at byte %d", errSyntax, i)
	}
	return j, nil
}

func isDelimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ':', ' ', '\t', '\n', '\r', '"', '{', '[':
		return true
	}
	return false
}

// eachMember walks the object starting at b[i] and calls value for each member, in
// order, with the decoded key and the offset of its value; value reads the value and
// returns the offset past it. eachMember returns the offset past the object, or the first
// error, its own or value's. Letting value read the value lets a caller walk into one
// member (the jobs) and keep what it read before a break further in.
func eachMember(b []byte, i int, value func(key string, at int) (int, error)) (int, error) {
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != '{' {
		return 0, fmt.Errorf("%w: object expected at byte %d", errSyntax, i)
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, fmt.Errorf("%w: member name expected at byte %d", errSyntax, i)
		}
		keyEnd, err := scanString(b, i)
		if err != nil {
			return 0, err
		}
		var key string
		if json.Unmarshal(b[i:keyEnd], &key) != nil {
			return 0, fmt.Errorf("%w: unreadable member name at byte %d", errSyntax, i)
		}
		i = skipSpace(b, keyEnd)
		if i >= len(b) || b[i] != ':' {
			return 0, fmt.Errorf("%w: ':' expected at byte %d", errSyntax, i)
		}
		valEnd, err := value(key, skipSpace(b, i+1))
		if err != nil {
			return 0, err
		}
		i = skipSpace(b, valEnd)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == '}' {
			return i + 1, nil
		}
		return 0, fmt.Errorf("%w: ',' or '}' expected at byte %d", errSyntax, i)
	}
}
