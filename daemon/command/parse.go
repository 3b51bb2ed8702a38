package command

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"qmd/scheduler/pbs"
	"qmd/scheduler/slurm"
	"qmd/scheduler/torque"
)

const parseUsage = `usage: qmd parse --scheduler slurm --command sbatch|squeue|sacct|scancel
                 [--exit-code N] [--stderr FILE] [FILE|-]
       qmd parse --scheduler pbs|torque --command qsub|qstat|qdel
                 [--exit-code N] [--stderr FILE] [FILE|-]

Reads what a scheduler command printed (its stdout from FILE, or from standard input when
FILE is - or missing; its stderr from --stderr FILE; its exit status from --exit-code) and
prints how qmd reads it, one JSON object per line. The daemon runs the same parsers, so
this shows what qmd would do with a captured output. For pbs (PBS Pro) qstat output is
the JSON of qstat -f -F json -x; for torque it is the text of qstat -f.
`

// outputParser reads the outputs of one scheduler's commands. Records are anything that
// renders itself as the JSON line `qmd parse` prints, so each backend keeps its own type.
type outputParser struct {
	commands []string
	parse    func(command string, stdout, stderr []byte, exit int) ([]json.Marshaler, error)
}

// outputParsers maps --scheduler, spelt as the config's scheduler kinds, to its parser.
var outputParsers = map[string]outputParser{
	"slurm":  {commands: slurm.Commands, parse: parseSlurm},
	"pbs":    {commands: pbs.Commands, parse: parsePBS(pbs.Parse)},
	"torque": {commands: torque.Commands, parse: parsePBS(torque.Parse)},
}

func parseSlurm(command string, stdout, stderr []byte, exit int) ([]json.Marshaler, error) {
	recs, err := slurm.Parse(command, stdout, stderr, exit)
	if err != nil {
		return nil, err
	}
	out := make([]json.Marshaler, len(recs))
	for i, r := range recs {
		out[i] = r
	}
	return out, nil
}

// parsePBS adapts a PBS-family Parse (PBS Pro or Torque, which share pbs.Record) to
// outputParser.
func parsePBS(parse func(command string, stdout, stderr []byte, exit int) ([]pbs.Record,
	error)) func(string, []byte, []byte, int) ([]json.Marshaler, error) {
	return func(command string, stdout, stderr []byte, exit int) ([]json.Marshaler, error) {
		recs, err := parse(command, stdout, stderr, exit)
		if err != nil {
			return nil, err
		}
		out := make([]json.Marshaler, len(recs))
		for i, r := range recs {
			out[i] = r
		}
		return out, nil
	}
}

// parse implements `qmd parse`. stdin is passed in rather than read from os.Stdin here,
// so tests can feed it.
func parse(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qmd parse", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	scheduler := fs.String("scheduler", "", "scheduler kind: slurm, pbs or torque")
	command := fs.String("command", "", "the command whose output is read")
	exit := fs.Int("exit-code", 0, "the command's exit status")
	errPath := fs.String("stderr", "", "file holding the command's stderr")
	// A malformed command line gets the usage text; a well-formed one that names something
	// qmd cannot parse gets only the message, which then stays the first line of stderr.
	badValue := func(format string, a ...any) error {
		return &UsageError{Msg: "qmd parse: " + fmt.Sprintf(format, a...)}
	}
	usageErr := func(format string, a ...any) error {
		fmt.Fprint(stderr, parseUsage)
		return badValue(format, a...)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, parseUsage)
			return nil
		}
		return usageErr("%v", err)
	}

	if *scheduler == "" {
		return usageErr("--scheduler is required")
	}
	p, ok := outputParsers[*scheduler]
	if !ok {
		return badValue("unknown scheduler %q (known: %s)", *scheduler, knownSchedulers())
	}
	if *command == "" {
		return usageErr("--command is required (%s: %s)", *scheduler,
			strings.Join(p.commands, ", "))
	}
	if !slices.Contains(p.commands, *command) {
		return badValue("scheduler %s: no parser for command %q (known: %s)", *scheduler,
			*command, strings.Join(p.commands, ", "))
	}
	if fs.NArg() > 1 {
		return usageErr("unexpected argument %q: give one output file or -", fs.Arg(1))
	}
	outPath := fs.Arg(0)
	if (outPath == "" || outPath == "-") && *errPath == "-" {
		return usageErr("stdout and --stderr cannot both be read from standard input")
	}

	outBytes, err := readInput(outPath, stdin)
	if err != nil {
		return fmt.Errorf("qmd parse: read command output: %w", err)
	}
	var errBytes []byte
	if *errPath != "" {
		if errBytes, err = readInput(*errPath, stdin); err != nil {
			return fmt.Errorf("qmd parse: read --stderr: %w", err)
		}
	}

	recs, err := p.parse(*command, outBytes, errBytes, *exit)
	if err != nil {
		return fmt.Errorf("qmd parse: %w", err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false) // job names and messages read better with < > & kept as is
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("qmd parse: write: %w", err)
		}
	}
	return nil
}

// readInput reads a file, or stdin for "" and "-".
func readInput(path string, stdin io.Reader) ([]byte, error) {
	if path == "" || path == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(path)
}

func knownSchedulers() string {
	return strings.Join(slices.Sorted(maps.Keys(outputParsers)), ", ")
}
