package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mmubench/mmubench/bench"
	"github.com/mmubench/mmubench/sched"
	"github.com/mmubench/mmubench/workloads"
)

// cmdRun is `mmubench run`: one configuration over seeds N..N+K-1, a
// result row per seed.
func cmdRun(args []string, stdout, stderr io.Writer) error {
	cfg := bench.DefaultConfig()
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Workload, "workload", cfg.Workload, "workload to run (see the README for the list)")
	fs.StringVar(&cfg.Policy, "policy", cfg.Policy, "batched-unmap flush policy: no-batch, dsb-only, flush-mm, range")
	fs.StringVar(&cfg.Nested, "nested", cfg.Nested, "nested-gather policy: none, range, fullmm")
	fs.IntVar(&cfg.Machine.CPUs, "cpus", cfg.Machine.CPUs, "emulated CPUs")
	schedName := fs.String("sched", "det", "scheduler: det or parallel")
	seed := fs.Uint64("seed", 1, "first seed")
	fs.Uint64Var(&cfg.Machine.Sched.Quantum, "quantum", 0, "det mode: keep emulated time, running the CPU furthest behind until it is this many cycles ahead (0: PCT priorities, for races)")
	runs := fs.Int("runs", 1, "number of seeds to run: seed .. seed+runs-1")
	fs.IntVar(&cfg.Rounds, "rounds", 0, "workload length in rounds (0 = the workload's default)")
	format := fs.String("format", "table", "output format: table, csv, json")
	mf := addMachineFlags(fs, &cfg)
	traceOut := fs.String("trace-out", "", "det mode, one run: write the run's schedule (its scheduler choices) to this file")
	replay := fs.String("replay", "", "det mode, one run: follow the schedule in this file (from --trace-out or explore) instead of the seed; a schedule that carries its configuration runs that")
	cpuprofile := fs.String("cpuprofile", "", "write a host CPU profile of the runs to this file (go tool pprof)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *cpuprofile != "" {
		stop, err := startCPUProfile(*cpuprofile)
		if err != nil {
			return usageError{err}
		}
		defer stop()
	}
	if err := mf.apply(&cfg); err != nil {
		return usageError{err}
	}
	mode, err := sched.ParseMode(*schedName)
	if err != nil {
		return usageError{err}
	}
	cfg.Machine.Sched.Mode = mode
	if *runs < 1 {
		return usageError{fmt.Errorf("--runs %d: must be at least 1", *runs)}
	}
	if *seed+uint64(*runs-1) < *seed {
		return usageError{fmt.Errorf("--seed %d --runs %d: the seeds wrap past 2^64", *seed, *runs)}
	}
	if *traceOut != "" {
		if err := bench.CheckWritable(*traceOut); err != nil {
			return usageError{fmt.Errorf("--trace-out: %w", err)}
		}
	}
	if *traceOut != "" || *replay != "" {
		if mode != sched.Det || *runs != 1 {
			return usageError{fmt.Errorf("--trace-out and --replay need --sched det and --runs 1")}
		}
		cfg.Machine.Sched.Record = *traceOut != ""
	}
	if *replay != "" {
		f, err := os.Open(*replay)
		if err != nil {
			return usageError{err}
		}
		tr, err := sched.ReadTrace(f)
		f.Close()
		if err != nil {
			return usageError{fmt.Errorf("%s: %w", *replay, err)}
		}
		cfg.Machine.Sched.Replay = tr
		*seed = tr.Seed      // the row names the seed the schedule came from
		if tr.Config != "" { // the trace says what ran (explore's counterexamples, --trace-out)
			if cfg, err = bench.ConfigFromTrace(tr); err != nil {
				return usageError{fmt.Errorf("%s: %w", *replay, err)}
			}
			// Flags given on the command line still count: the same
			// schedule under another policy, say.
			set := map[string]bool{}
			fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
			if err := fs.Parse(args); err != nil {
				return usageError{err}
			}
			if err := mf.applyOnly(&cfg, set); err != nil {
				return usageError{err}
			}
			cfg.Machine.Sched.Mode, cfg.Machine.Sched.Replay, cfg.Machine.Sched.Seed = sched.Det, tr, tr.Seed
			cfg.Machine.Sched.Record = *traceOut != ""
		}
	}
	if _, err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	if _, err := bench.FitJobs(bench.RunMemory(cfg), bench.HostAvailable(), 1); err != nil {
		return usageError{err}
	}
	out, err := bench.NewWriter(stdout, *format)
	if err != nil {
		return usageError{err}
	}
	bench.SetCommand(out, strings.TrimSpace("mmubench run "+strings.Join(args, " ")))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var failed []string
	violating, firstBad := 0, ""
	ordersSeen := map[string]bool{} // the racers' orders the seeds picked
	for i := 0; i < *runs; i++ {
		if ctx.Err() != nil { // Ctrl-C: what finished is printed, and said so
			if err := out.Close(); err != nil {
				return err
			}
			return fmt.Errorf("interrupted after %d of %d runs", i, *runs)
		}
		c := cfg
		c.Machine.Sched.Seed = *seed + uint64(i)
		res, err := bench.Run(c)
		if err != nil {
			return err
		}
		if len(res.Errors) > 0 {
			failed = append(failed, fmt.Sprintf("seed %d: %s", c.Machine.Sched.Seed, strings.Join(res.Errors, "; ")))
		}
		if res.ViolationCount() > 0 {
			if violating++; firstBad == "" {
				firstBad = fmt.Sprintf("; the first, seed %d: %v", c.Machine.Sched.Seed, res.First)
			}
		}
		if *traceOut != "" {
			res.Trace.Config = c.TraceConfig()
			if err := bench.AtomicWrite(*traceOut, func(w io.Writer) error { _, err := res.Trace.WriteTo(w); return err }); err != nil {
				return err
			}
		}
		ordersSeen[res.Params.Order] = true
		if err := out.Write(res); err != nil {
			return err
		}
	}
	if err := out.Close(); err != nil {
		return err
	}
	// The verdict in one line, whatever the format (stderr: stdout is the data).
	for _, l := range bench.Wrap(fmt.Sprintf("%d of %d runs with violations%s", violating, *runs, firstBad), 80) {
		fmt.Fprintln(stderr, l)
	}
	if hint := orderHint(cfg, violating, ordersSeen); hint != "" {
		for _, l := range bench.Wrap(hint, 80) {
			fmt.Fprintln(stderr, l)
		}
	}
	switch len(failed) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("the run could not be carried out: %s", failed[0])
	}
	return fmt.Errorf("%d of %d runs could not be carried out; the first, %s", len(failed), *runs, failed[0])
}

// orderHint says, when no run found anything and the seeds gave every run
// the racers' other order (in which the seed races do no damage), that the
// order and not the policy may be why.
func orderHint(cfg bench.Config, violating int, seen map[string]bool) string {
	w, err := workloads.Get(cfg.Workload)
	if err != nil || w.Orders == nil || violating > 0 || cfg.Params.Order != "" || seen[w.Orders[0]] {
		return ""
	}
	return fmt.Sprintf("(the seed put %s first in every run, not the race's own order, %s first: try --order %s, or more --runs)",
		w.Orders[1], w.Orders[0], w.Orders[0])
}
