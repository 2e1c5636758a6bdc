package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"

	"github.com/olekukonko/tablewriter"

	"github.com/mmubench/mmubench/bench"
	"github.com/mmubench/mmubench/mmu"
)

// calibrationHeader is the CSV of `mmubench calibrate --format csv`.
var calibrationHeader = []string{"benchmark", "comparison", "published_pct", "model_pct", "diff_pp"}

// cmdCalibrate is `mmubench calibrate`: the published measurements of the
// patch threads next to what the model gives for them, with one cost table.
func cmdCalibrate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("calibrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "table", "output format: table, csv, json")
	seeds := fs.Int("seeds", 5, "seeds of each unixbench-shell1 configuration (the median is compared)")
	jobs := fs.Int("jobs", 0, "runs at once (0: one per host core)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	runs := fs.String("runs", "", "also write every run's result row (CSV with configurations) to this file")
	shellMem := fs.Float64("shell1-mem", bench.Shell1MemMiB, "memory of the unixbench-shell1 runs in MiB (how hard reclaim works; results/calibration.md shows the figures across a range)")
	costFile := fs.String("cost", "", "a cost table (JSON, the fields of mmu.CostModel; missing fields keep the default) to calibrate instead of the built-in one")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	switch {
	case *format != "table" && *format != "csv" && *format != "json":
		return usageError{fmt.Errorf("--format %q: want table, csv or json", *format)}
	case *seeds < 1:
		return usageError{fmt.Errorf("--seeds %d: must be at least 1", *seeds)}
	case *jobs < 0:
		return usageError{fmt.Errorf("--jobs %d: must be >= 0", *jobs)}
	case !(*shellMem >= 1 && *shellMem <= 64<<10): // NaN too
		return usageError{fmt.Errorf("--shell1-mem %g: must be 1..65536 MiB", *shellMem)}
	}
	opt := bench.CalibrateOptions{Seeds: *seeds, Jobs: *jobs, Shell1MemMiB: *shellMem}
	if *costFile != "" {
		cost, err := readCost(*costFile)
		if err != nil {
			return usageError{err}
		}
		opt.Cost = &cost
	}
	if !*quiet {
		bar := newProgress(stderr, "calibrate", len(bench.CalibrationConfigs(opt)))
		opt.Progress = func(n, _ int) { _ = bar.Set(n) }
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rows, results, err := bench.Calibrate(ctx, opt)
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted")
	}
	if err != nil {
		return err
	}
	if *runs != "" {
		if err := bench.AtomicWrite(*runs, func(w io.Writer) error {
			out, err := bench.NewWriter(w, "csv")
			if err != nil {
				return err
			}
			for _, r := range results {
				if err := out.Write(r); err != nil {
					return err
				}
			}
			return out.Close()
		}); err != nil {
			return err
		}
	}
	return writeCalibration(stdout, *format, rows)
}

// readCost reads a cost table over the default one: fields the file does
// not name keep their default; unknown fields are errors.
func readCost(path string) (mmu.CostModel, error) {
	cost := mmu.DefaultCost()
	f, err := os.Open(path)
	if err != nil {
		return cost, err
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cost); err != nil {
		return cost, fmt.Errorf("%s: %w", path, err)
	}
	return cost, nil
}

func writeCalibration(w io.Writer, format string, rows []bench.CalibrationRow) error {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	switch format {
	case "json":
		type row struct {
			bench.CalibrationRow
			Diff   float64 `json:"diff_pp"`
			Within bool    `json:"within_target"`
		}
		enc := json.NewEncoder(w)
		for _, r := range rows {
			if err := enc.Encode(row{r, r.Diff(), r.Within()}); err != nil {
				return err
			}
		}
		return nil
	case "csv":
		cw := csv.NewWriter(w)
		if err := cw.Write(calibrationHeader); err != nil {
			return err
		}
		for _, r := range rows {
			if err := cw.Write([]string{r.Benchmark, r.Comparison, f(r.Pct), f(r.Model), f(r.Diff())}); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tablewriter.NewWriter(w)
	tw.Header([]string{"benchmark", "comparison", "published %", "model %", "diff pp", "target", "single seeds"})
	for _, r := range rows {
		ok := "ok"
		if !r.Within() {
			ok = "MISSED"
		}
		spread := strconv.Itoa(r.Seeds)
		if r.Seeds > 1 {
			spread += ": " + f(r.SeedLow) + " … " + f(r.SeedHigh)
		}
		if err := tw.Append([]string{r.Benchmark, r.Comparison, f(r.Pct), f(r.Model), f(r.Diff()), fmt.Sprintf("±%g %s", r.Target, ok), spread}); err != nil {
			return err
		}
	}
	return tw.Render()
}
