package shifts

// This file is the single table of reference values qmd ships. To add a value, append one
// Reference here, with its Level and a Source that says how it was obtained; For picks it
// up without other changes.

// Levels of theory, written the way qmd records a job's level (NMR level // geometry level,
// then the solvent model), so a result's reference can be compared with the job's level.
const (
	levelDraftGas        = "B3LYP/6-31G*//B3LYP/6-31G* gas"
	levelDraftCHCl3      = "B3LYP/6-31G*//B3LYP/6-31G* COSMO(chcl3)"
	levelDraftDMSO       = "B3LYP/6-31G*//B3LYP/6-31G* COSMO(dmso)"
	levelProductionGas   = "B3LYP/6-311+G(2d,p)//B3LYP/6-31G* gas"
	levelProductionCHCl3 = "B3LYP/6-311+G(2d,p)//B3LYP/6-31G* COSMO(chcl3)"
	levelProductionDMSO  = "B3LYP/6-311+G(2d,p)//B3LYP/6-31G* COSMO(dmso)"
)

const (
	sourceTMSDraft = "qmd: TMS optimised and its GIAO shieldings computed with NWChem 7.0.2 " +
		"at this level; mean over the 12 H and the 4 C"
	sourceTMSProductionOwn = "qmd: TMS optimised at B3LYP/6-31G* and its GIAO shieldings " +
		"computed at B3LYP/6-311+G(2d,p) with NWChem 7.0.2, same solvent in both steps " +
		"(the production preset's deck); mean over the 12 H and the 4 C"
	sourceTMSProduction = "qmd: GIAO shieldings of TMS computed with NWChem 7.0.2 at " +
		"B3LYP/6-311+G(2d,p) COSMO(chcl3) on the TMS geometry optimised at " +
		"B3LYP/6-31G* COSMO(chcl3); mean over the 12 H and the 4 C"
	sourceLinear = "linear fit of experimental shift on computed shielding over the DELTA50 " +
		"set (Cohen et al., Molecules 2023, 28, 2449, " +
		"doi:10.3390/molecules28062449), NWChem COSMO shieldings; factors from the " +
		"qm-nmr-calc project, src/qm_nmr_calc/data/scaling_factors.json " +
		"(github.com/steinbeck/qm-nmr-calc)"
)

// shipped lists every reference known at start-up. Each TMS value was computed once with
// qmd's own deck (docs/shifts.md says how); a guessed value would silently shift every
// result, so a combination without a computed value has no entry.
var shipped = []Reference{
	// TMS references (δ = σ_TMS − σ), same level and solvent as the molecule.
	{Preset: PresetDraft, Solvent: SolventGas, Method: MethodTMS,
		TMSH: 32.1905, TMSC: 190.2438, Level: levelDraftGas, Source: sourceTMSDraft},
	{Preset: PresetDraft, Solvent: SolventCHCl3, Method: MethodTMS,
		TMSH: 32.1624, TMSC: 190.8496, Level: levelDraftCHCl3, Source: sourceTMSDraft},
	{Preset: PresetDraft, Solvent: SolventDMSO, Method: MethodTMS,
		TMSH: 32.1486, TMSC: 191.0299, Level: levelDraftDMSO, Source: sourceTMSDraft},
	{Preset: PresetProduction, Solvent: SolventCHCl3, Method: MethodTMS,
		TMSH: 31.7945, TMSC: 183.2422, Level: levelProductionCHCl3,
		Source: sourceTMSProduction},
	{Preset: PresetProduction, Solvent: SolventGas, Method: MethodTMS,
		TMSH: 31.8174, TMSC: 182.4468, Level: levelProductionGas,
		Source: sourceTMSProductionOwn},
	{Preset: PresetProduction, Solvent: SolventDMSO, Method: MethodTMS,
		TMSH: 31.7812, TMSC: 183.4046, Level: levelProductionDMSO,
		Source: sourceTMSProductionOwn},

	// Linear scaling (δ = slope·σ + intercept), fitted at the production level only.
	{Preset: PresetProduction, Solvent: SolventCHCl3, Method: MethodLinear,
		SlopeH: -0.9375324445748368, InterceptH: 29.917572478615273,
		SlopeC: -0.9497191310466504, InterceptC: 172.68931310563093,
		Level: levelProductionCHCl3, Source: sourceLinear},
	{Preset: PresetProduction, Solvent: SolventDMSO, Method: MethodLinear,
		SlopeH: -0.9323417944578304, InterceptH: 29.734945473316035,
		SlopeC: -0.9429390047043799, InterceptC: 171.7713530669762,
		Level: levelProductionDMSO, Source: sourceLinear},
	{Preset: PresetProduction, Solvent: SolventGas, Method: MethodLinear,
		SlopeH: -0.955379905689472, InterceptH: 30.544554436892824,
		SlopeC: -0.9726389627459856, InterceptC: 175.71087286822868,
		Level: levelProductionGas, Source: sourceLinear},
}
