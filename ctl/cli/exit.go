package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"qmd/ctl/client"
)

// Exit statuses. Scripts branch on them: 1 is an answer about the job (it failed, is not
// done, is not there), 2 means qmctl could not get an answer at all (bad command line, bad
// input, daemon away), so a pipeline can tell "retry later" from "look at the job".
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// Kinds of failure that originate in qmctl itself. API failures use client's sentinels.
var (
	errUsage   = errors.New("usage error")
	errInput   = errors.New("bad input")
	errNotDone = errors.New("job did not complete")
)

// exitTable is the one place an error becomes an exit status; the first entry that
// errors.Is matches wins. Anything unmatched (a daemon fault, a garbled answer, an
// interruption) is 2: qmctl got no usable answer.
var exitTable = []struct {
	err  error
	code int
}{
	{errNotDone, exitFail},
	{client.ErrNotFound, exitFail},
	{client.ErrConflict, exitFail},
	{errUsage, exitUsage},
	{errInput, exitUsage},
	{client.ErrBadRequest, exitUsage},
	{client.ErrUnreachable, exitUsage},
	{client.ErrDraining, exitUsage},
}

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	for _, e := range exitTable {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return exitUsage
}

// failure is an error with the sentence shown to the user and the kind(s) that decide the
// exit status, so wording and classification travel together.
type failure struct {
	msg   string
	kinds []error
}

func (f *failure) Error() string   { return f.msg }
func (f *failure) Unwrap() []error { return f.kinds }

func usagef(format string, args ...any) error {
	return &failure{msg: fmt.Sprintf(format, args...), kinds: []error{errUsage}}
}

func inputf(format string, args ...any) error {
	return &failure{msg: fmt.Sprintf(format, args...), kinds: []error{errInput}}
}

func notDonef(format string, args ...any) error {
	return &failure{msg: fmt.Sprintf(format, args...), kinds: []error{errNotDone}}
}

// apiFailure rewords a client error as advice for the person at the terminal, keeping the
// original in the chain for the exit table. op is the command name; id the job, if any.
func (a *app) apiFailure(err error, op, id string) error {
	var apiErr *client.APIError
	var msg string
	switch {
	case errors.Is(err, context.Canceled):
		msg = op + ": interrupted"
	case errors.Is(err, context.DeadlineExceeded):
		msg = fmt.Sprintf("%s: qmd at %s did not answer in time (the daemon's log may "+
			"say why)", op, a.socket())
	case errors.Is(err, client.ErrUnreachable) && errors.Is(err, fs.ErrPermission):
		msg = fmt.Sprintf("no permission to use qmd's socket %s: ask your administrator "+
			"for access (or set --socket or QMD_SOCKET)", a.socket())
	case errors.Is(err, client.ErrUnreachable):
		msg = fmt.Sprintf("cannot reach qmd at %s: is the daemon running? "+
			"(set --socket or QMD_SOCKET)", a.socket())
	case errors.As(err, &apiErr):
		msg = a.describeAPIError(apiErr, op, id)
	default:
		msg = fmt.Sprintf("%s: %v", op, err)
	}
	return &failure{msg: msg, kinds: []error{err}}
}

func (a *app) describeAPIError(e *client.APIError, op, id string) string {
	switch {
	case errors.Is(e, client.ErrNotFound) && id != "":
		return fmt.Sprintf("no job %s among yours: check the id with 'qmctl list'", id)
	case errors.Is(e, client.ErrConflict) && op == "result":
		return fmt.Sprintf("no result for job %s: %s (wait for it with 'qmctl wait %s')",
			id, e.Message, id)
	case errors.Is(e, client.ErrConflict):
		return fmt.Sprintf("%s %s: %s", op, id, e.Message)
	case errors.Is(e, client.ErrBadRequest):
		return fmt.Sprintf("qmd refused the %s: %s (see 'qmctl help %s')", op, e.Message, op)
	case errors.Is(e, client.ErrDraining):
		return "qmd is shutting down and takes no requests: try again once it is back"
	}
	return fmt.Sprintf("qmd failed on %s: %s (the daemon's log has details)", op, e.Message)
}

// oneLine keeps the stderr contract of a single line even when a daemon or scheduler
// message spans several.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return sanitize(strings.ReplaceAll(s, "\n", "; "))
}
