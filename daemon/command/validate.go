package command

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"qmd/daemon/level"
	"qmd/daemon/shifts"
	"qmd/daemon/validate"
)

const validateUsage = `usage: qmd validate --set FILE [--preset P] [--solvent S]
                    [--all | --molecules A,B]
                    [--out DIR] [--work DIR] [--socket PATH --cluster NAME]
                    [--slots N] [--mpi-ranks N] [--conformers single|search|both]
                    [--retry-failed] [--timeout D] [--scaling-file F] [--obabel CMD]

Runs the molecules of a validation set through qmd (its own qmd with the local executor
on --work, or the running qmd at --socket and its --cluster), compares the computed shifts
with the measured ones and writes the report (JSON, Markdown, scatter plots) into --out.
Without --all only the set's default subset runs. Results already computed in --work are
reused, so an interrupted run resumes where it stopped. Defaults: --preset draft,
--solvent chcl3, --out validation, --work OUT/work, --slots = number of cores,
--mpi-ranks 1, --conformers single; --scaling-file F uses fitted factors from F.
`

func validateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qmd validate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	setPath := fs.String("set", "", "validation set (JSON)")
	preset := fs.String("preset", "draft", "preset")
	solvent := fs.String("solvent", "chcl3", "solvent (gas, chcl3, dmso)")
	all := fs.Bool("all", false, "every molecule, not only the default subset")
	molecules := fs.String("molecules", "", "comma-separated molecule names")
	out := fs.String("out", "validation", "report directory")
	work := fs.String("work", "", "work directory (default OUT/work)")
	socket := fs.String("socket", "", "socket of a running qmd to submit to")
	cluster := fs.String("cluster", "", "cluster of that qmd")
	slots := fs.Int("slots", runtime.NumCPU(), "parallel jobs of the embedded qmd")
	ranks := fs.Int("mpi-ranks", 1, "MPI ranks per job of the embedded qmd")
	conformers := fs.String("conformers", "single", "single, search or both")
	retry := fs.Bool("retry-failed", false, "submit failed molecules again")
	timeout := fs.Duration("timeout", 0, "give up waiting after this long (0: never)")
	obabel := fs.String("obabel", "obabel", "Open Babel's obabel")
	scaling := fs.String("scaling-file", "", "linear-scaling factors to use (qmd fit-scaling)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, validateUsage)
			return nil
		}
		fmt.Fprint(stderr, validateUsage)
		return &UsageError{Msg: "qmd validate: " + err.Error()}
	}
	if *slots < 1 || *ranks < 1 {
		return &UsageError{Msg: "qmd validate: --slots and --mpi-ranks must be at least 1"}
	}
	if fs.NArg() > 0 {
		return &UsageError{Msg: fmt.Sprintf("qmd validate: unexpected argument %q", fs.Arg(0))}
	}
	if *setPath == "" {
		fmt.Fprint(stderr, validateUsage)
		return &UsageError{Msg: "qmd validate: --set FILE is required"}
	}
	if _, err := level.FindPreset(*preset); err != nil {
		return &UsageError{Msg: "qmd validate: " + err.Error()}
	}
	if _, err := level.FindSolvent(*solvent); err != nil {
		return &UsageError{Msg: "qmd validate: " + err.Error()}
	}
	if *conformers != validate.ModeSingle && *conformers != validate.ModeSearch &&
		*conformers != validate.ModeBoth {
		return &UsageError{Msg: fmt.Sprintf("qmd validate: --conformers %q (want single, "+
			"search or both)", *conformers)}
	}
	if *socket == "" && *cluster != "" {
		return &UsageError{Msg: "qmd validate: --cluster needs --socket (the embedded qmd " +
			"has only the local executor)"}
	}
	set, err := validate.Load(*setPath)
	if err != nil {
		return err
	}
	if *scaling != "" {
		if _, err := shifts.LoadScaling(*scaling); err != nil {
			return err
		}
	}
	var names []string
	if *molecules != "" {
		names = splitNames(*molecules, set)
	}
	if *work == "" {
		*work = filepath.Join(*out, "work")
	}
	// The report directory must be usable before hours of calculation, not after.
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("report directory: %w", err)
	}
	if err := writable(*out); err != nil {
		return fmt.Errorf("report directory: %w", err)
	}
	start := time.Now()
	rep, err := validate.Run(ctx, validate.Options{
		Set: set, SetName: filepath.Base(*setPath), Preset: *preset, Solvent: *solvent,
		All: *all, Names: names, Socket: *socket, Cluster: *cluster, WorkDir: *work,
		Slots: *slots, MPIRanks: *ranks, Obabel: *obabel, Conformers: *conformers,
		Timeout: *timeout, RetryFailed: *retry, Progress: stdout,
	})
	if rep == nil {
		return err
	}
	files, werr := rep.WriteFiles(*out)
	for _, f := range files {
		fmt.Fprintf(stdout, "wrote %s\n", f)
	}
	fmt.Fprintf(stdout, "%d molecules in %s\n", len(rep.Molecules),
		time.Since(start).Round(time.Second))
	for _, s := range rep.Stats {
		if s.Method != validate.MethodQMD && s.Method != validate.MethodConformers {
			continue
		}
		fmt.Fprintf(stdout, "%-10s %-4s %-13s n=%-3d MAE %.3f  RMSE %.3f  max %+.2f ppm\n",
			s.Method, s.Nucleus, s.Class, s.N, s.MAE, s.RMSE, s.Max)
	}
	return errors.Join(err, werr)
}

// splitNames splits a comma-separated list of molecule names, keeping together the commas
// that belong to a name of the set ("N,N-dimethylformamide").
func splitNames(list string, set *validate.Set) []string {
	known := map[string]bool{}
	for _, m := range set.Molecules {
		known[m.Name] = true
	}
	parts := strings.Split(list, ",")
	var out []string
	for i := 0; i < len(parts); i++ {
		name := parts[i]
		for j := i + 1; !known[name] && j < len(parts); j++ {
			if joined := strings.Join(parts[i:j+1], ","); known[joined] {
				name, i = joined, j
				break
			}
		}
		out = append(out, strings.TrimSpace(name))
	}
	return out
}
