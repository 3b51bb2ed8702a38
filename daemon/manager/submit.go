package manager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"qmd/ctl/api"
	"qmd/daemon/chem"
	"qmd/daemon/job"
	"qmd/daemon/level"
	"qmd/daemon/store"
	"qmd/scheduler/runner"
	"qmd/templates"
)

// Files of a job directory, relative to it.
const (
	DeckFile     = "job.nw"
	ScriptFile   = "job.sh"
	GeometryFile = "geometry.xyz"
	MoleculeFile = "molecule.json"
	OutputFile   = "output/nwchem.out"
	StderrFile   = "logs/nwchem.err"
	ScratchDir   = "scratch"
	deckPrefix   = "job"
)

// InputError is a submission the daemon refuses because of what the user sent. Nothing is
// stored for it.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

func badInput(format string, a ...any) error {
	return &InputError{Err: fmt.Errorf(format, a...)}
}

// ErrDraining is returned for submissions while the daemon stops.
var ErrDraining = errors.New("qmd is shutting down; try again when it is back")

// moleculeRecord is MoleculeFile: the normalised molecule with its graph, kept so a
// finished job's shieldings can be grouped without re-reading the input.
type moleculeRecord struct {
	Title        string      `json:"title"`
	Charge       int         `json:"charge"`
	Multiplicity int         `json:"multiplicity"`
	Atoms        []chem.Atom `json:"atoms"`
	Bonds        [][2]int    `json:"bonds"`
	Groups       []int       `json:"groups"`
	BondedHeavy  []int       `json:"bonded_heavy"`
}

// prepared is one job ready to be written and stored.
type prepared struct {
	job   job.Job
	files []api.Rendered // paths relative to the job dir
}

// Submit validates a submission, writes one job directory per molecule and stores the
// jobs as queued. Bad input returns *InputError and creates nothing.
func (m *Manager) Submit(ctx context.Context, uid int, req api.SubmitRequest) (api.SubmitResponse, error) {
	if m.draining.Load() {
		return api.SubmitResponse{}, ErrDraining
	}
	preps, err := m.prepare(ctx, uid, req)
	if err != nil {
		return api.SubmitResponse{}, err
	}
	if req.DryRun {
		var r []api.Rendered
		for _, p := range preps {
			for _, f := range p.files {
				r = append(r, api.Rendered{Path: filepath.Join(p.job.ID, f.Path), Content: f.Content})
			}
		}
		return api.SubmitResponse{Rendered: r}, nil
	}

	// Every directory first, then every row in one transaction: all of the submission
	// is stored, or none of it.
	var dirs []string
	undo := func() {
		for _, d := range dirs {
			os.RemoveAll(d)
		}
	}
	jobs := make([]*job.Job, len(preps))
	for i, p := range preps {
		dir, err := m.writeDir(p)
		if err != nil {
			undo()
			return api.SubmitResponse{}, err
		}
		dirs = append(dirs, dir)
		j := p.job
		jobs[i] = &j
	}
	if err := m.st.CreateMany(ctx, jobs, fmt.Sprintf("submitted by uid %d", uid)); err != nil {
		undo()
		return api.SubmitResponse{}, fmt.Errorf("store jobs: %w", err)
	}
	var resp api.SubmitResponse
	for _, j := range jobs {
		if j.Kind == job.KindConformer {
			resp.Conformers = append(resp.Conformers, j.ID)
		} else {
			resp.IDs = append(resp.IDs, j.ID)
		}
		m.log.Info("job submitted", "job", j.ID, "cluster", j.Cluster, "uid", uid,
			"preset", j.Preset, "solvent", j.Solvent)
	}
	resp.ID = resp.IDs[0]
	m.kick(preps[0].job.Cluster)
	return resp, nil
}

// writeDir writes a job directory under a temporary name and renames it into place, so a
// directory is either complete or absent; the caller stores the row afterwards and
// removes the directory if that fails.
func (m *Manager) writeDir(p prepared) (string, error) {
	final := m.jobDir(p.job)
	parent := filepath.Dir(final)
	tmp := filepath.Join(parent, ".new-"+p.job.ID)
	owner := m.ownerCred(p.job)
	if owner != nil {
		// The owner's own directory under owner_root, which the owner's batch jobs
		// write into; qmd (root) reads the results from it.
		if err := ownedDir(parent, owner); err != nil {
			return "", fmt.Errorf("create job dir: %w", err)
		}
	}
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return "", fmt.Errorf("create job dir: %w", err)
	}
	for _, sub := range []string{"output", "logs", ScratchDir} {
		if err := os.MkdirAll(filepath.Join(tmp, sub), 0o750); err != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("create job dir: %w", err)
		}
	}
	for _, f := range p.files {
		mode := os.FileMode(0o640)
		if f.Path == ScriptFile {
			mode = 0o750
		}
		if err := os.WriteFile(filepath.Join(tmp, f.Path), []byte(f.Content), mode); err != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("write %s: %w", f.Path, err)
		}
	}
	if owner != nil {
		if err := chownTree(tmp, owner); err != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("give the job dir to its owner: %w", err)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("place job dir: %w", err)
	}
	return final, nil
}

// ownedDir makes dir (and missing parents) and gives dir itself to the owner.
func ownedDir(dir string, owner *runner.Credential) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	return os.Lchown(dir, int(owner.UID), int(owner.GID))
}

// chownTree gives every file under root to the owner. Lchown never follows a link, so
// nothing outside the tree changes hands.
func chownTree(root string, owner *runner.Credential) error {
	return filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(owner.UID), int(owner.GID))
	})
}

// prepare turns a request into rendered jobs, or an *InputError.
func (m *Manager) prepare(ctx context.Context, uid int, req api.SubmitRequest) ([]prepared, error) {
	clusterName := req.Cluster
	if clusterName == "" {
		clusterName = m.cfg.DefaultCluster
	}
	c, ok := m.cluster(clusterName)
	if !ok {
		return nil, badInput("unknown cluster %q (configured: %s)", clusterName,
			strings.Join(m.cfg.ClusterNames(), ", "))
	}
	presetName := req.Preset
	if presetName == "" {
		presetName = "draft"
	}
	preset, err := level.FindPreset(presetName)
	if err != nil {
		return nil, &InputError{Err: err}
	}
	solventName := req.Solvent
	if solventName == "" {
		solventName = "chcl3"
	}
	solvent, err := level.FindSolvent(solventName)
	if err != nil {
		return nil, &InputError{Err: err}
	}
	if err := checkName(req.Name); err != nil {
		return nil, err
	}
	switch req.Conformers {
	case "", "single", "search", "auto":
	default:
		return nil, badInput("conformers %q: want single, search or auto", req.Conformers)
	}
	if req.TemperatureK != 0 && !(req.TemperatureK > 0 && req.TemperatureK <= 1000) {
		return nil, badInput("temperature %v K: want above 0 and at most 1000",
			req.TemperatureK)
	}

	mols, format, raw, err := m.readMolecules(ctx, req)
	if err != nil {
		return nil, err
	}
	if len(mols) > 1 && !req.SplitRecords {
		return nil, badInput("the file holds %d molecules; submit one, or ask for one job per record (qmctl submit --split)", len(mols))
	}
	if len(mols) > 100 {
		return nil, badInput("the file holds %d molecules; at most 100 jobs per submission", len(mols))
	}

	var out []prepared
	var problems []error
	for i, mol := range mols {
		search, err := m.conformerMode(req, mol)
		if err != nil {
			return nil, err
		}
		if search {
			ps, err := m.prepareSearch(ctx, uid, req, c, preset, solvent, mol, format, raw)
			if err != nil {
				var ie *InputError
				if !errors.As(err, &ie) {
					return nil, err
				}
				problems = append(problems, err)
				continue
			}
			if ps != nil {
				out = append(out, ps...)
				continue
			}
		}
		p, err := m.prepareOne(uid, req, c, preset, solvent, mol, format, raw)
		if err != nil {
			if len(mols) > 1 {
				err = fmt.Errorf("record %d: %w", i+1, err)
			}
			problems = append(problems, err)
			continue
		}
		if len(mols) > 1 && req.Name != "" {
			p.job.Name = fmt.Sprintf("%s-%d", req.Name, i+1)
		}
		out = append(out, p)
	}
	if len(problems) > 0 {
		return nil, &InputError{Err: errors.Join(problems...)}
	}
	return out, nil
}

// readMolecules decodes the submitted molecule(s).
func (m *Manager) readMolecules(ctx context.Context, req api.SubmitRequest) ([]chem.Molecule, string, string, error) {
	if req.SMILES != "" && req.Content != "" {
		return nil, "", "", badInput("give either a file or --smiles, not both")
	}
	raw := req.Content
	format := strings.ToLower(req.Format)
	if req.SMILES != "" {
		raw, format = req.SMILES, "smiles"
	}
	if strings.TrimSpace(raw) == "" {
		return nil, "", "", badInput("no molecule given: the input is empty")
	}
	if len(raw) > m.cfg.MaxInputBytes {
		return nil, "", "", badInput("input is %d bytes, over the limit of %d", len(raw), m.cfg.MaxInputBytes)
	}
	if format == "" {
		f, err := chem.DetectFormat(req.Filename, []byte(raw))
		if err != nil {
			return nil, "", "", &InputError{Err: err}
		}
		format = f
	}

	cctx, cancel := context.WithTimeout(ctx, m.defaultCluster().cfg().CommandTimeout.Duration)
	defer cancel()
	switch format {
	case "smiles":
		smi, title := strings.TrimSpace(raw), ""
		if req.SMILES == "" {
			s, t, err := chem.SMILESFromFile([]byte(raw))
			if err != nil {
				return nil, "", "", &InputError{Err: err}
			}
			smi, title = s, t
		}
		mol, err := chem.FromSMILES(cctx, m.run, m.cfg.Obabel, smi)
		if err != nil {
			return nil, "", "", m.inputOrInternal(err)
		}
		if title != "" {
			mol.Title = title
		}
		return []chem.Molecule{mol}, format, raw, nil
	case "xyz", "mol", "sdf":
		mols, err := chem.Parse(format, []byte(raw))
		if err != nil {
			return nil, "", "", &InputError{Err: err}
		}
		var records [][]byte
		if format != "xyz" {
			records = chem.SplitSDF([]byte(raw))
		}
		for i := range mols {
			if format != "xyz" && chem.Needs3D(mols[i]) && i < len(records) {
				mol3, err := chem.To3D(cctx, m.run, m.cfg.Obabel, records[i])
				if err != nil {
					return nil, "", "", m.inputOrInternal(err)
				}
				mols[i] = mol3
			}
		}
		return mols, format, raw, nil
	}
	return nil, "", "", badInput("unknown input format %q (use xyz, mol, sdf or smiles)", format)
}

// inputOrInternal keeps input errors as they are and marks the rest as problems with the
// molecule tools rather than with the molecule.
func (m *Manager) inputOrInternal(err error) error {
	var ie *chem.InputError
	if errors.As(err, &ie) {
		return &InputError{Err: err}
	}
	return fmt.Errorf("convert molecule with Open Babel: %w", err)
}

// checkName accepts names a chemist would give a job: printable, no path or shell tricks
// needed, because names show up in tables, file names of exports and scheduler job names.
func checkName(name string) error {
	if len(name) > 64 {
		return badInput("job name is %d characters; at most 64", len(name))
	}
	for _, r := range name {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-_.+", r)) {
			return badInput("job name %q has %q; use letters, digits, '-', '_', '.', '+'", name, r)
		}
	}
	return nil
}

func (m *Manager) prepareOne(uid int, req api.SubmitRequest, c *cluster, preset level.Preset,
	solvent level.Solvent, mol chem.Molecule, format, raw string) (prepared, error) {
	charge := 0
	if mol.Charge != nil {
		charge = *mol.Charge
	}
	if req.Charge != nil {
		charge = *req.Charge
	}
	mult := 1
	if req.Multiplicity != nil {
		mult = *req.Multiplicity
	}
	if err := chem.Validate(mol, charge, mult); err != nil {
		return prepared{}, &InputError{Err: err}
	}

	id, err := job.NewID()
	if err != nil {
		return prepared{}, err
	}
	bonds := mol.Bonds
	if len(bonds) == 0 {
		bonds = chem.PerceiveBonds(mol.Atoms)
	}
	rec := moleculeRecord{
		Title: mol.Title, Charge: charge, Multiplicity: mult, Atoms: mol.Atoms, Bonds: bonds,
		Groups:      chem.EquivalenceGroups(mol.Atoms, bonds),
		BondedHeavy: chem.BondedHeavy(mol.Atoms, bonds),
	}
	lvl := level.Describe(preset, solvent)

	deck := templates.Deck{
		JobID: id, Prefix: deckPrefix, Level: lvl, MemoryMB: c.cfg().MemoryMB,
		PermanentDir: "./output", ScratchDir: "./" + ScratchDir,
		Charge: charge, Multiplicity: mult, Functional: preset.Functional,
		OptBasis: preset.OptBasis, NMRBasis: preset.NMRBasis, Solvent: solvent.NWChem,
		MaxOptSteps: c.cfg().MaxOptSteps,
	}
	for _, a := range mol.Atoms {
		deck.Atoms = append(deck.Atoms, templates.Atom{Element: a.Element, X: a.X, Y: a.Y, Z: a.Z})
	}
	deckText, err := m.tmpl.Render(templates.NWChemNMR, deck)
	if err != nil {
		return prepared{}, err
	}
	script := templates.Script{
		JobID: id, Level: lvl, Deck: DeckFile, Command: c.nwchemCommand(),
		Tasks: c.cfg().MPIRanks, MemoryMB: c.cfg().MemoryMB*c.cfg().MPIRanks + jobMemoryOverheadMB,
		TimeLimit: strconv.Itoa(int(c.cfg().TimeLimit.Minutes())),
		Partition: c.cfg().Partition, Account: c.cfg().Account, QOS: c.cfg().QOS,
	}
	scriptTmpl := c.scriptTemplate()
	scriptText, err := m.tmpl.Render(scriptTmpl, script)
	if err != nil {
		return prepared{}, err
	}
	hash, err := m.tmpl.Hash(templates.NWChemNMR, scriptTmpl)
	if err != nil {
		return prepared{}, err
	}
	molJSON, err := json.MarshalIndent(rec, "", " ")
	if err != nil {
		return prepared{}, fmt.Errorf("encode molecule: %w", err)
	}

	name := req.Name
	if name == "" {
		name = defaultName(req.Filename, mol.Title)
	}
	j := job.Job{
		ID: id, Name: name, OwnerUID: uid, Cluster: c.name, State: job.Queued,
		Preset: preset.Name, Solvent: solvent.Name, Charge: charge, Multiplicity: mult,
		Level: lvl, Software: m.software, TemplateHash: hash, InputFormat: format,
	}
	return prepared{job: j, files: []api.Rendered{
		{Path: "input." + inputExt(format), Content: raw},
		{Path: GeometryFile, Content: chem.FormatXYZ(name, mol.Atoms)},
		{Path: MoleculeFile, Content: string(molJSON) + "\n"},
		{Path: DeckFile, Content: deckText},
		{Path: ScriptFile, Content: scriptText},
	}}, nil
}

// jobMemoryOverheadMB is added to NWChem's own memory when asking a scheduler for memory:
// the MPI runtime and the shell around NWChem need some too.
const jobMemoryOverheadMB = 512

// scriptTemplate is the batch script template of the cluster's scheduler.
func (c *cluster) scriptTemplate() string {
	switch c.cfg().Scheduler {
	case "slurm":
		return templates.SlurmScript
	case "pbs", "torque":
		return templates.PBSScript
	}
	return templates.LocalScript
}

func inputExt(format string) string {
	if format == "smiles" {
		return "smi"
	}
	return format
}

// defaultName derives a job name from the file name or the molecule's title, keeping only
// characters checkName accepts.
func defaultName(filename, title string) string {
	base := strings.TrimSuffix(filepath.Base(filename), filepath.Ext(filename))
	if filename == "" || base == "." || base == "-" {
		base = title
	}
	var b strings.Builder
	for _, r := range base {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-_.+", r) {
			b.WriteRune(r)
		}
		if b.Len() >= 64 {
			break
		}
	}
	return b.String()
}

var _ = store.ErrJobNotFound
