// Package cli is qmctl: the user's command line for qmd. Everything it needs from the
// process (arguments, environment, standard streams) comes in through Run, so tests drive
// the real command paths without a subprocess and without touching globals.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"qmd/ctl/client"
)

// Version is qmctl's own version. It is set at link time with
// -ldflags "-X qmd/ctl/cli.Version=..." so a release build and the daemon can be compared.
var Version = "dev"

// DefaultSocket is where qmd listens unless --socket or QMD_SOCKET say otherwise.
const DefaultSocket = "/run/qmd/qmd.sock"

const socketUsage = "qmd's socket `PATH` (default: $QMD_SOCKET, else " + DefaultSocket + ")"

// app carries one invocation's inputs. The clock, time zone and polling interval are
// fields rather than calls to the time package so tests can pin them.
type app struct {
	env    func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	now    func() time.Time
	loc    *time.Location
	// pollEvery returns the pause before the n-th status check of wait (n from 1).
	pollEvery func(n int) time.Duration

	socketFlag string // --socket, wherever on the line it was given
}

// Run executes one qmctl command line (without the program name) and returns the exit
// status; it never exits the process itself.
func Run(ctx context.Context, args []string, env func(string) string, stdin io.Reader,
	stdout, stderr io.Writer) int {
	a := &app{
		env: env, stdin: stdin, stdout: stdout, stderr: stderr,
		now: time.Now, loc: localZone(env), pollEvery: defaultPoll,
	}
	return a.run(ctx, args)
}

// defaultPoll checks every second for the first minute, when quick failures (a bad input,
// a full queue) show up, then every two seconds to go easy on a shared daemon.
func defaultPoll(n int) time.Duration {
	if n <= 60 {
		return time.Second
	}
	return 2 * time.Second
}

// localZone honours TZ from the given environment, so the zone used for display follows
// the same injected environment as everything else, and falls back to the process's own.
func localZone(env func(string) string) *time.Location {
	tz := strings.TrimPrefix(env("TZ"), ":")
	if tz == "" {
		return time.Local
	}
	if loc, err := time.LoadLocation(tz); err == nil {
		return loc
	}
	return time.Local
}

// command is one entry of qmctl's command table; help is generated from the same table,
// so the usage text cannot drift from what is accepted.
type command struct {
	name    string
	args    string // positional synopsis for usage
	summary string
	// setup registers the command's flags and returns the function that runs it with
	// the positional arguments that remain once flags are parsed.
	setup func(a *app, fs *flag.FlagSet) func(ctx context.Context, args []string) error
}

// commands is built in init because the help command refers back to the table.
var commands []command

func init() {
	commands = []command{
		{"submit", "FILE | --smiles SMILES", "submit a molecule (FILE - reads stdin)",
			(*app).cmdSubmit},
		{"list", "", "list your jobs", (*app).cmdList},
		{"show", "ID", "show a job and its history", (*app).cmdShow},
		{"cancel", "ID", "cancel a job", (*app).cmdCancel},
		{"result", "ID", "print a completed job's shieldings and shifts", (*app).cmdResult},
		{"wait", "ID", "wait until a job ends; exit 0 only if it completed", (*app).cmdWait},
		{"logs", "ID", "print a job's log files", (*app).cmdLogs},
		{"version", "", "print qmctl's and qmd's versions", (*app).cmdVersion},
		{"help", "[COMMAND]", "print this help, or a command's", (*app).cmdHelp},
	}
}

func findCommand(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

func (a *app) run(ctx context.Context, args []string) int {
	global := a.newFlagSet("qmctl")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.printUsage(a.stdout)
			return exitOK
		}
		return a.fail(usagef("%v (run 'qmctl help')", err))
	}
	rest := global.Args()
	if len(rest) == 0 {
		return a.fail(usagef("no command given (run 'qmctl help' for the list)"))
	}
	cmd := findCommand(rest[0])
	if cmd == nil {
		return a.fail(usagef("unknown command %q (run 'qmctl help' for the list)", rest[0]))
	}
	fs := a.newFlagSet(cmd.name)
	runCmd := cmd.setup(a, fs)
	pos, err := parseInterspersed(fs, rest[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.printCommandUsage(a.stdout, cmd)
			return exitOK
		}
		return a.fail(usagef("%s: %v (run 'qmctl help %s')", cmd.name, err, cmd.name))
	}
	if err := runCmd(ctx, pos); err != nil {
		return a.fail(err)
	}
	return exitOK
}

// newFlagSet makes a silent flag set (qmctl words its own errors) that knows --socket, so
// the global flag is accepted before the command name as well as anywhere after it.
func (a *app) newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.socketFlag, "socket", a.socketFlag, socketUsage)
	return fs
}

// parseInterspersed lets flags follow positional arguments ("qmctl show ID --json"), which
// the flag package alone does not: it parses, sets aside the first positional, and parses
// again. A "--" ends flags; everything after it is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if endedByDashDash(fs, args, len(args)-len(rest)) {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// endedByDashDash reports whether the flag package stopped because of a "--" terminator
// (it consumes the "--" silently) rather than because of a positional argument. A "--"
// that was the value of a preceding flag ("--name --") is not a terminator.
func endedByDashDash(fs *flag.FlagSet, args []string, consumed int) bool {
	if consumed == 0 || args[consumed-1] != "--" {
		return false
	}
	if consumed < 2 {
		return true
	}
	prev := args[consumed-2]
	if !strings.HasPrefix(prev, "-") || strings.Contains(prev, "=") || prev == "--" {
		return true
	}
	f := fs.Lookup(strings.TrimLeft(prev, "-"))
	if f == nil {
		return true
	}
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return true
	}
	return false // prev was a flag that took "--" as its value
}

// socket resolves where to connect: --socket, then QMD_SOCKET, then the default.
func (a *app) socket() string {
	if a.socketFlag != "" {
		return a.socketFlag
	}
	if s := a.env("QMD_SOCKET"); s != "" {
		return s
	}
	return DefaultSocket
}

func (a *app) client() *client.Client { return &client.Client{Socket: a.socket()} }

// fail prints err as the single "qmctl: ..." line and returns its exit code.
func (a *app) fail(err error) int {
	fmt.Fprintf(a.stderr, "qmctl: %s\n", oneLine(err.Error()))
	return exitCode(err)
}

// warnf prints a non-fatal note on stderr in the same style as errors.
func (a *app) warnf(format string, args ...any) {
	fmt.Fprintf(a.stderr, "qmctl: "+format+"\n", args...)
}

func (a *app) printUsage(w io.Writer) {
	var b strings.Builder
	b.WriteString("qmctl drives qmd, the NWChem NMR job daemon.\n\n")
	b.WriteString("Usage: qmctl [--socket PATH] COMMAND [ARGS] [FLAGS]\n\nCommands:\n")
	for _, c := range commands {
		syn := strings.TrimSpace(c.name + " " + c.args)
		fmt.Fprintf(&b, "  %-30s %s\n", syn, c.summary)
	}
	b.WriteString("\nFlags may come before or after arguments. ")
	b.WriteString("Run 'qmctl help COMMAND' for a command's flags.\n")
	fmt.Fprintf(&b, "The socket is --socket, else $QMD_SOCKET, else %s.\n", DefaultSocket)
	b.WriteString("\nExit status: 0 ok; 1 the job failed, is not finished, or was not found;\n")
	b.WriteString("2 usage error, bad input, or qmd unreachable or shutting down.\n")
	io.WriteString(w, b.String())
}

func (a *app) printCommandUsage(w io.Writer, c *command) {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	scratch := &app{env: a.env}
	fs.StringVar(&scratch.socketFlag, "socket", "", socketUsage)
	c.setup(scratch, fs)
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: qmctl %s\n\n%s.\n", strings.TrimSpace(c.name+" "+c.args+
		" [FLAGS]"), upperFirst(c.summary))
	b.WriteString("\nFlags:\n")
	// Two passes: the first finds the widest "--flag VALUE" so descriptions line up.
	type line struct{ syn, usage string }
	var lines []line
	width := 0
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		syn := "--" + f.Name
		if name != "" {
			syn += " " + name
		}
		switch f.DefValue {
		case "", "false", "0", "0s":
		default:
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		lines = append(lines, line{syn, usage})
		width = max(width, len(syn))
	})
	for _, l := range lines {
		fmt.Fprintf(&b, "  %-*s  %s\n", width, l.syn, l.usage)
	}
	io.WriteString(w, b.String())
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// cmdHelp prints the general usage, or one command's with its flags.
func (a *app) cmdHelp(_ *flag.FlagSet) func(context.Context, []string) error {
	return func(_ context.Context, args []string) error {
		switch len(args) {
		case 0:
			a.printUsage(a.stdout)
			return nil
		case 1:
			c := findCommand(args[0])
			if c == nil {
				return usagef("unknown command %q (run 'qmctl help' for the list)", args[0])
			}
			a.printCommandUsage(a.stdout, c)
			return nil
		}
		return usagef("help takes at most one command name")
	}
}
