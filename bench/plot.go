package bench

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
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
