package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/mmubench/mmubench/bench"
)

// cmdSweep is `mmubench sweep`: many runs, in parallel across host cores,
// each row appended to OUT.partial as it finishes; OUT appears, whole,
// when every point is there exactly once. With no axes it runs the
// built-in patch-discussion sweep. --shard runs one slice of the points
// (or the slice a Kubernetes Indexed Job or a Slurm array task names), and
// `mmubench merge` puts the shards together.
func cmdSweep(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sweep", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "sweep file (JSON) with the axes; default: the flags below, or the built-in sweep")
	out := fs.String("out", "sweep.csv", "CSV to write")
	resume := fs.Bool("resume", false, "continue an interrupted sweep from OUT.partial (or extend OUT)")
	force := fs.Bool("force", false, "overwrite an existing OUT")
	jobs := fs.Int("jobs", 0, "points run at once (0: one per host core, fewer if host memory is short)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	format := fs.String("format", "text", "the summary printed at the end: text, email (plain, at most 78 columns) or markdown")
	repro := fs.Bool("reproducible", false, "write wall_ns as 0 and the version without VCS revision (det-mode reports that regenerate bit for bit)")
	wl := fs.String("workloads", "", "comma-separated workloads")
	pols := fs.String("policies", "", "comma-separated batched-unmap policies")
	nested := fs.String("nested", "", "comma-separated nested policies")
	cpus := fs.String("cpus", "", "comma-separated CPU counts")
	geoms := fs.String("geometries", "", "comma-separated TLB geometries L1:L2:WALKCACHE, e.g. 48x48:1280x5:64x4,16x16:1024x4:off")
	seeds := fs.Int("seeds", 0, "seeds per point (with --file or the built-in sweep: instead of theirs)")
	first := fs.Uint64("seed", 1, "first seed (with --file or the built-in sweep: instead of theirs)")
	schedName := fs.String("sched", "det", "scheduler: det or parallel")
	rounds := fs.Int("rounds", 0, "workload length (0: each workload's default)")
	arch := fs.String("arch", "", "machine flavour: arm64 (the default), x86-invlpgb, x86-ipi")
	shardFlag := fs.String("shard", "", "run only shard I/N of the points (default: $JOB_COMPLETION_INDEX with --shards, or $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_TASK_COUNT)")
	shards := fs.Int("shards", 0, "with $JOB_COMPLETION_INDEX (a Kubernetes Indexed Job): the number of shards")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *jobs < 0 {
		return usageError{fmt.Errorf("--jobs %d: must be >= 0", *jobs)}
	}
	if !slices.Contains(bench.TextFormats, *format) {
		return usageError{fmt.Errorf("--format %q: want text, email or markdown", *format)}
	}
	if *seeds < 0 {
		return usageError{fmt.Errorf("--seeds %d: must be >= 1", *seeds)}
	}
	axes := []string{"workloads", "policies", "nested", "cpus", "geometries", "sched", "rounds", "arch"}
	var sw *bench.Sweep
	switch {
	case *file != "":
		for _, a := range axes {
			if set[a] {
				return usageError{fmt.Errorf("--%s: the sweep file %s sets the axes (only --seeds and --seed override it)", a, *file)}
			}
		}
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
		g := bench.Group{Workloads: split(*wl), Policies: split(*pols), Nested: split(*nested), Rounds: *rounds, Arch: *arch}
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
		sw = &bench.Sweep{Sched: *schedName, Seeds: *seeds, Groups: []bench.Group{g}}
	default:
		for _, a := range axes {
			if set[a] {
				return usageError{fmt.Errorf("--%s without --workloads: the built-in sweep sets its own axes (only --seeds and --seed override it)", a)}
			}
		}
		sw = bench.PatchDiscussionSweep()
	}
	if *seeds > 0 {
		sw.Seeds = *seeds
		for i := range sw.Groups {
			sw.Groups[i].Seeds = 0
		}
	}
	if set["seed"] || *wl != "" {
		sw.FirstSeed = first
	}
	ps, err := sw.Points()
	if err != nil {
		return usageError{err}
	}
	shard, nShards, err := shardOf(*shardFlag, *shards, os.Getenv)
	if err != nil {
		return usageError{err}
	}
	todo := ps.Shard(shard, nShards)
	var shardHeader *bench.JournalHeader
	header := bench.NewJournalHeader(ps, *repro, shard, nShards)
	if nShards > 1 {
		shardHeader = &header
	}

	// Everything about the output is checked before any work.
	if err := bench.CheckWritable(*out); err != nil {
		return usageError{err}
	}
	unlock, err := bench.LockOutput(*out)
	if err != nil {
		return usageError{err}
	}
	defer unlock()
	partial := *out + ".partial"
	if exists(*out) && !*resume && !*force {
		return usageError{fmt.Errorf("%s exists: extend it with --resume, overwrite it with --force, or choose another --out", *out)}
	}
	done, err := resumeJournal(partial, *out, *resume, ps, todo, header, stderr)
	if err != nil {
		return err
	}
	need := ps.MaxRunMemory()
	if *jobs == 0 {
		*jobs = runtime.GOMAXPROCS(0)
	}
	if *jobs, err = bench.FitJobs(need, bench.HostAvailable(), *jobs); err != nil {
		return usageError{err}
	}
	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()

	var rest []int
	for _, i := range todo {
		if !done[i] {
			rest = append(rest, i)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opt := bench.SweepOptions{Jobs: *jobs, Reproducible: *repro}
	if !*quiet {
		bar := newProgress(stderr, "sweep", len(todo))
		_ = bar.Set(len(todo) - len(rest))
		base := ps.Len() - len(rest)
		opt.Progress = func(n, _ int) { _ = bar.Set(len(todo) - len(rest) + n - base) }
	}
	start := time.Now()
	_, failed, runErr := bench.RunSweep(ctx, ps, rest, f, opt)
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
	if err := bench.FinishSweep(partial, *out, ps, todo, shardHeader); err != nil {
		return err
	}
	what := fmt.Sprintf("%d points", len(todo))
	if nShards > 1 {
		what = fmt.Sprintf("shard %d/%d: %d of %d points", shard, nShards, len(todo), ps.Len())
	}
	fmt.Fprintf(stderr, "%s in %v; results in %s\n", what, time.Since(start).Round(time.Second), *out)
	if err := printComparison(stdout, *format, *out, "mmubench sweep "+strings.Join(args, " ")); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d runs could not be carried out (their rows in %s say why in the errors column)", failed, len(rest), *out)
	}
	return nil
}

// shardOf is the shard to run: --shard I/N, else a Kubernetes Indexed Job's
// $JOB_COMPLETION_INDEX of --shards, else a Slurm array task's
// $SLURM_ARRAY_TASK_ID (from $SLURM_ARRAY_TASK_MIN) of
// $SLURM_ARRAY_TASK_COUNT; 0 of 1 when none is given.
func shardOf(flagVal string, shards int, getenv func(string) string) (int, int, error) {
	var i, n int
	switch {
	case flagVal != "":
		if _, err := fmt.Sscanf(flagVal, "%d/%d", &i, &n); err != nil || fmt.Sprintf("%d/%d", i, n) != flagVal {
			return 0, 0, fmt.Errorf("--shard %q: want I/N, e.g. 0/4", flagVal)
		}
	case getenv("JOB_COMPLETION_INDEX") != "":
		if shards < 1 {
			return 0, 0, fmt.Errorf("$JOB_COMPLETION_INDEX is set: give the number of shards with --shards N (the Job's completions)")
		}
		v, err := strconv.Atoi(getenv("JOB_COMPLETION_INDEX"))
		if err != nil {
			return 0, 0, fmt.Errorf("$JOB_COMPLETION_INDEX %q is not a number", getenv("JOB_COMPLETION_INDEX"))
		}
		i, n = v, shards
	case getenv("SLURM_ARRAY_TASK_ID") != "":
		id, err1 := strconv.Atoi(getenv("SLURM_ARRAY_TASK_ID"))
		count, err2 := strconv.Atoi(getenv("SLURM_ARRAY_TASK_COUNT"))
		lo := 0
		if m := getenv("SLURM_ARRAY_TASK_MIN"); m != "" {
			var err error
			if lo, err = strconv.Atoi(m); err != nil {
				return 0, 0, fmt.Errorf("$SLURM_ARRAY_TASK_MIN %q is not a number", m)
			}
		}
		if err1 != nil || err2 != nil {
			return 0, 0, fmt.Errorf("$SLURM_ARRAY_TASK_ID %q of $SLURM_ARRAY_TASK_COUNT %q: want numbers",
				getenv("SLURM_ARRAY_TASK_ID"), getenv("SLURM_ARRAY_TASK_COUNT"))
		}
		i, n = id-lo, count
	case shards > 0:
		return 0, 0, fmt.Errorf("--shards %d without $JOB_COMPLETION_INDEX: use --shard I/N", shards)
	default:
		return 0, 1, nil
	}
	if n < 1 || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("shard %d of %d: want 0 <= I < N", i, n)
	}
	return i, n, nil
}

// resumeJournal prepares OUT.partial: a new journal, or with --resume the
// interrupted one (or OUT itself, to extend it), checked to be this sweep's,
// rid of rows of other points and of duplicates, and rewritten whole. It
// returns the points already done.
func resumeJournal(partial, out string, resume bool, ps *bench.PointSet, todo []int, header bench.JournalHeader, stderr io.Writer) (map[int]bool, error) {
	want := make(map[int]bool, len(todo))
	for _, i := range todo {
		want[i] = true
	}
	src := ""
	data, err := os.ReadFile(partial)
	switch {
	case err == nil && !resume:
		return nil, usageError{fmt.Errorf("%s holds an interrupted sweep: continue it with --resume, or remove it", partial)}
	case err == nil:
		src = partial
	case resume:
		if data, err = os.ReadFile(out); err != nil {
			return nil, usageError{fmt.Errorf("--resume: neither %s nor %s exists", partial, out)}
		}
		src = out
	}
	rows := map[int][]string{}
	if src != "" {
		j, err := bench.ReadJournal(data, ps, want)
		if err != nil {
			return nil, usageError{fmt.Errorf("%s: %w", src, err)}
		}
		if j.Header != nil {
			if err := j.Header.SameSweep(header); err != nil {
				return nil, usageError{fmt.Errorf("%s: %w", src, err)}
			}
		}
		if j.Foreign > 0 || j.Duplicate > 0 {
			fmt.Fprintf(stderr, "mmubench: %s: dropped %d rows of points not in this sweep and %d duplicated\n", src, j.Foreign, j.Duplicate)
		}
		rows = j.Rows
	}
	if err := bench.AtomicWrite(partial, func(w io.Writer) error { return bench.WriteJournal(w, header, rows) }); err != nil {
		return nil, err
	}
	done := make(map[int]bool, len(rows))
	for i := range rows {
		done[i] = true
	}
	return done, nil
}

// exists reports whether path names a file.
func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
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

// printComparison prints the sweep's summary: the verdict matrix and the
// cost table, after the line that says what produced them.
func printComparison(w io.Writer, format, csvPath, command string) error {
	f, err := os.Open(csvPath)
	if err != nil {
		return err
	}
	defer f.Close()
	t, err := bench.ReadResults(f)
	if err != nil {
		return err
	}
	return printSummary(w, format, t, command)
}

// printSummary renders the verdict matrix and the cost tables of t.
func printSummary(w io.Writer, format string, t *bench.Table, command string) error {
	verdicts, err := bench.Verdicts(t)
	if err != nil {
		return err
	}
	costs, err := bench.Costs(t)
	if err != nil {
		return err
	}
	return bench.RenderTables(w, format, bench.Provenance(t, command), append([]*bench.TextTable{verdicts}, costs...)...)
}
