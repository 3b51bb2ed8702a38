package plot

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"
)

// Ethanol-like test data: two close 1H lines would be too easy, so OH sits between.
var (
	ethanolH = []Line{
		{Shift: 1.18, Intensity: 3, Label: "CH3"},
		{Shift: 3.65, Intensity: 2, Label: "CH2"},
		{Shift: 2.6, Intensity: 1, Label: "OH"},
	}
	ethanolC = []Line{
		{Shift: 18.4, Intensity: 1, Label: "CH3"},
		{Shift: 58.3, Intensity: 1, Label: "CH2"},
	}
)

// crowdedH has lines a few hundredths of a ppm apart, whose labels must stack.
var crowdedH = []Line{
	{Shift: 7.26, Intensity: 2, Label: "H2/H6 (ortho)"},
	{Shift: 7.31, Intensity: 2, Label: "H3/H5 (meta)"},
	{Shift: 7.22, Intensity: 1, Label: "H4 (para)"},
	{Shift: 2.35, Intensity: 3, Label: "CH3"},
	{Shift: 0, Intensity: 12, Label: "TMS"},
}

// validationPoints returns 40 deterministic points in four series with a few outliers.
func validationPoints() []Point {
	series := []string{"TMS", "scaled", "C–Cl", "exchangeable"}
	var pts []Point
	for i := range 40 {
		exp := 0.25 * float64(i)
		calc := exp + 0.15*math.Sin(float64(i)*1.7)
		if i%13 == 5 {
			calc += 1.1 // an outlier that should be labelled
		}
		pts = append(pts, Point{
			Experimental: exp, Calculated: calc,
			Label:  fmt.Sprintf("mol%d H%d", i/4, i%4+1),
			Series: series[i%len(series)],
		})
	}
	return pts
}

func TestFormatOf(t *testing.T) {
	tests := []struct {
		path, want string
		ok         bool
	}{
		{"out.png", "png", true},
		{"out.svg", "svg", true},
		{"/tmp/dir.d/Fig.PNG", "png", true},
		{"report.SvG", "svg", true},
		{"out.pdf", "", false},
		{"out", "", false},
		{"png", "", false},
		{"out.png.txt", "", false},
	}
	for _, tt := range tests {
		got, err := FormatOf(tt.path)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("FormatOf(%q) = %q, %v; want %q", tt.path, got, err, tt.want)
		}
		if !tt.ok {
			if err == nil {
				t.Errorf("FormatOf(%q) = %q, want error", tt.path, got)
			} else if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("FormatOf(%q) error %q does not name the path", tt.path, err)
			}
		}
	}
}

func TestNiceTicks(t *testing.T) {
	tests := []struct {
		lo, hi float64
		n      int
		want   string // major labels, low to high
	}{
		{0, 10, 12, "0 1 2 3 4 5 6 7 8 9 10"},
		{0, 220, 12, "0 20 40 60 80 100 120 140 160 180 200 220"},
		{-1.3, 2.6, 8, "-1.0 -0.5 0.0 0.5 1.0 1.5 2.0 2.5"},
		{0.1, 0.35, 5, "0.10 0.15 0.20 0.25 0.30 0.35"},
	}
	for _, tt := range tests {
		var got []string
		for _, tk := range (niceTicks{N: tt.n}).Ticks(tt.lo, tt.hi) {
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if s := strings.Join(got, " "); s != tt.want {
			t.Errorf("Ticks(%v, %v) with N=%d = %q, want %q", tt.lo, tt.hi, tt.n, s, tt.want)
		}
	}
}

func TestShiftWindow(t *testing.T) {
	tests := []struct {
		nuc    nucleus
		shifts []float64
		lo, hi float64
	}{
		{proton, []float64{1.18, 3.65}, 0, 10},
		{proton, []float64{0, 10}, 0, 10}, // on the edge: TMS does not widen the window
		{proton, []float64{12.1}, 0, 13},
		{proton, []float64{-2.5, 4}, -3, 10},
		{carbon, []float64{18.4, 58.3}, 0, 220},
		{carbon, []float64{231}, 0, 240},
	}
	for _, tt := range tests {
		var lines []Line
		for _, s := range tt.shifts {
			lines = append(lines, Line{Shift: s, Intensity: 1})
		}
		lo, hi := shiftWindow(tt.nuc, lines)
		if lo != tt.lo || hi != tt.hi {
			t.Errorf("shiftWindow(%s, %v) = %v..%v, want %v..%v",
				tt.nuc.name, tt.shifts, lo, hi, tt.lo, tt.hi)
		}
	}
}

func TestPlaceLabelsStacksCloseLabels(t *testing.T) {
	w := vg.Points(40)
	xs := []vg.Length{100, 103, 106, 300}
	tops := []vg.Length{50, 50, 40, 50}
	boxes := placeLabels(xs, tops, []vg.Length{w, w, w, w}, 10, 0, 400)
	for i := range boxes {
		for j := i + 1; j < len(boxes); j++ {
			if overlaps(boxes[i], boxes[j]) {
				t.Errorf("labels %d %v and %d %v overlap", i, boxes[i], j, boxes[j])
			}
		}
		if boxes[i].Min.Y < tops[i] {
			t.Errorf("label %d at %v is below its stick top %v", i, boxes[i].Min.Y, tops[i])
		}
	}
	if boxes[3].Min.Y != tops[3]+labelGap {
		t.Errorf("isolated label raised to %v, want %v", boxes[3].Min.Y, tops[3]+labelGap)
	}
	// Near the edge a label is pulled inside the panel.
	b := placeLabels([]vg.Length{2}, []vg.Length{10}, []vg.Length{w}, 10, 0, 400)
	if b[0].Min.X < 0 {
		t.Errorf("label box %v starts left of the panel", b[0])
	}
}

// render calls f with a fresh buffer and fails the test on error.
func render(t *testing.T, f func(io.Writer) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := f(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.Len() == 0 {
		t.Fatal("empty output")
	}
	return buf.Bytes()
}

// svgText is one <text> element of an SVG file.
type svgText struct {
	X, Y float64
	Text string
}

// svgTexts parses an SVG document as XML and returns its text elements.
func svgTexts(t *testing.T, doc []byte) []svgText {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var (
		out  []svgText
		cur  *svgText
		root string
	)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG does not parse as XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
			if tok.Name.Local == "text" {
				cur = &svgText{}
				for _, a := range tok.Attr {
					v, _ := strconv.ParseFloat(a.Value, 64)
					switch a.Name.Local {
					case "x":
						cur.X = v
					case "y":
						cur.Y = v
					}
				}
			}
		case xml.CharData:
			if cur != nil {
				cur.Text += string(tok)
			}
		case xml.EndElement:
			if tok.Name.Local == "text" && cur != nil {
				out = append(out, *cur)
				cur = nil
			}
		}
	}
	if root != "svg" {
		t.Fatalf("root element is %q, want svg", root)
	}
	return out
}

// findText returns the text elements whose content is s.
func findText(texts []svgText, s string) []svgText {
	var out []svgText
	for _, tx := range texts {
		if tx.Text == s {
			out = append(out, tx)
		}
	}
	return out
}

// checkPNG decodes doc and checks its size and that something was drawn.
func checkPNG(t *testing.T, doc []byte, w, h vg.Length) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("decode PNG: %v", err)
	}
	wantW := int(math.Round(w.Dots(DPI)))
	wantH := int(math.Round(h.Dots(DPI)))
	if b := img.Bounds(); b.Dx() != wantW || b.Dy() != wantH {
		t.Errorf("PNG is %dx%d, want %dx%d", b.Dx(), b.Dy(), wantW, wantH)
	}
	if n := inked(img); n < 1000 {
		t.Errorf("PNG has only %d non-white pixels", n)
	}
}

// inked counts the pixels that are not white.
func inked(img image.Image) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				n++
			}
		}
	}
	return n
}

func TestScatterSVG(t *testing.T) {
	pts := validationPoints()
	doc := render(t, func(w io.Writer) error {
		return Scatter(w, SVG, "¹H validation", "MAE 0.12 ppm, n = 40", pts)
	})
	texts := svgTexts(t, doc)
	for _, want := range []string{
		"¹H validation", "MAE 0.12 ppm, n = 40", labelExperimental, labelCalculated,
		"TMS", "scaled", "C–Cl", "exchangeable", "y = x",
		"mol1 H2", // the worst outlier, i = 5
	} {
		if len(findText(texts, want)) == 0 {
			t.Errorf("SVG has no text %q", want)
		}
	}
}

func TestScatterPNG(t *testing.T) {
	doc := render(t, func(w io.Writer) error {
		return Scatter(w, PNG, "13C", "", validationPoints())
	})
	checkPNG(t, doc, scatterWidth, scatterHeight)
}

// TestSVGEscapes checks that labels with XML metacharacters still give a valid document.
func TestSVGEscapes(t *testing.T) {
	const label = `C<O> & "x"`
	texts := svgTexts(t, render(t, func(w io.Writer) error {
		return Spectrum(w, SVG, label, nil, []Line{{Shift: 200, Intensity: 1, Label: label}})
	}))
	if n := len(findText(texts, label)); n != 2 {
		t.Errorf("found %d texts %q, want the title and the line label", n, label)
	}
}

func TestScatterSingleSeries(t *testing.T) {
	pts := []Point{{Experimental: 1, Calculated: 1.1}, {Experimental: 2, Calculated: 1.9}}
	texts := svgTexts(t, render(t, func(w io.Writer) error {
		return Scatter(w, SVG, "t", "", pts)
	}))
	if len(findText(texts, "y = x")) != 0 {
		t.Error("unnamed single series drew a legend")
	}
}

func TestWrap(t *testing.T) {
	sty := newPlot().Legend.TextStyle
	w := sty.Width("MAE 0.12 ppm,")
	tests := []struct{ in, want string }{
		{"MAE 0.12 ppm", "MAE 0.12 ppm"},
		{"MAE 0.12 ppm, RMSE 0.2 ppm", "MAE 0.12 ppm,\nRMSE 0.2 ppm"},
		{"a\nb", "a\nb"},
		{"unbreakable-and-far-too-wide x", "unbreakable-and-far-too-wide\nx"},
	}
	for _, tt := range tests {
		if got := wrap(sty, tt.in, w); got != tt.want {
			t.Errorf("wrap(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSpectrumSVG(t *testing.T) {
	doc := render(t, func(w io.Writer) error {
		return Spectrum(w, SVG, "ethanol", ethanolH, ethanolC)
	})
	texts := svgTexts(t, doc)
	for _, want := range []string{"ethanol", proton.axis, carbon.axis, "OH", "220"} {
		if len(findText(texts, want)) == 0 {
			t.Errorf("SVG has no text %q", want)
		}
	}
	for _, want := range []string{"CH3", "CH2"} {
		if n := len(findText(texts, want)); n != 2 {
			t.Errorf("SVG has %d texts %q, want one per panel", n, want)
		}
	}
}

// TestSpectrumReversed checks that ppm runs from high on the left to low on the right,
// both for the tick labels and for the data.
func TestSpectrumReversed(t *testing.T) {
	texts := svgTexts(t, render(t, func(w io.Writer) error {
		return Spectrum(w, SVG, "", ethanolH, nil)
	}))
	x := func(s string) float64 {
		t.Helper()
		found := findText(texts, s)
		if len(found) != 1 {
			t.Fatalf("found %d texts %q, want 1", len(found), s)
		}
		return found[0].X
	}
	ticks := []string{"10", "8", "6", "4", "2", "0"}
	for i := 1; i < len(ticks); i++ {
		if a, b := x(ticks[i-1]), x(ticks[i]); a >= b {
			t.Errorf("tick %q at x=%v is not left of tick %q at x=%v", ticks[i-1], a, ticks[i], b)
		}
	}
	// CH2 (3.65 ppm) is drawn left of OH (2.6), which is left of CH3 (1.18).
	if !(x("CH2") < x("OH") && x("OH") < x("CH3")) {
		t.Errorf("line labels not in reversed order: CH2 %v, OH %v, CH3 %v",
			x("CH2"), x("OH"), x("CH3"))
	}
}

// TestSpectrumCrowded checks that labels of near-coincident lines come out at different
// heights (SVG y grows downwards after gonum's flip, so compare for inequality only).
func TestSpectrumCrowded(t *testing.T) {
	texts := svgTexts(t, render(t, func(w io.Writer) error {
		return Spectrum(w, SVG, "toluene", crowdedH, nil)
	}))
	ys := map[float64]string{}
	for _, l := range crowdedH[:3] {
		found := findText(texts, l.Label)
		if len(found) != 1 {
			t.Fatalf("found %d texts %q, want 1", len(found), l.Label)
		}
		if other, dup := ys[found[0].Y]; dup {
			t.Errorf("labels %q and %q at the same height", other, l.Label)
		}
		ys[found[0].Y] = l.Label
	}
}

func TestSpectrumPNG(t *testing.T) {
	tests := []struct {
		name string
		h, c []Line
	}{
		{"both", ethanolH, ethanolC},
		{"1H only", ethanolH, nil},
		{"13C only", nil, ethanolC},
		{"all zero intensity", []Line{{Shift: 1}, {Shift: 2}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := render(t, func(w io.Writer) error {
				return Spectrum(w, PNG, tt.name, tt.h, tt.c)
			})
			checkPNG(t, doc, spectrumWidth, spectrumHeight)
		})
	}
}

func TestErrors(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name string
		call func(io.Writer) error
		want string // in the error message
	}{
		{"scatter empty", func(w io.Writer) error {
			return Scatter(w, SVG, "t", "", nil)
		}, "no points"},
		{"scatter bad format", func(w io.Writer) error {
			return Scatter(w, "pdf", "t", "", validationPoints())
		}, `"pdf"`},
		{"scatter NaN", func(w io.Writer) error {
			return Scatter(w, PNG, "t", "", []Point{{1, 1, "a", ""}, {nan, 2, "ethanol CH2", ""}})
		}, `point 1 ("ethanol CH2")`},
		{"scatter Inf", func(w io.Writer) error {
			return Scatter(w, SVG, "t", "", []Point{{1, inf, "x", ""}})
		}, "calculated shift is +Inf"},
		{"spectrum empty", func(w io.Writer) error {
			return Spectrum(w, SVG, "t", nil, []Line{})
		}, "no 1H or 13C lines"},
		{"spectrum bad format", func(w io.Writer) error {
			return Spectrum(w, "PNG ", "t", ethanolH, nil)
		}, "unknown plot format"},
		{"spectrum NaN shift", func(w io.Writer) error {
			return Spectrum(w, SVG, "t", ethanolH, []Line{{Shift: nan, Intensity: 1, Label: "C1"}})
		}, `13C line 0 ("C1"): shift is NaN`},
		{"spectrum Inf intensity", func(w io.Writer) error {
			return Spectrum(w, PNG, "t", []Line{{Shift: 1, Intensity: inf, Label: "H1"}}, nil)
		}, `1H line 0 ("H1"): intensity is +Inf`},
		{"spectrum negative intensity", func(w io.Writer) error {
			return Spectrum(w, PNG, "t", []Line{{Shift: 1, Intensity: -1, Label: "H1"}}, nil)
		}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := tt.call(&buf)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes despite the error", buf.Len())
			}
		})
	}
}

// TestWriteSamples writes example figures to the directory named by QMD_PLOT_SAMPLES, for
// a person to look at after changing the layout; it is skipped otherwise.
func TestWriteSamples(t *testing.T) {
	dir := os.Getenv("QMD_PLOT_SAMPLES")
	if dir == "" {
		t.Skip("QMD_PLOT_SAMPLES not set")
	}
	write := func(name string, f func(io.Writer) error) {
		path := filepath.Join(dir, name)
		out, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := f(out); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, format := range []string{PNG, SVG} {
		write("scatter."+format, func(w io.Writer) error {
			return Scatter(w, format, "¹H: calculated vs experimental",
				"MAE 0.12 ppm, n = 40", validationPoints())
		})
		write("ethanol."+format, func(w io.Writer) error {
			return Spectrum(w, format, "ethanol (predicted)", ethanolH, ethanolC)
		})
		write("toluene."+format, func(w io.Writer) error {
			return Spectrum(w, format, "toluene, 1H only", crowdedH, nil)
		})
		write("stress."+format, func(w io.Writer) error {
			return Spectrum(w, format, "stress: dense clusters, a hydride, long labels",
				stressH(), stressC())
		})
	}
}

// stressH has a dozen aromatic lines within half a ppm and a hydride far below 0 ppm.
func stressH() []Line {
	lines := []Line{{Shift: -12.4, Intensity: 1, Label: "Ir–H"}}
	for i := range 12 {
		lines = append(lines, Line{
			Shift: 7.0 + 0.04*float64(i), Intensity: float64(1 + i%3),
			Label: fmt.Sprintf("ArH (H%d)", i+10),
		})
	}
	return lines
}

// stressC has a carbonyl beyond 220 ppm and close aromatic carbons.
func stressC() []Line {
	lines := []Line{
		{Shift: 231.5, Intensity: 1, Label: "C=O (C1)"},
		{Shift: 0.5, Intensity: 3, Label: "Si(CH3)3 (C20-C22)"},
	}
	for i := range 6 {
		lines = append(lines, Line{
			Shift: 128 + 0.3*float64(i), Intensity: 2, Label: fmt.Sprintf("C%d", i+2),
		})
	}
	return lines
}
