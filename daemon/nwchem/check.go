package nwchem

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

// FailureKind names why a run failed, in terms qmd can act on (retry with more memory, tell
// the user to fix the deck, restart the optimisation, …).
type FailureKind string

// Failure kinds. The stdout markers behind each are listed in facts/nwchem.md §5.
const (
	InputError      FailureKind = "input_error"
	SCFNotConverged FailureKind = "scf_not_converged"
	OptNotConverged FailureKind = "opt_not_converged"
	OutOfMemory     FailureKind = "out_of_memory"
	MissingBasis    FailureKind = "missing_basis"
	Killed          FailureKind = "killed"
	Incomplete      FailureKind = "incomplete" // no "Total times", no error block
	NoShieldings    FailureKind = "no_shieldings"
	BadSolvent      FailureKind = "bad_solvent" // COSMO printed solvname_long: unknown
	// NWChemError is an error block whose message matches none of the kinds above, or a
	// non-zero exit after a complete-looking output. It exists so that an unknown NWChem
	// error is never reported as one of the specific causes.
	NWChemError FailureKind = "nwchem_error"
)

// Failure explains a failed run: Kind for the program, Summary for the chemist, Excerpt so
// nobody has to open a 100 000-line output to see what NWChem said.
type Failure struct {
	Kind    FailureKind `json:"kind"`
	Summary string      `json:"summary"` // one line
	Excerpt string      `json:"excerpt"` // at most maxExcerpt lines of stdout (+ stderr)
}

// Error makes a Failure usable wherever the daemon passes errors around.
func (f *Failure) Error() string {
	if f == nil {
		return "nwchem: no failure"
	}
	return "nwchem: " + string(f.Kind) + ": " + f.Summary
}

const (
	maxExcerpt   = 30  // lines
	tailLines    = 20  // lines of stdout shown when there is no error block
	maxLineChars = 300 // NWChem pads messages to ~300 columns; longer lines are cut
	// nearBlock is how far above an error block a cause marker may sit and still be shown
	// together with the block (the basis file name is printed just above it).
	nearBlock = 10
)

// lineMarkers are the stdout lines that name a cause (facts §5). They are searched both in
// the error-block message and, for the generic "<task> failed" messages, in the whole output.
// Plain substrings, not regexps: every line of a multi-megabyte output is tested.
var lineMarkers = []struct {
	kind FailureKind
	subs []string
	fold bool // compare in lower case
}{
	{OptNotConverged, []string{"Failed to converge in maximum number of steps"}, false},
	{SCFNotConverged, []string{"Calculation failed to converge"}, false},
	{MissingBasis, []string{"non-existing file", "bas_tag_lib: failed opening basis file"},
		false},
	{OutOfMemory, []string{"out of memory", "memory limit unreasonable",
		"insufficient memory", "not enough memory"}, true},
	{InputError, []string{"input_parse: unknown directive", "xc_input: invalid format",
		"usage: task", "Odd number of electrons"}, false},
}

// markerKind returns the kind of the first line marker found in line.
func markerKind(line string) (FailureKind, bool) {
	lower := ""
	for _, m := range lineMarkers {
		l := line
		if m.fold {
			if !strings.Contains(line, "emory") && !strings.Contains(line, "EMORY") {
				continue
			}
			if lower == "" {
				lower = strings.ToLower(line)
			}
			l = lower
		}
		for _, sub := range m.subs {
			if strings.Contains(l, sub) {
				return m.kind, true
			}
		}
	}
	return "", false
}

// messageHints classify error-block messages that no exact marker covers, by the NWChem
// routine or subsystem they name (MA/GA allocators, basis library, input readers).
var messageHints = []struct {
	kind FailureKind
	re   *regexp.Regexp
}{
	{OutOfMemory, regexp.MustCompile(`(?i)\bma_\w+|\bga_(create|allocate)|` +
		`(cannot|could not|unable to|failed to) allocate|allocation fail|memory`)},
	{MissingBasis, regexp.MustCompile(`(?i)\bbas_\w+:|basis set|no basis`)},
	{InputError, regexp.MustCompile(`(?i)\w+_input:|input_parse|usage:|input error`)},
}

// categoryHints map the category line NWChem prints at the bottom of the error block.
var categoryHints = []struct {
	kind FailureKind
	text string
}{
	{MissingBasis, "There is an error in the specified basis set"},
	{InputError, "There is an error in the input file"},
}

var (
	reInputLine   = regexp.MustCompile(`^\s*current input line\s*:`)
	reErrCode     = regexp.MustCompile(`\s+-?\d+\s*$`)
	reStderrSig   = regexp.MustCompile(`(?i)\bsignal\s+(\d+)`)
	reStderrKill  = regexp.MustCompile(`\b(Killed|Terminated)\b|\bSIG(KILL|TERM)\b`)
	reBasisFile   = regexp.MustCompile(`non-existing file`)
	reSolventHead = regexp.MustCompile(`^\s*solvent parameters\s*$`)
	reLongGap     = regexp.MustCompile(` {20,}`)

	reOptDigest = regexp.MustCompile(`^@|Optimization converged|Failed to converge|` +
		`Total times`)
	reShieldDigest = regexp.MustCompile(`Chemical Shielding Tensors|^\s*Atom:\s+\d|` +
		`isotropic\s*=|Task\s+times|Total times`)
)

// errorBlock is NWChem's boxed error report: message, "current input line :", category.
type errorBlock struct {
	start, end int    // line range [start, end) in the scanned stdout
	message    string // the message without NWChem's trailing error code
	category   string // e.g. "There is an error in the input file", may be empty
}

type hit struct {
	kind FailureKind
	line int
}

// scanned is stdout split into lines with the echoed deck removed.
type scanned struct {
	lines []string
	hits  []hit // every line marker, in output order
	block *errorBlock
	// lastConverged is the index of the last "Optimization converged", -1 if none.
	lastConverged int
}

func scan(stdout []byte) *scanned {
	s := &scanned{lastConverged: -1}
	var echo echoTracker
	for _, raw := range bytes.Split(stdout, []byte("\n")) {
		line := strings.TrimRight(string(raw), " \t\r")
		if echo.skip(line) {
			continue
		}
		if strings.Contains(line, "Optimization converged") && reConverged.MatchString(line) {
			s.lastConverged = len(s.lines)
		}
		if k, ok := markerKind(line); ok {
			s.hits = append(s.hits, hit{k, len(s.lines)})
		}
		s.lines = append(s.lines, line)
	}
	for len(s.lines) > 0 && strings.TrimSpace(s.lines[len(s.lines)-1]) == "" {
		s.lines = s.lines[:len(s.lines)-1]
	}
	for i := len(s.lines) - 1; i >= 0; i-- {
		if reInputLine.MatchString(s.lines[i]) {
			s.block = s.errorBlockAt(i)
			break
		}
	}
	return s
}

func isDashes(line string) bool {
	t := strings.TrimSpace(line)
	return len(t) >= 10 && strings.Trim(t, "-") == ""
}

// errorBlockAt reconstructs the box around the "current input line :" line at i:
//
//	----  message  ----  ----  current input line :  N: text  ----  ----  category  ----
//
// walking up past the two dash lines to the message and down to the category.
func (s *scanned) errorBlockAt(i int) *errorBlock {
	b := &errorBlock{}
	j := i - 1
	for j >= 0 && i-j <= 2 && isDashes(s.lines[j]) {
		j--
	}
	msgEnd := j
	for j >= 0 && msgEnd-j < 3 && !isDashes(s.lines[j]) {
		j--
	}
	b.start = j + 1
	if j >= 0 {
		b.start = j // include the opening dash line
	}
	var msg []string
	for k := j + 1; k <= msgEnd; k++ {
		if t := strings.TrimSpace(s.lines[k]); t != "" {
			msg = append(msg, t)
		}
	}
	b.message = strings.Join(strings.Fields(reErrCode.ReplaceAllString(
		strings.Join(msg, " "), "")), " ")

	// Down: the input line itself, then dash lines, then an optional category line.
	k := i + 1
	for k < len(s.lines) && k <= i+2 && !isDashes(s.lines[k]) {
		k++
	}
	for k < len(s.lines) && k <= i+8 {
		t := strings.TrimSpace(s.lines[k])
		if t == "" || strings.HasPrefix(t, "For more information") {
			break
		}
		if !isDashes(t) && b.category == "" {
			b.category = t
		}
		k++
	}
	b.end = k
	return b
}

// lastHit returns the last line marker at or before line limit.
func (s *scanned) lastHit(limit int) (hit, bool) {
	for i := len(s.hits) - 1; i >= 0; i-- {
		if s.hits[i].line <= limit {
			return s.hits[i], true
		}
	}
	return hit{}, false
}

// Check decides whether a run succeeded. Exit codes alone cannot be trusted (NWChem can exit
// 0 after an error, and an abort code that is a multiple of 256 becomes 0), so a run counts
// as successful only if, in addition to exit status 0, the output has "Total times", no
// error block, "Optimization converged" when wantOpt, a COSMO solvent NWChem recognised,
// and exactly one isotropic shielding for each of atoms 1..natoms in the GIAO section.
//
// out is the parsed stdout (Check parses stdout itself when out is nil). exitCode < 0 means
// unknown, e.g. the daemon lost track of the process; signal is the terminating signal or 0.
// An unknown exit code with a complete output and no signal is accepted, so that a daemon
// restarted mid-job does not throw away a finished calculation. natoms <= 0 skips the
// shielding test, for optimisation-only decks. A nil result means success.
func Check(out *Output, stdout, stderr []byte, exitCode, signal, natoms int,
	wantOpt bool) *Failure {
	if out == nil {
		out, _ = Parse(bytes.NewReader(stdout))
	}
	s := scan(stdout)
	armci := firstARMCIError(stderr)
	killed, how := killedBy(exitCode, signal, stderr)

	if s.block != nil {
		return s.blockFailure(out, armci)
	}
	if !out.Finished {
		if killed {
			return s.fail(Killed, "NWChem was killed "+how+" before it finished", armci)
		}
		// A cause printed after the last converged optimisation, with the output cut short
		// before NWChem could print its error block.
		if h, ok := s.lastHit(len(s.lines)); ok && h.line > s.lastConverged {
			return s.fail(h.kind, summarise(h.kind, "", out, s, h.line), armci)
		}
		// stdout may be lost or cut while stderr still carries NWChem's message.
		if k, ok := markerKind(armci); ok {
			return s.fail(k, summarise(k, armciMessage(armci), out, s, -1), armci)
		}
		msg := "NWChem output stops before the end of the run (no \"Total times\" line"
		if exitCode >= 0 {
			msg += fmt.Sprintf(", exit status %d", exitCode)
		}
		return s.fail(Incomplete, msg+")", armci)
	}
	if killed {
		return s.fail(Killed, "NWChem was killed "+how+" after printing its final timing",
			armci)
	}
	if exitCode > 0 {
		return s.fail(NWChemError, fmt.Sprintf(
			"NWChem exited with status %d although its output looks complete", exitCode), armci)
	}
	// An SCF that failed after the optimisation converged means the shieldings were computed
	// from an unconverged density, whatever NWChem did next.
	if h, ok := s.lastHit(len(s.lines)); ok && h.kind == SCFNotConverged &&
		h.line > s.lastConverged {
		return s.fail(SCFNotConverged, "SCF did not converge", armci)
	}
	if wantOpt && !out.OptConverged {
		return &Failure{Kind: OptNotConverged,
			Summary: summarise(OptNotConverged, "", out, s, -1),
			Excerpt: excerpt(s.digest(reOptDigest), armci)}
	}
	if strings.EqualFold(out.SolventLong, "unknown") {
		return s.solventFailure(out)
	}
	if natoms > 0 {
		if f := s.shieldingFailure(out, natoms); f != nil {
			return f
		}
	}
	return nil
}

// blockFailure classifies an NWChem error block: first by the message itself, then, for the
// generic "<task> failed" messages, by the last cause marker printed before the block (and
// after any converged optimisation), then by the category line.
func (s *scanned) blockFailure(out *Output, armci string) *Failure {
	b := s.block
	kind, cause := FailureKind(""), -1
	if k, ok := markerKind(b.message); ok {
		kind = k
	} else {
		for _, m := range messageHints {
			if m.re.MatchString(b.message) {
				kind = m.kind
				break
			}
		}
	}
	if kind == "" {
		// Markers from before a converged optimisation were recovered from; they did not
		// stop the run.
		if h, ok := s.lastHit(b.end); ok && h.line > s.lastConverged {
			kind, cause = h.kind, h.line
		}
	}
	if kind == "" {
		for _, c := range categoryHints {
			if strings.Contains(b.category, c.text) {
				kind = c.kind
				break
			}
		}
	}
	if kind == "" {
		kind, _ = markerKind(armci)
	}
	if kind == "" {
		kind = NWChemError
	}
	if cause < 0 {
		// Show the first marker of this kind just above the block (the missing basis file
		// name sits there), if there is one.
		for _, h := range s.hits {
			if h.kind == kind && h.line >= b.start-nearBlock && h.line < b.start {
				cause = h.line
				break
			}
		}
	}
	var ex []string
	switch {
	case cause >= 0 && cause >= b.start-nearBlock && cause < b.start:
		ex = s.lines[cause:b.end]
	case cause >= 0 && cause < b.start:
		ex = append([]string{s.lines[cause], "[...]"}, s.lines[b.start:b.end]...)
	default:
		ex = s.lines[b.start:b.end]
	}
	return &Failure{
		Kind:    kind,
		Summary: summarise(kind, b.message, out, s, cause),
		Excerpt: excerpt(ex, armci),
	}
}

// summarise writes the one-line explanation for kind. message is the error-block message
// ("" if none); line is the index of the marker that decided the kind, or -1.
func summarise(kind FailureKind, message string, out *Output, s *scanned, line int) string {
	switch kind {
	case OptNotConverged:
		if !out.OptFailed && line < 0 {
			// Finished without either marker: e.g. a deck whose optimisation task never ran.
			return "geometry optimisation did not report convergence"
		}
		switch {
		case out.OptSteps == 1:
			return "geometry optimisation did not converge in 1 step"
		case out.OptSteps > 1:
			return fmt.Sprintf("geometry optimisation did not converge in %d steps",
				out.OptSteps)
		}
		return "geometry optimisation did not converge"
	case SCFNotConverged:
		return "SCF did not converge"
	case MissingBasis:
		if f := s.basisFile(); f != "" {
			return "basis set not found in the NWChem library (no file " + f +
				"); check the basis name"
		}
		return "basis set error: " + orDefault(message, "NWChem could not load the basis")
	case OutOfMemory:
		return "NWChem ran out of memory: " + orDefault(message, "allocation failed")
	case InputError:
		return "error in the NWChem input: " + orDefault(message, "see excerpt")
	}
	return "NWChem stopped with an error: " + orDefault(message, "see excerpt")
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// basisFile returns the path NWChem printed after "non-existing file:", if any.
func (s *scanned) basisFile() string {
	for i, line := range s.lines {
		if !reBasisFile.MatchString(line) {
			continue
		}
		if _, after, ok := strings.Cut(line, "file:"); ok && strings.TrimSpace(after) != "" {
			return strings.TrimSpace(after)
		}
		if i+1 < len(s.lines) {
			return strings.TrimSpace(s.lines[i+1])
		}
	}
	return ""
}

// fail builds a Failure whose excerpt is the tail of stdout.
func (s *scanned) fail(kind FailureKind, summary, armci string) *Failure {
	return &Failure{Kind: kind, Summary: summary, Excerpt: excerpt(s.tail(), armci)}
}

func (s *scanned) tail() []string {
	if len(s.lines) <= tailLines {
		return s.lines
	}
	return s.lines[len(s.lines)-tailLines:]
}

func (s *scanned) solventFailure(out *Output) *Failure {
	name := out.Solvent
	if name == "" {
		name = "?"
	}
	summary := fmt.Sprintf("COSMO does not know the solvent %q; NWChem silently used "+
		"dielectric %g (water) instead", name, out.Dielectric)
	ex := s.tail()
	for i := len(s.lines) - 1; i >= 0; i-- {
		if reSolventHead.MatchString(s.lines[i]) {
			ex = s.lines[i:min(i+5, len(s.lines))]
			break
		}
	}
	return &Failure{Kind: BadSolvent, Summary: summary, Excerpt: excerpt(ex, "")}
}

// shieldingFailure checks that the GIAO section has atoms 1..natoms exactly once each.
func (s *scanned) shieldingFailure(out *Output, natoms int) *Failure {
	seen := make(map[int]bool, len(out.Shieldings))
	ok := len(out.Shieldings) == natoms
	for _, sh := range out.Shieldings {
		if sh.Atom < 1 || sh.Atom > natoms || seen[sh.Atom] {
			ok = false
		}
		seen[sh.Atom] = true
	}
	if ok {
		return nil
	}
	var summary string
	if len(out.Shieldings) == 0 {
		summary = fmt.Sprintf("no GIAO shieldings in the output (expected %d atoms)", natoms)
	} else {
		summary = fmt.Sprintf("GIAO section lists %d isotropic shieldings, expected one for "+
			"each of %d atoms", len(out.Shieldings), natoms)
	}
	return &Failure{Kind: NoShieldings, Summary: summary,
		Excerpt: excerpt(s.digest(reShieldDigest), "")}
}

// digest picks the lines matching re (keeping the last ones) so that a failure found in an
// otherwise complete output shows the relevant lines, not the citation list that ends every
// output. It falls back to the tail when nothing matches.
func (s *scanned) digest(re *regexp.Regexp) []string {
	var d []string
	for _, l := range s.lines {
		if re.MatchString(l) {
			d = append(d, l)
		}
	}
	if len(d) == 0 {
		return s.tail()
	}
	return d
}

// signalNames covers the signals a batch system or an operator sends; SIGXCPU is what Slurm
// and ulimit use for CPU-time limits.
var signalNames = map[int]string{
	1: "SIGHUP", 2: "SIGINT", 6: "SIGABRT", 7: "SIGBUS", 9: "SIGKILL", 11: "SIGSEGV",
	15: "SIGTERM", 24: "SIGXCPU",
}

func signalName(n int) string {
	if s, ok := signalNames[n]; ok {
		return s
	}
	return syscall.Signal(n).String()
}

// killedBy reports whether the process was killed rather than having stopped on its own,
// and how, phrased to follow "NWChem was killed".
func killedBy(exitCode, signal int, stderr []byte) (bool, string) {
	switch {
	case signal > 0:
		return true, fmt.Sprintf("by signal %d (%s)", signal, signalName(signal))
	case exitCode == 137:
		return true, "(exit status 137, SIGKILL)"
	case exitCode == 143:
		return true, "(exit status 143, SIGTERM)"
	}
	if m := reStderrSig.FindSubmatch(stderr); m != nil {
		n, _ := strconv.Atoi(string(m[1]))
		return true, fmt.Sprintf("by signal %d (%s, reported on stderr)", n, signalName(n))
	}
	if m := reStderrKill.Find(stderr); m != nil {
		return true, "(stderr says " + strings.TrimSpace(string(m)) + ")"
	}
	return false, ""
}

// firstARMCIError returns the first "ARMCI Error" line of stderr, which repeats NWChem's
// message and is all that is left when stdout was lost.
func firstARMCIError(stderr []byte) string {
	for _, line := range bytes.Split(stderr, []byte("\n")) {
		if bytes.Contains(line, []byte("ARMCI Error")) {
			return clip(strings.TrimSpace(string(line)))
		}
	}
	return ""
}

// armciMessage extracts NWChem's message from "[0] ARMCI Error: 0:<message>:".
func armciMessage(line string) string {
	_, msg, ok := strings.Cut(line, "ARMCI Error:")
	if !ok {
		return ""
	}
	msg = strings.TrimSpace(msg)
	if i := strings.IndexByte(msg, ':'); i >= 0 && strings.Trim(msg[:i], "0123456789") == "" {
		msg = msg[i+1:]
	}
	return strings.TrimSuffix(strings.TrimSpace(msg), ":")
}

// excerpt joins at most maxExcerpt lines (keeping the last ones, where the error is), clips
// NWChem's padded lines, and appends the stderr line.
func excerpt(lines []string, armci string) string {
	room := maxExcerpt
	if armci != "" {
		room--
	}
	if len(lines) > room {
		lines = lines[len(lines)-room:]
	}
	out := make([]string, 0, len(lines)+1)
	for _, l := range lines {
		out = append(out, clip(l))
	}
	if armci != "" {
		out = append(out, "stderr: "+armci)
	}
	return strings.Join(out, "\n")
}

// clip trims a line for display: NWChem pads error messages with hundreds of blanks before
// the error code, which would make the excerpt unreadable.
func clip(line string) string {
	line = reLongGap.ReplaceAllString(strings.TrimRight(line, " \t\r"), "    ")
	if len(line) <= maxLineChars {
		return line
	}
	cut := maxLineChars
	for cut > 0 && !isRuneStart(line[cut]) {
		cut--
	}
	return line[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
