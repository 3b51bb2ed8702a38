package pbs

import "strings"

// ValidID reports whether s has the shape of a PBS or Torque job id: a sequence number,
// optionally an array part ("[]" for the array, "[7]" for a subjob), optionally "." and
// the server name ("123.pbs01", "123[].pbs01.example.org"). The Slurm Torque wrappers
// print bare numbers ("21"), so the server part is optional.
func ValidID(s string) bool {
	seq, server := splitID(s)
	if seq == "" {
		return false
	}
	return server == "" && len(seq) == len(s) || validServer(server)
}

// splitID splits an id into its sequence part (number and array brackets) and its server
// part (without the dot). seq is "" when s does not start like an id.
func splitID(s string) (seq, server string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return "", ""
	}
	if i < len(s) && s[i] == '[' {
		end := strings.IndexByte(s[i:], ']')
		if end < 0 {
			return "", ""
		}
		for _, c := range s[i+1 : i+end] {
			if (c < '0' || c > '9') && !strings.ContainsRune("-:,%", c) {
				return "", ""
			}
		}
		i += end + 1
	}
	if i == len(s) {
		return s, ""
	}
	if s[i] != '.' {
		return "", ""
	}
	return s[:i], s[i+1:]
}

// validServer reports whether s can be a server (host) name: labels of letters, digits,
// '-' and '_' separated by single dots.
func validServer(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c == '-', c == '_':
		case c == '.':
			if s[i-1] == '.' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// SameJob reports whether two spellings of a job id name the same job. qsub may print the
// server's full domain name while qstat prints a shorter one ("1584224.biocluster.example.org"
// and "1584224.biocluster"), so ids match on the sequence part, array brackets included,
// plus the first label of the server name, ignoring case. An id without a server part
// (Torque with display_job_server_suffix off, the Slurm wrappers) matches on the sequence
// part alone: a qmd cluster talks to one server, whose sequence numbers are unique. An
// array ("123[]") never matches a plain job ("123").
func SameJob(a, b string) bool {
	seqA, srvA := splitID(a)
	seqB, srvB := splitID(b)
	if seqA == "" || seqA != seqB {
		return false
	}
	if srvA == "" || srvB == "" {
		return true
	}
	labelA, _, _ := strings.Cut(srvA, ".")
	labelB, _, _ := strings.Cut(srvB, ".")
	return strings.EqualFold(labelA, labelB)
}

// namedJobID returns the job id a message line names, or "". PBS and Torque put the id
// before or after the message ("qstat: 5487654.pbs01 Job has finished, …", "qdel: Job
// has finished 1234.pbs01", "qstat: Unknown Job Id Error 4242.torque01"), always with its
// server; a word is taken as an id only then, and only if the server part holds a letter,
// so numbers and addresses in a message ("errno=111", "10.0.0.1") are not. The Slurm
// wrappers name bare numbers, after "job id" ("Kill job error on job id 23: …").
func namedJobID(line string) string {
	words := strings.Fields(line)
	for _, w := range words {
		w = strings.Trim(w, ",;:()'\"`")
		if seq, server := splitID(w); seq != "" && server != "" && validServer(server) &&
			strings.ContainsFunc(server, isLetter) {
			return w
		}
	}
	for i := 0; i+2 < len(words); i++ {
		if strings.EqualFold(words[i], "job") && strings.EqualFold(words[i+1], "id") {
			w := strings.Trim(words[i+2], ",;:()'\"`")
			if ValidID(w) {
				return w
			}
		}
	}
	return ""
}

func isLetter(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }
