// Package templates renders the files qmd writes into a job directory: the NWChem deck and
// the batch script. The defaults are embedded; a directory named in the config shadows them
// file by file, so a site can change one template and keep the rest.
package templates

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"text/template"

	"qmd/scheduler/runner"
)

//go:embed nwchem local slurm pbs
var embedded embed.FS

// Names of the templates qmd renders.
const (
	NWChemNMR   = "nwchem/nmr.nw.tmpl"
	LocalScript = "local/job.sh.tmpl"
	SlurmScript = "slurm/job.sh.tmpl"
	PBSScript   = "pbs/job.sh.tmpl" // PBS Pro and Torque
)

// Set is the embedded templates with an optional override directory on top.
type Set struct {
	override fs.FS
}

// New returns the template set; overrideDir may be empty.
func New(overrideDir string) (*Set, error) {
	s := &Set{}
	if overrideDir != "" {
		st, err := os.Stat(overrideDir)
		if err != nil {
			return nil, fmt.Errorf("templates_dir: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("templates_dir: %s is not a directory", overrideDir)
		}
		s.override = os.DirFS(overrideDir)
	}
	return s, nil
}

// Source returns a template's text: the override if one exists, else the embedded one.
func (s *Set) Source(name string) ([]byte, error) {
	if s.override != nil {
		b, err := fs.ReadFile(s.override, name)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read template override %s: %w", name, err)
		}
	}
	b, err := fs.ReadFile(embedded, name)
	if err != nil {
		return nil, fmt.Errorf("read template %s: %w", name, err)
	}
	return b, nil
}

// Funcs are available in every template. shq quotes one shell word and shqv a list, with
// the same quoting the command runner uses.
var Funcs = template.FuncMap{
	"shq":  runner.Quote,
	"shqv": runner.QuoteArgv,
}

// Render executes the named template with data; a missing key is an error.
func (s *Set) Render(name string, data any) (string, error) {
	src, err := s.Source(name)
	if err != nil {
		return "", err
	}
	t, err := template.New(name).Funcs(Funcs).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return "", fmt.Errorf("parse template %s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return "", fmt.Errorf("render template %s: %w", name, err)
	}
	return buf.String(), nil
}

// Hash is a short sha256 over the named templates' sources, recorded with each job so a
// result can be traced to the exact templates that produced it.
func (s *Set) Hash(names ...string) (string, error) {
	h := sha256.New()
	for _, n := range names {
		src, err := s.Source(n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(src))
		h.Write(src)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Atom is one line of the deck's geometry block.
type Atom struct {
	Element string
	X, Y, Z float64
}

// Deck is the data of the NWChem template.
type Deck struct {
	JobID        string
	Prefix       string // NWChem file prefix ("start" name)
	Level        string
	MemoryMB     int
	PermanentDir string
	ScratchDir   string
	Charge       int
	Multiplicity int
	Atoms        []Atom
	Functional   string
	OptBasis     string
	NMRBasis     string
	Solvent      string // NWChem COSMO solvent name; empty for the gas phase
	MaxOptSteps  int
}

// Script is the data of a batch script template.
type Script struct {
	JobID   string
	Level   string
	Deck    string   // deck file name, relative to the job directory
	Command []string // NWChem command line without the deck, e.g. mpirun -np 2 nwchem

	// Batch directives, for schedulers. Each value was checked against the cluster's
	// allowed pattern or list before rendering.
	Tasks     int
	MemoryMB  int    // for the whole job
	TimeLimit string // e.g. "1:00:00" or "2-00:00:00"
	Partition string
	Account   string
	QOS       string
}
