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
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Line is one peak of a stick spectrum.
type Line struct {
	Shift     float64 // ppm
	Intensity float64 // relative height, e.g. number of equivalent nuclei
	Label     string  // atom group label, e.g. "CH3 (H6-H8)"
}

// nucleus holds what differs between the 1H and the 13C panel.
type nucleus struct {
	name   string  // for error messages
	axis   string  // x axis label
	lo, hi float64 // the ppm window shown even when the lines use less of it
	round  float64 // a widened window ends on a multiple of this
	color  color.Color
}

var (
	proton = nucleus{
		name: "1H", axis: "¹H chemical shift δ (ppm)",
		lo: 0, hi: 10, round: 1,
		color: color.RGBA{0x00, 0x4c, 0x99, 0xff},
	}
	carbon = nucleus{
		name: "13C", axis: "¹³C chemical shift δ (ppm)",
		lo: 0, hi: 220, round: 10,
		color: color.RGBA{0x99, 0x26, 0x00, 0xff},
	}
)

// Spectrum draws the predicted stick spectra: a 1H panel above a 13C panel in one image,
// skipping a panel whose slice is empty (it is an error if both are). The ppm axis runs
// from high on the left to low on the right, as chemists read spectra, over at least the
// usual window (1H 0–10 ppm, 13C 0–220 ppm) so that spectra of different molecules compare
// at a glance; the window widens to take in any line outside it. Intensities are
// normalised per panel so the tallest stick is 1 (a panel whose intensities are all zero
// gets equal sticks rather than none); the sticks are then drawn as tall as the labels
// above them leave room for. Each stick carries its Label above it; where labels would
// collide they are stacked upwards instead. An empty title draws none.
// format is "png" or "svg".
func Spectrum(w io.Writer, format string, title string, h, c []Line) error {
	cv, err := newCanvas(format, spectrumWidth, spectrumHeight)
	if err != nil {
		return fmt.Errorf("spectrum: %w", err)
	}
	if len(h) == 0 && len(c) == 0 {
		return errors.New("spectrum: no 1H or 13C lines")
	}
	var plots [][]*plot.Plot
	for _, panel := range []struct {
		nuc   nucleus
		lines []Line
	}{{proton, h}, {carbon, c}} {
		if len(panel.lines) == 0 {
			continue
		}
		p, err := spectrumPanel(panel.nuc, panel.lines)
		if err != nil {
			return fmt.Errorf("spectrum: %w", err)
		}
		plots = append(plots, []*plot.Plot{p})
	}

	dc := draw.New(cv)
	heading(&dc, title, "")
	tiles := draw.Tiles{
		Rows: len(plots), Cols: 1,
		PadY:    vg.Points(14),
		PadLeft: vg.Points(10), PadRight: vg.Points(14),
		PadTop: vg.Points(6), PadBottom: vg.Points(6),
	}
	for i, row := range plot.Align(plots, tiles, dc) {
		plots[i][0].Draw(row[0])
	}
	return writeCanvas(w, cv, "spectrum")
}

// spectrumPanel checks lines and returns the plot of one nucleus.
func spectrumPanel(nuc nucleus, lines []Line) (*plot.Plot, error) {
	var top float64
	for i, l := range lines {
		if err := finite("shift", l.Shift); err != nil {
			return nil, fmt.Errorf("%s line %d (%q): %w", nuc.name, i, l.Label, err)
		}
		if err := finite("intensity", l.Intensity); err != nil {
			return nil, fmt.Errorf("%s line %d (%q): %w", nuc.name, i, l.Label, err)
		}
		if l.Intensity < 0 {
			return nil, fmt.Errorf("%s line %d (%q): intensity %v is negative",
				nuc.name, i, l.Label, l.Intensity)
		}
		top = max(top, l.Intensity)
	}
	st := &sticks{color: nuc.color, lines: make([]Line, len(lines))}
	for i, l := range lines {
		l.Intensity = 1
		if top > 0 {
			l.Intensity = lines[i].Intensity / top
		}
		st.lines[i] = l
	}

	p := newPlot()
	p.X.Label.Text = nuc.axis
	// gonum keeps Min < Max and mirrors the mapping, so ticks and data both come out
	// high-on-the-left without negating any value.
	p.X.Scale = plot.InvertedScale{Normalizer: plot.LinearScale{}}
	p.X.Tick.Marker = niceTicks{N: 12}
	p.X.Padding = 0 // sticks stand on the axis line, which serves as the baseline
	p.X.Min, p.X.Max = shiftWindow(nuc, lines)
	// Intensities are relative: a y axis would only add clutter.
	p.HideY()
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(st)
	return p, nil
}

// shiftWindow returns the ppm range of a panel: the nucleus's usual window, or, if some
// line falls outside it, widened to take that line in with a little margin and to end
// on a multiple of nuc.round. A line exactly on the edge, such as TMS at 0 ppm, does not
// widen the window.
func shiftWindow(nuc nucleus, lines []Line) (lo, hi float64) {
	margin := 0.02 * (nuc.hi - nuc.lo)
	lo, hi = nuc.lo, nuc.hi
	for _, l := range lines {
		if l.Shift < lo {
			lo = math.Floor((l.Shift-margin)/nuc.round) * nuc.round
		}
		if l.Shift > hi {
			hi = math.Ceil((l.Shift+margin)/nuc.round) * nuc.round
		}
	}
	return lo, hi
}

// sticks draws the lines of one panel with their labels. It scales heights itself
// rather than through the plot's y axis, because the room left for labels above the
// sticks depends on how many rows of labels collisions force, known only at draw time.
type sticks struct {
	lines []Line // intensities normalised to a maximum of 1
	color color.Color
}

// Label geometry.
var (
	stickWidth = vg.Points(1.5)
	labelGap   = vg.Points(2) // between a stick top and its label, and between labels
	labelPad   = vg.Points(3) // horizontal clearance between labels
)

// Label sizes tried in turn: a crowded panel first gives up stick height, down to
// minStickFrac of the panel, then label size, before its labels may run off the top.
var labelSizes = []vg.Length{8, 7, 6}

const (
	maxStickFrac = 0.85 // of the panel height, for the tallest stick
	minStickFrac = 0.15
)

// Plot implements plot.Plotter.
func (s *sticks) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	xs := make([]vg.Length, len(s.lines))
	for i, l := range s.lines {
		xs[i] = trX(l.Shift)
	}
	sty := p.X.Tick.Label
	sty.Color = color.Gray{Y: 0x20}
	sty.XAlign = draw.XLeft
	sty.YAlign = draw.YBottom

	var (
		scale vg.Length
		boxes []vg.Rectangle
	)
	for _, size := range labelSizes {
		sty.Font = sans(size)
		var fits bool
		scale, boxes, fits = s.layout(c, xs, sty)
		if fits {
			break
		}
	}

	line := draw.LineStyle{Color: s.color, Width: stickWidth}
	for i, l := range s.lines {
		top := c.Min.Y + scale*vg.Length(l.Intensity)
		c.StrokeLine2(line, xs[i], c.Min.Y, xs[i], top)
	}
	for i, l := range s.lines {
		if l.Label != "" {
			c.FillText(sty, boxes[i].Min, l.Label)
		}
	}
}

// layout returns the height of a stick of intensity 1 and the label boxes for labels in
// style sty, and whether the labels fit below the top of c. It starts with the tallest
// stick at maxStickFrac of the panel and lowers the sticks by the overflow of the highest
// label; as lowering sticks may also unstack labels, it repeats that a few times.
func (s *sticks) layout(c draw.Canvas, xs []vg.Length, sty text.Style) (
	scale vg.Length, boxes []vg.Rectangle, fits bool) {
	widths := make([]vg.Length, len(s.lines))
	for i, l := range s.lines {
		widths[i] = sty.Width(l.Label)
	}
	textH := sty.Height("Hg")
	room := c.Max.Y - c.Min.Y
	scale = maxStickFrac * room
	tops := make([]vg.Length, len(s.lines))
	for range 20 {
		for i, l := range s.lines {
			tops[i] = c.Min.Y + scale*vg.Length(l.Intensity)
		}
		boxes = placeLabels(xs, tops, widths, textH, c.Min.X, c.Max.X)
		over := highest(boxes) - c.Max.Y
		if over <= 0 {
			return scale, boxes, true
		}
		if scale <= minStickFrac*room {
			break
		}
		scale = max(scale-over, minStickFrac*room)
	}
	return scale, boxes, false
}

// highest returns the top edge of the highest box.
func highest(boxes []vg.Rectangle) vg.Length {
	top := vg.Length(math.Inf(-1))
	for _, b := range boxes {
		top = max(top, b.Max.Y)
	}
	return top
}

// placeLabels returns, for each stick at xs[i] reaching tops[i], the box of its label of
// width widths[i] and height textH: centred over the stick (kept between left and right)
// and just above its top, or, if that spot is taken by an earlier label or crosses
// another stick, raised until it is clear. Labels are placed tallest stick first, so the
// strong lines keep their labels closest and the weak neighbours' labels stack above.
// A label that is empty gets a zero-width box, which never collides.
func placeLabels(xs, tops, widths []vg.Length, textH, left, right vg.Length) []vg.Rectangle {
	order := make([]int, len(xs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(tops[b], tops[a]), cmp.Compare(xs[a], xs[b]))
	})

	// Obstacles: every stick, and each label once placed.
	var obstacles []vg.Rectangle
	for i := range xs {
		obstacles = append(obstacles, vg.Rectangle{
			Min: vg.Point{X: xs[i] - stickWidth/2, Y: vg.Length(math.Inf(-1))},
			Max: vg.Point{X: xs[i] + stickWidth/2, Y: tops[i]},
		})
	}
	boxes := make([]vg.Rectangle, len(xs))
	for _, i := range order {
		if widths[i] == 0 {
			at := vg.Point{X: xs[i], Y: tops[i]}
			boxes[i] = vg.Rectangle{Min: at, Max: at}
			continue
		}
		x0 := xs[i] - widths[i]/2
		x0 = max(min(x0, right-widths[i]), left)
		b := vg.Rectangle{
			Min: vg.Point{X: x0, Y: tops[i] + labelGap},
			Max: vg.Point{X: x0 + widths[i], Y: tops[i] + labelGap + textH},
		}
		// Each step lifts b above one obstacle it overlaps, and b never comes down again,
		// so this ends after at most len(obstacles) steps.
		for moved := true; moved; {
			moved = false
			for j, o := range obstacles {
				if j == i || !overlaps(b, o) {
					continue
				}
				d := o.Max.Y + labelGap - b.Min.Y
				b.Min.Y += d
				b.Max.Y += d
				moved = true
			}
		}
		boxes[i] = b
		obstacles = append(obstacles, b)
	}
	return boxes
}

// overlaps reports whether a and b intersect, counting labelPad of horizontal clearance.
func overlaps(a, b vg.Rectangle) bool {
	return a.Min.X < b.Max.X+labelPad && b.Min.X < a.Max.X+labelPad &&
		a.Min.Y < b.Max.Y && b.Min.Y < a.Max.Y
}
