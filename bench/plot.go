package bench

import (
	"cmp"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// PlotFormat is the image format PlotSummary writes for path, from its
// extension: "svg" or "png"; any other extension is an error.
func PlotFormat(path string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".svg", ".png":
		return ext[1:], nil
	default:
		return "", fmt.Errorf("plot file %q: unknown image format %q (valid: .svg, .png)", path, ext)
	}
}

// PlotSummary draws a bar chart of metric to path (.svg or .png): one bar
// per group, labelled with its key joined by "/" (the columns by name the
// x axis), as high as the group's median, with error bars spanning the
// 95% interval of the median. Groups without a value of metric are left
// out. The file is written whole or not at all: the image goes to a
// temporary file in the same directory, renamed over path once complete.
func PlotSummary(path, metric string, by []string, groups []GroupSummary, title string) error {
	format, err := PlotFormat(path)
	if err != nil {
		return err
	}
	var (
		names []string
		bars  plotter.Values
		errs  medianErrors
	)
	for i := range groups {
		s, ok := groups[i].Metric(metric)
		if !ok {
			return fmt.Errorf("plot: metric %q was not summarized", metric)
		}
		if s.N == 0 {
			continue
		}
		names = append(names, groups[i].Label())
		bars = append(bars, s.Median)
		errs = append(errs, s)
	}
	if len(bars) == 0 {
		return fmt.Errorf("plot: no group has a value of %s", metric)
	}

	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = strings.Join(by, "/")
	p.Y.Label.Text = metric + " (median, 95% CI)"
	p.Y.Min = 0
	width := max(6*vg.Inch, vg.Length(len(names))*0.6*vg.Inch)
	chart, err := plotter.NewBarChart(bars, min(vg.Points(40), width/vg.Length(2*len(names))))
	if err != nil {
		return err
	}
	chart.LineStyle.Width = 0
	chart.Color = color.RGBA{R: 0x4c, G: 0x72, B: 0xb0, A: 0xff}
	ebars, err := plotter.NewYErrorBars(errs)
	if err != nil {
		return err
	}
	ebars.LineStyle.Width = vg.Points(1)
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil // the x axis is nominal
	p.Add(grid, chart, ebars)
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(len(names))-0.5
	// Slant the labels when they would run into each other.
	chars := 0
	for _, n := range names {
		chars += len(n)
	}
	if vg.Length(chars)*p.X.Tick.Label.Font.Size*0.6 > width*0.8 {
		p.X.Tick.Label.Rotation = math.Pi / 6
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YCenter
	}
	wt, err := p.WriterTo(width, 4*vg.Inch, format)
	if err != nil {
		return err
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	done := false
	defer func() {
		if !done { // a failed write leaves nothing behind
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := wt.WriteTo(tmp); err != nil {
		return fmt.Errorf("plot: writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("plot: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	done = true
	return nil
}

// medianErrors places each summary's error bar at its bar (x = index,
// y = median), from the median down to CILow and up to CIHigh.
type medianErrors []Summary

func (m medianErrors) Len() int                { return len(m) }
func (m medianErrors) XY(i int) (x, y float64) { return float64(i), m[i].Median }
func (m medianErrors) YError(i int) (lo, hi float64) {
	return m[i].Median - m[i].CILow, m[i].CIHigh - m[i].Median
}

// PlotLines draws metric against the numeric column x to path (.svg or
// .png): one line per value of the other grouping columns (groups are
// summarized by by and then x, x last), through each group's median, with
// error bars for the 95% interval of the median. The x axis is logarithmic
// when x spans more than a factor of ten. Written whole or not at all.
func PlotLines(path, metric, x string, by []string, groups []GroupSummary, title string) error {
	format, err := PlotFormat(path)
	if err != nil {
		return err
	}
	type point struct {
		x float64
		s Summary
	}
	lines := map[string][]point{}
	var names []string
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := range groups {
		g := &groups[i]
		s, ok := g.Metric(metric)
		if !ok {
			return fmt.Errorf("plot: metric %q was not summarized", metric)
		}
		if s.N == 0 {
			continue
		}
		xv, err := strconv.ParseFloat(g.Key[len(g.Key)-1], 64)
		if err != nil {
			return fmt.Errorf("plot: %s %q is not a number", x, g.Key[len(g.Key)-1])
		}
		name := strings.Join(g.Key[:len(g.Key)-1], "/")
		if _, ok := lines[name]; !ok {
			names = append(names, name)
		}
		lines[name] = append(lines[name], point{xv, s})
		lo, hi = min(lo, xv), max(hi, xv)
	}
	if len(names) == 0 {
		return fmt.Errorf("plot: no group has a value of %s", metric)
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = metric + " (median, 95% CI)"
	if lo > 0 && hi > 10*lo {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	for i, name := range names {
		pts := lines[name]
		slices.SortFunc(pts, func(a, b point) int { return cmp.Compare(a.x, b.x) })
		xys := make(plotter.XYs, len(pts))
		errs := make(lineErrors, len(pts))
		for j, pt := range pts {
			xys[j] = plotter.XY{X: pt.x, Y: pt.s.Median}
			errs[j] = xyErr{pt.x, pt.s}
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return err
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i / 7)
		sc.Color, sc.Shape = plotutil.Color(i), plotutil.Shape(i)
		eb, err := plotter.NewYErrorBars(errs)
		if err != nil {
			return err
		}
		eb.Color = plotutil.Color(i)
		p.Add(l, sc, eb)
		p.Legend.Add(name, l, sc)
	}
	wt, err := p.WriterTo(8*vg.Inch, 5*vg.Inch, format)
	if err != nil {
		return err
	}
	return AtomicWrite(path, func(w io.Writer) error { _, err := wt.WriteTo(w); return err })
}

// xyErr is one point of a line with its median's interval.
type xyErr struct {
	x float64
	s Summary
}

// lineErrors places error bars at the points of a line.
type lineErrors []xyErr

func (l lineErrors) Len() int                { return len(l) }
func (l lineErrors) XY(i int) (x, y float64) { return l[i].x, l[i].s.Median }
func (l lineErrors) YError(i int) (lo, hi float64) {
	return l[i].s.Median - l[i].s.CILow, l[i].s.CIHigh - l[i].s.Median
}
