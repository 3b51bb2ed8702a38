package command

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"qmd/daemon/validate"
)

const fitUsage = `usage: qmd fit-scaling --train REPORT[,REPORT] [--test REPORT[,REPORT]] --out FILE

Fits linear-scaling factors (δ = slope·σ + intercept, per nucleus) from the JSON reports
of qmd validate. Molecules of the test reports are left out of the fit and the factors'
error on them is recorded, with the training set, level, date, n, R² and MAE, in FILE.
The daemon uses FILE through its scaling_file setting.
`

func fitScalingCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("qmd fit-scaling", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	train := fs.String("train", "", "training reports (comma-separated)")
	test := fs.String("test", "", "test reports (comma-separated)")
	out := fs.String("out", "", "scaling file to write")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, fitUsage)
			return nil
		}
		fmt.Fprint(stderr, fitUsage)
		return &UsageError{Msg: "qmd fit-scaling: " + err.Error()}
	}
	if *train == "" || *out == "" || fs.NArg() > 0 {
		fmt.Fprint(stderr, fitUsage)
		return &UsageError{Msg: "qmd fit-scaling: --train and --out are required"}
	}
	seen := map[string]bool{}
	read := func(list string) ([]*validate.Report, error) {
		var rs []*validate.Report
		for _, p := range strings.Split(list, ",") {
			if p == "" {
				continue
			}
			if seen[filepath.Clean(p)] {
				return nil, &UsageError{Msg: fmt.Sprintf("qmd fit-scaling: report %s given "+
					"twice; its sites would count double", p)}
			}
			seen[filepath.Clean(p)] = true
			r, err := validate.ReadReport(p)
			if err != nil {
				return nil, err
			}
			rs = append(rs, r)
		}
		return rs, nil
	}
	trainR, err := read(*train)
	if err != nil {
		return err
	}
	testR, err := read(*test)
	if err != nil {
		return err
	}
	fitted, err := validate.Fit(trainR, testR, time.Now())
	if err != nil {
		return err
	}
	if err := validate.WriteScaling(*out, fitted); err != nil {
		return err
	}
	for _, f := range fitted {
		line := fmt.Sprintf("%-3s δ = %.5f·σ + %.4f  n=%d R²=%.4f MAE=%.3f", f.Nucleus,
			f.Slope, f.Intercept, f.N, f.R2, f.MAE)
		if f.TestN > 0 {
			line += fmt.Sprintf("  test n=%d MAE=%.3f", f.TestN, f.TestMAE)
		}
		fmt.Fprintln(stdout, line)
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	return nil
}
