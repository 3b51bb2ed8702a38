// Package plot renders qmd's NMR figures: calculated-against-experimental scatter plots
// for validation reports and predicted stick spectra for a job's result. It wraps gonum
// plot so that callers pick only a file format and hand over data; every size, font and
// style decision lives here so all of qmd's figures look alike.
//
// Text uses the Liberation fonts compiled into gonum plot, so rendering never depends on
// the fonts installed on the machine (a daemon on a compute node may have none).
package plot

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Formats written by Scatter and Spectrum.
const (
	PNG = "png"
	SVG = "svg"
)

// DPI is the resolution of PNG output: enough for a report page or a slide without the
// files growing large. SVG output is resolution-free.
const DPI = 150

// Figure sizes. The scatter is square so that the y = x diagonal sits at 45°.
const (
	scatterWidth   = 15 * vg.Centimeter
	scatterHeight  = 15 * vg.Centimeter
	spectrumWidth  = 24 * vg.Centimeter
	spectrumHeight = 16 * vg.Centimeter
)

// FormatOf returns the format ("png" or "svg") implied by path's extension, ignoring case,
// so a command line can take just an output file name.
func FormatOf(path string) (string, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".png":
		return PNG, nil
	case ".svg":
		return SVG, nil
	}
	return "", fmt.Errorf("plot file %q: unknown format, want a .png or .svg extension", path)
}

// canvas is a drawing surface that can write itself out in its format.
type canvas interface {
	vg.CanvasSizer
	io.WriterTo
}

// newCanvas returns an empty canvas of the given size. It rejects formats other than
// PNG and SVG rather than passing them to gonum, which would accept PDF, EPS, ... that
// qmd neither tests nor promises.
func newCanvas(format string, w, h vg.Length) (canvas, error) {
	switch format {
	case PNG:
		return vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(DPI))}, nil
	case SVG:
		// Fonts are named, not embedded: embedding adds about 550 kB to a 10 kB file. A
		// viewer without Liberation Sans substitutes its own default font, which shifts
		// text widths a little but keeps the figure readable.
		return vgsvg.New(w, h), nil
	}
	return nil, fmt.Errorf("unknown plot format %q, want %q or %q", format, PNG, SVG)
}

// writeCanvas writes c to w, naming what was being written in the error.
func writeCanvas(w io.Writer, c io.WriterTo, what string) error {
	if _, err := c.WriteTo(w); err != nil {
		return fmt.Errorf("write %s: %w", what, err)
	}
	return nil
}

// sans returns the sans-serif Liberation face at size points. gonum's default is the serif
// face; sans reads better at the small sizes used for tick and peak labels.
func sans(size vg.Length) font.Font {
	return font.From(font.Font{Typeface: "Liberation", Variant: "Sans"}, size)
}

// newPlot returns a gonum plot with qmd's fonts. It sets the plot's text styles rather
// than gonum's package-level DefaultFont, which would affect other users of gonum plot in
// the same program. Titles are drawn by heading, not by gonum.
func newPlot() *plot.Plot {
	p := plot.New()
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = sans(11)
		a.Tick.Label.Font = sans(9)
	}
	p.Legend.TextStyle.Font = sans(9)
	return p
}

// finite reports an error naming what if v is NaN or infinite; such a value would
// silently vanish from the plot or stretch an axis to infinity.
func finite(what string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%s is %v", what, v)
	}
	return nil
}

// niceTicks places major ticks every 1, 2 or 5 × 10ⁿ units, aiming at about N of them,
// with unlabelled minor ticks in between. gonum's DefaultTicks aims at only three or four
// labels, too few to read a shift off a 24 cm wide spectrum.
type niceTicks struct {
	N int
}

// Ticks implements plot.Ticker.
func (t niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || t.N < 1 {
		return nil
	}
	step, minorPer := niceStep((hi - lo) / float64(t.N))
	prec := 0
	if step < 1 {
		prec = int(math.Ceil(-math.Log10(step) - 1e-9))
	}
	minor := step / float64(minorPer)
	var ticks []plot.Tick
	// Counting in minor steps from an integer keeps values exact (no 0.30000000000000004).
	first := math.Ceil(lo/minor - 1e-9)
	last := math.Floor(hi/minor + 1e-9)
	for i := first; i <= last; i++ {
		v := i * minor
		tk := plot.Tick{Value: v}
		if math.Mod(i, float64(minorPer)) == 0 {
			tk.Label = strconv.FormatFloat(v+0, 'f', prec, 64) // +0 turns -0 into 0
		}
		ticks = append(ticks, tk)
	}
	return ticks
}

// niceStep returns the smallest step of the form 1, 2 or 5 × 10ⁿ that is at least raw,
// and how many minor intervals divide it.
func niceStep(raw float64) (step float64, minorPer int) {
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []struct {
		mult  float64
		minor int
	}{{1, 2}, {2, 2}, {5, 5}, {10, 2}} {
		if m.mult*mag >= raw*(1-1e-9) {
			return m.mult * mag, m.minor
		}
	}
	return 10 * mag, 2
}

// heading fills c white, draws the title and, under it in smaller grey type, the note,
// each centred and wrapped to c's width, and shrinks c to the space left below. qmd draws
// titles itself because gonum's plot title is a single line in a single style, and a
// figure of two panels has no plot to hang a title on.
func heading(c *draw.Canvas, title, note string) {
	c.SetColor(color.White) // an SVG starts transparent; a PNG canvas is white already
	c.Fill(c.Rectangle.Path())
	top := c.Max.Y - vg.Points(6)
	width := c.Max.X - c.Min.X - vg.Points(12)
	for _, h := range []struct {
		text  string
		size  vg.Length
		color color.Color
	}{{title, 13, color.Black}, {note, 10, color.Gray{Y: 0x40}}} {
		if h.text == "" {
			continue
		}
		sty := text.Style{
			Color:   h.color,
			Font:    sans(h.size),
			XAlign:  draw.XCenter,
			YAlign:  draw.YTop,
			Handler: plot.DefaultTextHandler,
		}
		txt := wrap(sty, h.text, width)
		c.FillText(sty, vg.Point{X: c.Center().X, Y: top}, txt)
		top -= sty.Height(txt) + vg.Points(3)
	}
	c.Max.Y = top - vg.Points(2)
}

// wrap breaks s at spaces into lines no wider than width where it can (a single word
// wider than width stays whole), keeping the line breaks already in s. gonum draws text
// on one line however long, so a long title would otherwise run off the image.
func wrap(sty text.Style, s string, width vg.Length) string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			if line != "" && sty.Width(line+" "+word) > width {
				out = append(out, line)
				line = word
				continue
			}
			line = strings.TrimPrefix(line+" "+word, " ")
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}
