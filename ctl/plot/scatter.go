package plot

import (
	"cmp"
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Point is one calculated-vs-experimental comparison.
type Point struct {
	Experimental, Calculated float64
	Label                    string // e.g. "ethanol CH2"
	Series                   string // legend group, e.g. "TMS", "scaled", "C–Cl", "exchangeable"
}

// Axis labels of the scatter plot.
const (
	labelExperimental = "δ experimental (ppm)"
	labelCalculated   = "δ calculated (ppm)"
)

// Marker colours and shapes, cycled per series. The colours are the Okabe–Ito palette
// (distinguishable with the common colour-vision deficiencies) without its yellow, which
// vanishes on white; the shapes differ too, so series survive greyscale printing.
var (
	seriesColors = []color.Color{
		color.RGBA{0x00, 0x72, 0xb2, 0xff}, // blue
		color.RGBA{0xd5, 0x5e, 0x00, 0xff}, // vermillion
		color.RGBA{0x00, 0x9e, 0x73, 0xff}, // bluish green
		color.RGBA{0xcc, 0x79, 0xa7, 0xff}, // reddish purple
		color.RGBA{0xe6, 0x9f, 0x00, 0xff}, // orange
		color.RGBA{0x56, 0xb4, 0xe9, 0xff}, // sky blue
		color.Black,
	}
	seriesShapes = []draw.GlyphDrawer{
		draw.CircleGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}, draw.CrossGlyph{},
		draw.RingGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.PlusGlyph{},
	}
)

// maxOutlierLabels bounds how many points Scatter names: enough to say which groups
// miss worst, few enough not to bury the plot in text.
const maxOutlierLabels = 3

// Scatter draws calculated (y) against experimental (x) shifts for one nucleus: one marker
// style per Series with a legend, the y = x line across the data range, axis labels
// "δ experimental (ppm)" / "δ calculated (ppm)", the title, and (if non-empty) a note line
// such as "MAE 0.12 ppm, n = 40" under the title, where it can never hide a point. Title
// and note are wrapped at spaces if wider than the image.
// The few points that miss by more than twice the mean absolute error are named with
// their Label, so a reader sees at once which groups are the problem.
//
// Both axes share one range, so distance from the diagonal reads the same in x and y.
// format is "png" or "svg".
func Scatter(w io.Writer, format string, title, note string, pts []Point) error {
	c, err := newCanvas(format, scatterWidth, scatterHeight)
	if err != nil {
		return fmt.Errorf("scatter: %w", err)
	}
	if len(pts) == 0 {
		return errors.New("scatter: no points")
	}
	for i, pt := range pts {
		if err := finite("experimental shift", pt.Experimental); err != nil {
			return fmt.Errorf("scatter: point %d (%q): %w", i, pt.Label, err)
		}
		if err := finite("calculated shift", pt.Calculated); err != nil {
			return fmt.Errorf("scatter: point %d (%q): %w", i, pt.Label, err)
		}
	}

	p := newPlot()
	p.X.Label.Text = labelExperimental
	p.Y.Label.Text = labelCalculated
	p.X.Tick.Marker = niceTicks{N: 7}
	p.Y.Tick.Marker = niceTicks{N: 7}
	lo, hi := scatterRange(pts)
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = lo, hi, lo, hi

	grid := plotter.NewGrid()
	grid.Vertical.Color = color.Gray{Y: 0xe4}
	grid.Horizontal.Color = color.Gray{Y: 0xe4}
	p.Add(grid)

	diag, err := plotter.NewLine(plotter.XYs{{X: lo, Y: lo}, {X: hi, Y: hi}})
	if err != nil {
		return fmt.Errorf("scatter: y = x line: %w", err)
	}
	diag.Color = color.Gray{Y: 0x80}
	diag.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	diag.Width = vg.Points(1)
	p.Add(diag)

	// A legend is drawn only when some series is named: one anonymous series needs none.
	groups := groupSeries(pts)
	legend := slices.ContainsFunc(groups, func(g series) bool { return g.name != "" })
	for i, g := range groups {
		s, err := plotter.NewScatter(g.xys)
		if err != nil {
			return fmt.Errorf("scatter: series %q: %w", g.name, err)
		}
		s.Color = seriesColors[i%len(seriesColors)]
		s.Shape = seriesShapes[i%len(seriesShapes)]
		s.Radius = vg.Points(3)
		p.Add(s)
		if legend {
			p.Legend.Add(cmp.Or(g.name, "other"), s)
		}
	}
	if legend {
		p.Legend.Add("y = x", diag)
	}
	// Bottom right is a corner the diagonal leaves empty; keep clear of the axes.
	p.Legend.XOffs = -vg.Points(6)
	p.Legend.YOffs = vg.Points(10)
	p.Legend.ThumbnailWidth = vg.Points(18)

	p.Add(&outlierLabels{pts: outliers(pts)})

	// gonum draws to the very edge of the canvas; a margin keeps the last tick label off it.
	margin := vg.Points(8)
	dc := draw.New(c)
	heading(&dc, title, note)
	p.Draw(draw.Crop(dc, margin, -margin, margin, 0))
	return writeCanvas(w, c, "scatter")
}

// scatterRange returns the common axis range: every value, padded by 5 % so markers at the
// extremes are not cut by the axes.
func scatterRange(pts []Point) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, pt := range pts {
		lo = min(lo, pt.Experimental, pt.Calculated)
		hi = max(hi, pt.Experimental, pt.Calculated)
	}
	pad := 0.05 * (hi - lo)
	if pad == 0 {
		pad = 1 // a single value: show a 2 ppm window around it
	}
	return lo - pad, hi + pad
}

// series is the points of one legend group.
type series struct {
	name string
	xys  plotter.XYs
}

// groupSeries splits pts by Series, in order of first appearance, so the caller's order
// decides colours and legend order.
func groupSeries(pts []Point) []series {
	var groups []series
	index := map[string]int{}
	for _, pt := range pts {
		i, ok := index[pt.Series]
		if !ok {
			i = len(groups)
			index[pt.Series] = i
			groups = append(groups, series{name: pt.Series})
		}
		groups[i].xys = append(groups[i].xys, plotter.XY{X: pt.Experimental, Y: pt.Calculated})
	}
	return groups
}

// outliers returns the labelled points, worst first, whose error exceeds twice the mean
// absolute error, at most maxOutlierLabels of them.
func outliers(pts []Point) []Point {
	var mae float64
	for _, pt := range pts {
		mae += math.Abs(pt.Calculated - pt.Experimental)
	}
	mae /= float64(len(pts))
	var out []Point
	for _, pt := range pts {
		if pt.Label != "" && math.Abs(pt.Calculated-pt.Experimental) > 2*mae {
			out = append(out, pt)
		}
	}
	slices.SortStableFunc(out, func(a, b Point) int {
		return cmp.Compare(math.Abs(b.Calculated-b.Experimental),
			math.Abs(a.Calculated-a.Experimental))
	})
	return out[:min(len(out), maxOutlierLabels)]
}

// outlierLabels writes each point's Label beside its marker, on the side away from the
// diagonal, where the other points are, unless the text would run off the data area.
type outlierLabels struct {
	pts []Point
}

// Plot implements plot.Plotter.
func (o *outlierLabels) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	sty := p.Legend.TextStyle
	sty.Font = sans(8)
	sty.Color = color.Gray{Y: 0x30}
	sty.YAlign = draw.YCenter
	gap := vg.Points(5)
	for _, pt := range o.pts {
		x, y := trX(pt.Experimental), trY(pt.Calculated)
		w := sty.Width(pt.Label)
		left := pt.Calculated > pt.Experimental // above the diagonal: write to its left
		if left && x-gap-w < c.Min.X || !left && x+gap+w > c.Max.X {
			left = !left
		}
		if left {
			sty.XAlign = draw.XRight
			x -= gap
		} else {
			sty.XAlign = draw.XLeft
			x += gap
		}
		c.FillText(sty, vg.Point{X: x, Y: y}, pt.Label)
	}
}
