package pbs

import (
	"bytes"
	"strings"
)

// The flavours, spelt as the scheduler kinds of qmd's config.
const (
	FlavourPBS    = "pbs"
	FlavourTorque = "torque"
)

// DetectFlavour tells from a qstat answer which flavour of PBS printed it, so a backend
// can report a cluster configured as the wrong one instead of reading nothing from every
// poll: the same flags mean different things to the two (on PBS Pro -x asks for finished
// jobs, on Torque for XML), and finished jobs are F on one and C on the other.
//
// It reads shapes, not version strings: a JSON object is PBS Pro (qstat -F json); a
// "Job Id:" block (qstat -f text) or Torque's XML (<Data>) is Torque, because PBS Pro asked
// with -F json never prints them. It also reads `qstat --version`: PBS Pro prints
// "pbs_version = …", Torque "Version: …". ok is false for anything else, an empty answer
// included.
func DetectFlavour(stdout []byte) (string, bool) {
	s := bytes.TrimPrefix(bytes.TrimSpace(stdout), []byte("\xef\xbb\xbf"))
	s = bytes.TrimSpace(s)
	if len(s) == 0 {
		return "", false
	}
	switch {
	case s[0] == '{':
		return FlavourPBS, true
	case bytes.HasPrefix(s, []byte("<Data>")), bytes.HasPrefix(s, []byte("<?xml")):
		return FlavourTorque, true
	}
	line, _, _ := bytes.Cut(s, []byte("\n"))
	first := strings.TrimSpace(string(line))
	switch {
	case strings.HasPrefix(first, "Job Id:"):
		return FlavourTorque, true
	case strings.HasPrefix(strings.ToLower(first), "pbs_version"):
		return FlavourPBS, true
	case strings.HasPrefix(first, "Version:"):
		return FlavourTorque, true
	}
	return "", false
}
