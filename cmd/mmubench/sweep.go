package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/mmubench/mmubench/bench"
)

// cmdSweep is `mmubench sweep`: many runs, in parallel across host cores,
// each row appended to FILE.partial as it finishes; FILE appears, whole,
// when the sweep is complete. With no axes it runs the built-in
// patch-discussion sweep.
func cmdSweep(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sweep", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "sweep file (JSON) with the axes; default: the flags below, or the built-in sweep")
	out := fs.String("out", "sweep.csv", "CSV to write")
	resume := fs.Bool("resume", false, "continue an interrupted sweep from OUT.partial (or extend OUT)")
	jobs := fs.Int("jobs", 0, "points run at once (0: one per host core)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	repro := fs.Bool("reproducible", false, "write wall_ns as 0 and the version without VCS revision (det-mode reports that regenerate bit for bit)")
	wl := fs.String("workloads", "", "comma-separated workloads")
	pols := fs.String("policies", "", "comma-separated batched-unmap policies")
	nested := fs.String("nested", "", "comma-separated nested policies")
	cpus := fs.String("cpus", "", "comma-separated CPU counts")
	geoms := fs.String("geometries", "", "comma-separated TLB geometries L1:L2:WALKCACHE, e.g. 48x48:1280x5:64x4,16x16:1024x4:off")
	seeds := fs.Int("seeds", 0, "seeds per point")
	first := fs.Uint64("seed", 1, "first seed")
	schedName := fs.String("sched", "det", "scheduler: det or parallel")
	rounds := fs.Int("rounds", 0, "workload length (0: each workload's default)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *jobs < 0 {
		return usageError{fmt.Errorf("--jobs %d: must be >= 0", *jobs)}
	}
	var sw *bench.Sweep
	switch {
	case *file != "":
		f, err := os.Open(*file)
		if err != nil {
			return usageError{err}
		}
		sw, err = bench.LoadSweep(f)
		f.Close()
		if err != nil {
			return usageError{fmt.Errorf("%s: %w", *file, err)}
		}
	case *wl != "":
		g := bench.Group{Workloads: split(*wl), Policies: split(*pols), Nested: split(*nested), Rounds: *rounds}
		for _, c := range split(*cpus) {
			n, err := strconv.Atoi(c)
			if err != nil {
				return usageError{fmt.Errorf("--cpus: %q is not a number", c)}
			}
			g.CPUs = append(g.CPUs, n)
		}
		for _, s := range split(*geoms) {
			parts := strings.Split(s, ":")
			if len(parts) != 3 {
				return usageError{fmt.Errorf("--geometries: %q: want L1:L2:WALKCACHE", s)}
			}
			g.Geometries = append(g.Geometries, bench.Geometry{L1: parts[0], L2: parts[1], WalkCache: parts[2]})
		}
		sw = &bench.Sweep{Sched: *schedName, Seeds: *seeds, FirstSeed: *first, Groups: []bench.Group{g}}
	case *pols != "" || *nested != "" || *cpus != "" || *geoms != "":
		return usageError{fmt.Errorf("axes given without --workloads")}
	default:
		sw = bench.PatchDiscussionSweep()
		if *seeds > 0 {
			sw.Seeds = *seeds
		}
	}
	if *seeds < 0 {
		return usageError{fmt.Errorf("--seeds %d: must be >= 1", *seeds)}
	}
	points, err := sw.Points()
	if err != nil {
		return usageError{err}
	}

	partial := *out + ".partial"
	done := map[string]bool{}
	if data, err := os.ReadFile(partial); err == nil {
		if !*resume {
			return usageError{fmt.Errorf("%s holds an interrupted sweep: continue it with --resume, or remove it", partial)}
		}
		var n int
		if done, n, err = bench.ReadDone(data); err != nil {
			return fmt.Errorf("%s: %w", partial, err)
		}
		if err := os.Truncate(partial, int64(n)); err != nil { // drop a torn last line
			return err
		}
	} else if *resume {
		data, err := os.ReadFile(*out)
		if err != nil {
			return usageError{fmt.Errorf("--resume: neither %s nor %s exists", partial, *out)}
		}
		if done, _, err = bench.ReadDone(data); err != nil {
			return fmt.Errorf("%s: %w", *out, err)
		}
		if err := bench.AtomicWrite(partial, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
			return err
		}
	}
	if len(done) == 0 {
		if err := bench.AtomicWrite(partial, func(w io.Writer) error {
			_, err := io.WriteString(w, strings.Join(bench.SweepHeader(), ",")+"\n")
			return err
		}); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opt := bench.SweepOptions{Jobs: *jobs, Reproducible: *repro}
	if !*quiet {
		bar := newProgress(stderr, "sweep", len(points))
		_ = bar.Set(len(done))
		opt.Progress = func(n, _ int) { _ = bar.Set(n) }
	}
	start := time.Now()
	_, runErr := bench.RunSweep(ctx, points, done, f, opt)
	if err := f.Sync(); err != nil {
		return err
	}
	if errors.Is(runErr, context.Canceled) {
		return fmt.Errorf("interrupted: the finished points are in %s; continue with --resume", partial)
	}
	if runErr != nil {
		return fmt.Errorf("%v (the finished points are in %s)", runErr, partial)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := bench.FinishSweep(partial, *out, points); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d points in %v; results in %s\n", len(points), time.Since(start).Round(time.Second), *out)
	return printComparison(stdout, *out)
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// newProgress is the progress bar of a command that runs n points; it shows
// only on a terminal.
func newProgress(stderr io.Writer, what string, n int) *progressbar.ProgressBar {
	return progressbar.NewOptions(n,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionSetVisibility(isTerminal(stderr)),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(stderr) }))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// comparisonMetrics are what the sweep's closing table compares.
var comparisonMetrics = []string{"miss_rate", "flush_overhead_pct", "cycles_per_iter", "dsb", "emu_cycles", "violations"}

// printComparison prints the sweep's results grouped by workload, policy,
// nested policy and CPU count, across seeds (the report's table).
func printComparison(w io.Writer, csvPath string) error {
	f, err := os.Open(csvPath)
	if err != nil {
		return err
	}
	defer f.Close()
	t, err := bench.ReadResults(f)
	if err != nil {
		return err
	}
	by := []string{"workload", "policy", "nested", "cpus"}
	groups, err := bench.Summarize(t, by, comparisonMetrics)
	if err != nil {
		return err
	}
	return bench.WriteReportTable(w, by, groups)
}
