package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"qmd/ctl/api"
	"qmd/ctl/client"
	"qmd/ctl/plot"
)

// stateCompleted is the one state in which a job has a result.
const stateCompleted = "completed"

// terminalStates are the states a job never leaves. The wire API does not list them, so
// they are repeated here from the daemon's state machine; wait relies on them to stop.
var terminalStates = map[string]bool{
	stateCompleted: true, "failed": true, "cancelled": true, "timeout": true, "lost": true,
}

// stringList is a repeatable flag; commas also separate values, so both
// "--state running --state pending" and "--state running,pending" work.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*s = append(*s, part)
		}
	}
	return nil
}

// oneID checks that exactly one job id was given.
func oneID(cmd string, args []string) (string, error) {
	switch {
	case len(args) == 0:
		return "", usagef("%s needs a job id (see 'qmctl list')", cmd)
	case len(args) > 1:
		return "", usagef("%s takes one job id, got %d", cmd, len(args))
	case strings.TrimSpace(args[0]) == "":
		return "", usagef("%s: the job id is empty", cmd)
	}
	return args[0], nil
}

func noArgs(cmd string, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", cmd, args[0])
	}
	return nil
}

func (a *app) cmdList(fs *flag.FlagSet) func(context.Context, []string) error {
	var states stringList
	fs.Var(&states, "state", "only jobs in `STATE` (repeat, or separate with commas)")
	asJSON := fs.Bool("json", false, "print a JSON array of jobs")
	return func(ctx context.Context, args []string) error {
		if err := noArgs("list", args); err != nil {
			return err
		}
		if *asJSON {
			raw, err := a.client().ListJSON(ctx, states)
			if err != nil {
				return a.apiFailure(err, "list", "")
			}
			return writeRawJSONArray(a.stdout, raw)
		}
		jobs, err := a.client().List(ctx, states)
		if err != nil {
			return a.apiFailure(err, "list", "")
		}
		t := newTable(a.stdout,
			"ID", "STATE", "CLUSTER", "NAME", "PRESET", "SOLVENT", "CREATED", "UPDATED")
		for _, j := range jobs {
			t.row(j.ID, j.State, j.Cluster, j.Name, j.Preset, j.Solvent,
				a.fmtTime(j.CreatedAt, shortTime), a.fmtAgo(j.UpdatedAt))
		}
		return t.flush()
	}
}

func (a *app) cmdShow(fs *flag.FlagSet) func(context.Context, []string) error {
	asJSON := fs.Bool("json", false, "print the job, with its history, as JSON")
	return func(ctx context.Context, args []string) error {
		id, err := oneID("show", args)
		if err != nil {
			return err
		}
		j, err := a.client().Get(ctx, id)
		if err != nil {
			return a.apiFailure(err, "show", id)
		}
		if *asJSON {
			h := j.History
			if h == nil {
				h = []api.Event{}
			}
			return writeJSON(a.stdout, showJSON{Job: j, History: h})
		}
		return a.printJob(j)
	}
}

// showJSON makes "history" appear even when empty: api.Job omits an empty history
// (lists carry none), but show promises the key. The outer field shadows the embedded one.
type showJSON struct {
	api.Job
	History []api.Event `json:"history"`
}

func (a *app) printJob(j api.Job) error {
	kv := newTable(a.stdout)
	pairs := [][2]string{
		{"id", j.ID}, {"name", j.Name}, {"state", j.State}, {"cluster", j.Cluster},
		{"scheduler_id", j.SchedulerID}, {"preset", j.Preset}, {"solvent", j.Solvent},
		{"level", j.Level}, {"software", j.Software}, {"template_hash", j.TemplateHash},
		{"owner_uid", strconv.Itoa(j.Owner)},
		{"created_at", a.fmtTime(j.CreatedAt, longTime)},
		{"updated_at", a.fmtTime(j.UpdatedAt, longTime) + " (" + a.fmtAgo(j.UpdatedAt) + ")"},
	}
	if j.ExitCode != nil {
		pairs = append(pairs, [2]string{"exit_code", strconv.Itoa(*j.ExitCode)})
	}
	for _, p := range pairs {
		kv.row(p[0]+":", p[1])
	}
	if err := kv.flush(); err != nil {
		return err
	}

	fmt.Fprintln(a.stdout)
	if len(j.History) == 0 {
		fmt.Fprintln(a.stdout, "history: none")
	} else {
		h := newTable(a.stdout, "AT", "FROM", "TO", "REASON")
		for _, e := range j.History {
			h.row(a.fmtTime(e.At, longTime), e.From, e.To, e.Reason)
		}
		if err := h.flush(); err != nil {
			return err
		}
	}
	if j.Error != nil && *j.Error != "" {
		fmt.Fprintln(a.stdout)
		printBlock(a, "error", *j.Error)
	}
	return nil
}

// printBlock prints "label: text" for one line of text, and the text indented under
// "label:" when it has several, as scheduler errors often do.
func printBlock(a *app, label, text string) {
	text = strings.TrimRight(sanitizeBlock(text), "\n")
	if !strings.Contains(text, "\n") {
		fmt.Fprintf(a.stdout, "%s: %s\n", label, text)
		return
	}
	fmt.Fprintf(a.stdout, "%s:\n", label)
	for _, line := range strings.Split(text, "\n") {
		fmt.Fprintf(a.stdout, "  %s\n", line)
	}
}

func (a *app) cmdCancel(fs *flag.FlagSet) func(context.Context, []string) error {
	asJSON := fs.Bool("json", false, "print the job as JSON")
	return func(ctx context.Context, args []string) error {
		id, err := oneID("cancel", args)
		if err != nil {
			return err
		}
		j, err := a.client().Cancel(ctx, id)
		if err != nil {
			return a.apiFailure(err, "cancel", id)
		}
		if *asJSON {
			return writeJSON(a.stdout, j)
		}
		fmt.Fprintln(a.stdout, sanitize(j.State))
		return nil
	}
}

func (a *app) cmdResult(fs *flag.FlagSet) func(context.Context, []string) error {
	asJSON := fs.Bool("json", false, "print the result as JSON")
	plotPath := fs.String("plot", "", "also draw the 1H and 13C stick spectra into `FILE` "+
		"(.png or .svg)")
	return func(ctx context.Context, args []string) error {
		id, err := oneID("result", args)
		if err != nil {
			return err
		}
		format := ""
		if *plotPath != "" {
			if format, err = plot.FormatOf(*plotPath); err != nil {
				return usagef("result: --plot: %v", err)
			}
		}
		r, err := a.client().Result(ctx, id)
		if err != nil {
			return a.apiFailure(err, "result", id)
		}
		if *plotPath != "" {
			name := ""
			if j, err := a.client().Get(ctx, id); err == nil {
				name = j.Name
			}
			if err := writeSpectrum(*plotPath, format, name, r); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "wrote %s\n", sanitize(*plotPath))
		}
		if *asJSON {
			if r.Shifts == nil {
				r.Shifts = []api.Shift{}
			}
			return writeJSON(a.stdout, r)
		}
		fmt.Fprintln(a.stdout, sanitize(resultHeader(r)))
		t := newTable(a.stdout, "ATOM", "ELEMENT", "SHIELDING", "SHIFT", "GROUP", "BONDED_TO")
		for _, s := range r.Shifts {
			shift, bonded := "-", "-"
			if s.Shift != nil {
				shift = strconv.FormatFloat(*s.Shift, 'f', 2, 64)
			}
			if s.BondedTo != nil {
				bonded = strconv.Itoa(*s.BondedTo)
			}
			t.row(strconv.Itoa(s.Atom), s.Element, strconv.FormatFloat(s.Shielding, 'f', 3, 64),
				shift, strconv.Itoa(s.Group), bonded)
		}
		return t.flush()
	}
}

// resultHeader states what the numbers depend on: the energy, and how shieldings were
// turned into shifts, which decides whether two results can be compared.
func resultHeader(r api.Result) string {
	ref := r.Reference
	parts := []string{fmt.Sprintf("job %s: energy %.8f Eh", r.ID, r.EnergyHartree)}
	add := func(label, v string) {
		if v != "" {
			parts = append(parts, label+" "+v)
		}
	}
	method := ref.Method
	if method == "" {
		method = "none"
	}
	add("reference method", method)
	add("level", ref.Level)
	add("solvent", ref.Solvent)
	if ref.H != nil || ref.C != nil {
		var sig []string
		if ref.H != nil {
			sig = append(sig, fmt.Sprintf("H %.3f", *ref.H))
		}
		if ref.C != nil {
			sig = append(sig, fmt.Sprintf("C %.3f", *ref.C))
		}
		add("reference shielding", strings.Join(sig, " "))
	}
	add("source", ref.Source)
	if !r.Converged {
		parts = append(parts, "WARNING: geometry optimization did not converge")
	}
	return strings.Join(parts, "; ")
}

func (a *app) cmdWait(fs *flag.FlagSet) func(context.Context, []string) error {
	timeout := fs.Duration("timeout", 0, "give up after `DURATION`, e.g. 90s or 2h "+
		"(default: wait for ever)")
	asJSON := fs.Bool("json", false, "print the final job as JSON")
	return func(ctx context.Context, args []string) error {
		id, err := oneID("wait", args)
		if err != nil {
			return err
		}
		if *timeout < 0 {
			return usagef("wait: --timeout must not be negative")
		}
		return a.wait(ctx, id, *timeout, *asJSON)
	}
}

// errWaitTimeout marks the --timeout deadline, to tell it apart from an interrupt.
var errWaitTimeout = errors.New("wait timed out")

// wait polls the job until it ends. The first look must succeed, so a wrong id or socket
// fails at once; after that, a daemon that restarts or drains under a long wait is waited
// out rather than treated as the job's end.
func (a *app) wait(ctx context.Context, id string, timeout time.Duration, asJSON bool) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, errWaitTimeout)
		defer cancel()
	}
	c := a.client()
	j, err := c.Get(ctx, id)
	if err != nil {
		if context.Cause(ctx) == errWaitTimeout {
			return notDonef("job %s: no answer from qmd within %s", id, timeout)
		}
		return a.apiFailure(err, "wait", id)
	}
	lost := false
	for n := 1; !terminalStates[j.State]; n++ {
		select {
		case <-ctx.Done():
			return a.waitStopped(ctx, j, timeout, asJSON)
		case <-time.After(a.pollEvery(n)):
		}
		next, err := c.Get(ctx, id)
		switch {
		case err == nil:
			j, lost = next, false
		case ctx.Err() != nil:
			return a.waitStopped(ctx, j, timeout, asJSON)
		case errors.Is(err, client.ErrUnreachable) || errors.Is(err, client.ErrDraining):
			if !lost {
				a.warnf("lost contact with qmd at %s; still waiting for job %s",
					a.socket(), id)
				lost = true
			}
		default:
			return a.apiFailure(err, "wait", id)
		}
	}
	if err := a.printWaitEnd(j, asJSON); err != nil {
		return err
	}
	if j.State == stateCompleted {
		return nil
	}
	msg := fmt.Sprintf("job %s ended %s", id, j.State)
	if j.Error != nil && *j.Error != "" {
		msg += ": " + *j.Error
	}
	return notDonef("%s (see 'qmctl logs %s')", msg, id)
}

// waitStopped reports the last state seen when the wait ends without the job ending.
func (a *app) waitStopped(ctx context.Context, j api.Job, timeout time.Duration,
	asJSON bool) error {
	if err := a.printWaitEnd(j, asJSON); err != nil {
		return err
	}
	if context.Cause(ctx) == errWaitTimeout {
		return notDonef("job %s is still %s after %s (wait again, or see 'qmctl show %s')",
			j.ID, j.State, timeout, j.ID)
	}
	return notDonef("interrupted; job %s is still %s", j.ID, j.State)
}

func (a *app) printWaitEnd(j api.Job, asJSON bool) error {
	if asJSON {
		return writeJSON(a.stdout, j)
	}
	fmt.Fprintln(a.stdout, sanitize(j.State))
	return nil
}

func (a *app) cmdLogs(fs *flag.FlagSet) func(context.Context, []string) error {
	asJSON := fs.Bool("json", false, "print the logs as JSON")
	return func(ctx context.Context, args []string) error {
		id, err := oneID("logs", args)
		if err != nil {
			return err
		}
		l, err := a.client().Logs(ctx, id)
		if err != nil {
			return a.apiFailure(err, "logs", id)
		}
		if *asJSON {
			if l.Files == nil {
				l.Files = []api.LogFile{}
			}
			return writeJSON(a.stdout, l)
		}
		if len(l.Files) == 0 {
			a.warnf("job %s has no logs yet", id)
			return nil
		}
		for i, f := range l.Files {
			if i > 0 {
				fmt.Fprintln(a.stdout)
			}
			fmt.Fprintf(a.stdout, "==> %s <==\n%s", sanitize(f.Name),
				ensureNewline(sanitizeBlock(f.Content)))
			if f.Truncated {
				a.warnf("only the end of %s is shown; the whole file is in the job's "+
					"directory", sanitize(f.Name))
			}
		}
		return nil
	}
}

func (a *app) cmdVersion(_ *flag.FlagSet) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		if err := noArgs("version", args); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "qmctl %s\n", Version)
		v, err := a.client().Version(ctx)
		if err != nil {
			return a.apiFailure(err, "version", "")
		}
		line := "qmd " + v.Version
		if v.Commit != "" {
			line += " (" + v.Commit + ")"
		}
		fmt.Fprintln(a.stdout, sanitize(line))
		return nil
	}
}
