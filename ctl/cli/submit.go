package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"qmd/ctl/api"
)

// maxMolecule is the largest molecule file qmctl will send. It is checked here, before
// anything goes on the wire, so a user who points at a trajectory or a whole library gets
// a clear answer instead of a slow upload and a terse refusal.
const maxMolecule = 1 << 20

// optInt is an int flag that remembers whether it was given, so that "--charge 0" is sent
// while an absent --charge leaves the daemon's own default (from the file) in force.
type optInt struct{ v *int }

func (o *optInt) String() string {
	if o == nil || o.v == nil {
		return ""
	}
	return strconv.Itoa(*o.v)
}

func (o *optInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not a whole number: %q", s)
	}
	o.v = &n
	return nil
}

func (a *app) cmdSubmit(fs *flag.FlagSet) func(context.Context, []string) error {
	var charge, mult optInt
	smiles := fs.String("smiles", "", "submit this `SMILES` string instead of a file")
	preset := fs.String("preset", "draft", "calculation `PRESET`")
	solvent := fs.String("solvent", "chcl3", "implicit `SOLVENT`")
	fs.Var(&charge, "charge", "net `CHARGE` of the molecule (default: from the file, else 0)")
	fs.Var(&mult, "multiplicity", "spin `MULTIPLICITY` (default: from the file, else 1)")
	cluster := fs.String("cluster", "", "run on `CLUSTER` (default: the daemon's choice)")
	name := fs.String("name", "", "job `NAME` (default: from the file)")
	split := fs.Bool("split", false, "one job per record of an SDF file")
	dryRun := fs.Bool("dry-run", false, "print the rendered inputs and submit nothing")
	asJSON := fs.Bool("json", false, "print the answer as JSON")
	conformers := fs.String("conformers", "", "`MODE` single, search or auto (search if "+
		"rotatable bonds); default: the daemon's")
	temperature := fs.Float64("temperature", 0, "`KELVIN` of the conformer average "+
		"(default: the daemon's)")

	return func(ctx context.Context, args []string) error {
		req := api.SubmitRequest{
			Name: *name, Preset: *preset, Solvent: *solvent, Cluster: *cluster,
			Charge: charge.v, Multiplicity: mult.v, SplitRecords: *split, DryRun: *dryRun,
			Conformers: *conformers, TemperatureK: *temperature,
		}
		if mult.v != nil && *mult.v < 1 {
			return usagef("submit: --multiplicity must be 1 or more, not %d", *mult.v)
		}
		switch {
		case len(args) > 1:
			return usagef("submit takes one FILE, got %d (submit several files one by one, "+
				"or put the molecules in one SDF file and use --split)", len(args))
		case len(args) == 1 && *smiles != "":
			return usagef("submit: give a FILE or --smiles, not both")
		case len(args) == 1:
			content, fname, err := a.readMolecule(args[0])
			if err != nil {
				return err
			}
			req.Content, req.Filename = content, fname
		case *smiles != "":
			req.SMILES = *smiles
		default:
			return usagef("submit needs a FILE (or - for stdin) or --smiles SMILES")
		}

		resp, err := a.client().Submit(ctx, req)
		if err != nil {
			return a.apiFailure(err, "submit", "")
		}
		if *dryRun {
			return a.printRendered(resp, *asJSON)
		}
		return a.printSubmitted(resp, *split, *asJSON)
	}
}

// readMolecule reads FILE (or stdin for "-") and returns its text and the base name to
// send. Only the name goes to the daemon, which guesses the format from its extension;
// the daemon may run as another user and could not open the path anyway.
func (a *app) readMolecule(path string) (content, filename string, err error) {
	var r io.Reader
	label := path
	if path == "-" {
		r, label = a.stdin, "standard input"
		if isTerminal(a.stdin) {
			a.warnf("reading the molecule from the terminal; end it with Ctrl-D")
		}
	} else {
		f, err := os.Open(path)
		if err != nil {
			return "", "", inputf("cannot read %s: %s", path, describeOpenError(err))
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return "", "", inputf("cannot read %s: %v", path, err)
		}
		if st.IsDir() {
			return "", "", inputf("%s is a directory: give a molecule file", path)
		}
		if st.Mode().IsRegular() && st.Size() > maxMolecule {
			return "", "", tooLarge(path, st.Size())
		}
		r, filename = f, filepath.Base(path)
	}
	// Read one byte past the limit so stdin and special files are held to it as well.
	b, err := io.ReadAll(io.LimitReader(r, maxMolecule+1))
	if err != nil {
		return "", "", inputf("cannot read %s: %v", label, err)
	}
	if len(b) > maxMolecule {
		return "", "", tooLarge(label, -1)
	}
	if len(b) == 0 {
		return "", "", inputf("%s is empty: give a molecule file (xyz, mol, sdf)", label)
	}
	if !utf8.Valid(b) {
		return "", "", inputf("%s is not a text file: give an xyz, mol or sdf file "+
			"(compressed files must be decompressed first)", label)
	}
	return string(b), filename, nil
}

// isTerminal reports whether r is an interactive terminal, where "submit -" would
// otherwise sit silently waiting for input the user may not know it wants.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func tooLarge(label string, size int64) error {
	what := "more than 1 MiB"
	if size >= 0 {
		what = fmt.Sprintf("%.1f MiB", float64(size)/(1<<20))
	}
	return inputf("%s is %s; qmd takes molecule files of at most 1 MiB "+
		"(split the file into smaller ones)", label, what)
}

func describeOpenError(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// printRendered shows a dry run as the files the daemon would write, each under a
// "==> path <==" header like tail(1) uses for several files.
func (a *app) printRendered(resp api.SubmitResponse, asJSON bool) error {
	if asJSON {
		return writeJSON(a.stdout, api.SubmitResponse{Rendered: resp.Rendered})
	}
	for i, r := range resp.Rendered {
		if i > 0 {
			fmt.Fprintln(a.stdout)
		}
		fmt.Fprintf(a.stdout, "==> %s <==\n%s", sanitize(r.Path),
			ensureNewline(sanitizeBlock(r.Content)))
	}
	if len(resp.Rendered) == 0 {
		a.warnf("the dry run rendered no files")
	}
	return nil
}

// printSubmitted prints the new ids, one per line, so "$(qmctl submit ...)" captures
// them. The JSON always has "id" and, for split submissions, "ids" as well.
func (a *app) printSubmitted(resp api.SubmitResponse, split, asJSON bool) error {
	if resp.ID == "" && len(resp.IDs) > 0 {
		resp.ID = resp.IDs[0]
	}
	if resp.ID == "" {
		return fmt.Errorf("qmd accepted the submission but returned no job id " +
			"(check 'qmctl list')")
	}
	ids := resp.IDs
	if len(ids) == 0 {
		ids = []string{resp.ID}
	}
	if asJSON {
		out := api.SubmitResponse{ID: resp.ID, Conformers: resp.Conformers}
		if split || len(resp.IDs) > 1 {
			out.IDs = ids
		}
		return writeJSON(a.stdout, out)
	}
	for _, id := range ids {
		fmt.Fprintln(a.stdout, sanitize(id))
	}
	if len(resp.Conformers) > 0 {
		fmt.Fprintf(a.stderr, "conformer search: %d conformer jobs (%s); wait for and take "+
			"the result of the search job\n", len(resp.Conformers),
			sanitize(strings.Join(resp.Conformers, " ")))
	}
	return nil
}
