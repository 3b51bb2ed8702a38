// Package level names the levels of theory and solvents qmd offers. Users pick a preset and
// a solvent by name; everything that reaches an NWChem deck comes from these tables, never
// from free text, because NWChem silently treats an unknown solvent name as water.
package level

import (
	"fmt"
	"slices"
	"strings"
)

// Preset is a level of theory: the functional and the basis sets of the two steps.
type Preset struct {
	Name       string
	Functional string // NWChem xc keyword
	OptBasis   string // basis for the geometry optimisation
	NMRBasis   string // basis for the GIAO shielding step
	About      string
}

// Solvent is an implicit (COSMO) solvent; NWChem is empty for the gas phase.
type Solvent struct {
	Name   string
	NWChem string // name given to NWChem's cosmo "solvent" directive
	Label  string
}

// Presets offered to users. draft optimises and computes shieldings with 6-31G*;
// production keeps the 6-31G* geometry and computes shieldings with 6-311+G(2d,p), the
// level the published NWChem scaling factors were fitted at.
var Presets = []Preset{
	{Name: "draft", Functional: "b3lyp", OptBasis: "6-31G*", NMRBasis: "6-31G*",
		About: "fast: B3LYP/6-31G* geometry and shieldings"},
	{Name: "production", Functional: "b3lyp", OptBasis: "6-31G*", NMRBasis: "6-311+G(2d,p)",
		About: "B3LYP/6-311+G(2d,p) shieldings on a B3LYP/6-31G* geometry"},
}

// Solvents offered to users.
var Solvents = []Solvent{
	{Name: "gas", Label: "gas phase"},
	{Name: "chcl3", NWChem: "chcl3", Label: "chloroform (COSMO)"},
	{Name: "dmso", NWChem: "dmso", Label: "dimethyl sulfoxide (COSMO)"},
}

// FindPreset returns the preset called name.
func FindPreset(name string) (Preset, error) {
	i := slices.IndexFunc(Presets, func(p Preset) bool { return p.Name == name })
	if i < 0 {
		return Preset{}, fmt.Errorf("unknown preset %q (choose %s)", name, presetNames())
	}
	return Presets[i], nil
}

// FindSolvent returns the solvent called name.
func FindSolvent(name string) (Solvent, error) {
	i := slices.IndexFunc(Solvents, func(s Solvent) bool { return s.Name == name })
	if i < 0 {
		return Solvent{}, fmt.Errorf("unknown solvent %q (choose %s)", name, solventNames())
	}
	return Solvents[i], nil
}

// Describe is the level of theory as recorded with each job, e.g.
// "B3LYP/6-311+G(2d,p)//B3LYP/6-31G* COSMO(chcl3)".
func Describe(p Preset, s Solvent) string {
	d := fmt.Sprintf("%s/%s//%s/%s", strings.ToUpper(p.Functional), p.NMRBasis,
		strings.ToUpper(p.Functional), p.OptBasis)
	if s.NWChem == "" {
		return d + " gas"
	}
	return d + " COSMO(" + s.NWChem + ")"
}

func presetNames() string {
	var n []string
	for _, p := range Presets {
		n = append(n, p.Name)
	}
	return strings.Join(n, ", ")
}

func solventNames() string {
	var n []string
	for _, s := range Solvents {
		n = append(n, s.Name)
	}
	return strings.Join(n, ", ")
}
