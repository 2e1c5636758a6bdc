package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/mmubench/mmubench/bench"
	"github.com/mmubench/mmubench/explore"
	"github.com/mmubench/mmubench/workloads"
)

// cmdExplore is `mmubench explore`: every det schedule of one
// configuration within a bound of deviations from a base schedule, and the
// first counterexample as a replayable trace.
func cmdExplore(args []string, stdout, stderr io.Writer) error {
	cfg := bench.DefaultConfig()
	fs := flag.NewFlagSet("explore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Workload, "workload", cfg.Workload, "workload to explore (the race workloads have --small versions)")
	fs.StringVar(&cfg.Policy, "policy", cfg.Policy, "batched-unmap flush policy: no-batch, dsb-only, flush-mm, range, range-ideal")
	fs.StringVar(&cfg.Nested, "nested", cfg.Nested, "nested-gather policy: none, range, fullmm")
	fs.IntVar(&cfg.Machine.CPUs, "cpus", 0, "emulated CPUs (default: as many as the workload needs)")
	fs.IntVar(&cfg.Rounds, "rounds", 1, "workload length in rounds")
	bound := fs.Int("bound", 2, "deviations from the base schedule (preemptions at visible points, other hand-offs, invalidations held to their issuer's DSB)")
	quantum := fs.Int("quantum", explore.DefaultQuantum, "base schedule: yield points a CPU runs before the turn moves on")
	maxSchedules := fs.Int("max-schedules", 0, "stop after this many schedules (0: no limit)")
	all := fs.Bool("all", false, "explore the whole bound even after a counterexample, counting violating schedules")
	out := fs.String("out", "", "where to save the counterexample's schedule (default explore-WORKLOAD-POLICY-NESTED.trace)")
	quiet := fs.Bool("quiet", false, "no progress line")
	mf := addMachineFlags(fs, &cfg)
	fs.Lookup("mem").DefValue, mf.memMiB = "1", 1 // a race needs a handful of frames: a small machine starts fast
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if err := mf.apply(&cfg); err != nil {
		return usageError{err}
	}
	switch {
	case *bound < 0:
		return usageError{fmt.Errorf("--bound %d: must be >= 0", *bound)}
	case *quantum < 1:
		return usageError{fmt.Errorf("--quantum %d: must be at least 1", *quantum)}
	case *maxSchedules < 0:
		return usageError{fmt.Errorf("--max-schedules %d: must be >= 0", *maxSchedules)}
	case cfg.Rounds < 1:
		return usageError{fmt.Errorf("--rounds %d: must be at least 1", cfg.Rounds)}
	}
	cpusSet := false
	fs.Visit(func(f *flag.Flag) { cpusSet = cpusSet || f.Name == "cpus" })
	if w, err := workloads.Get(cfg.Workload); err == nil {
		if !cpusSet {
			cfg.Machine.CPUs = max(w.MinCPUs, 1) // no idle CPU adding hand-offs to the schedules
		}
		if cfg.Params.Order == "" && w.Orders != nil {
			cfg.Params.Order = "free" // both orders of the racers are in the schedules
		}
	}
	if _, err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	if *out == "" {
		*out = fmt.Sprintf("explore-%s-%s-%s.trace", cfg.Workload, cfg.Policy, cfg.Nested)
	}
	opt := explore.Options{Bound: *bound, Quantum: *quantum, MaxSchedules: *maxSchedules, All: *all}
	start := time.Now()
	progress := !*quiet && isTerminal(stderr) // a log file gets no carriage returns
	if progress {
		last := time.Now()
		opt.Progress = func(n, pending int) {
			if time.Since(last) > time.Second {
				last = time.Now()
				fmt.Fprintf(stderr, "\rexplore: %d schedules, %d pending", n, pending)
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := explore.Explore(ctx, bench.ExploreRunner(cfg), opt)
	if progress {
		fmt.Fprint(stderr, "\r\033[K")
	}
	interrupted := errors.Is(err, context.Canceled)
	if err != nil && !interrupted {
		return err
	}
	small := ""
	if cfg.Params.Small {
		small = " (small)"
	}
	fmt.Fprintf(stdout, "explore %s%s policy=%s nested=%s cpus=%d rounds=%d order=%s bound=%d quantum=%d\n",
		cfg.Workload, small, cfg.Policy, cfg.Nested, cfg.Machine.CPUs, cfg.Rounds, cfg.Params.Order, *bound, *quantum)
	fmt.Fprintf(stdout, "schedules explored %d, distinct end states %d, choice points per schedule up to %d, %.1f s\n",
		rep.Schedules, rep.States, rep.MaxPoints, time.Since(start).Seconds())
	if rep.First != nil {
		if err := bench.AtomicWrite(*out, func(w io.Writer) error { _, err := rep.First.Trace.WriteTo(w); return err }); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "counterexample with %d deviation(s): %s\n", rep.FirstDepth, rep.First.Violation)
		if *all {
			fmt.Fprintf(stdout, "violating schedules %d of %d\n", rep.Violating, rep.Schedules)
		}
		fmt.Fprintf(stdout, "schedule saved to %s; replay: mmubench explain --replay %s (or mmubench run --replay %s)\n", *out, *out, *out)
	}
	switch {
	case interrupted:
		return fmt.Errorf("interrupted after %d schedules", rep.Schedules)
	case rep.First == nil && rep.Exhausted:
		fmt.Fprintf(stdout, "no violation within bound %d\n", *bound)
	case rep.First == nil:
		fmt.Fprintf(stdout, "no violation in %d schedules; bound %d not exhausted (--max-schedules)\n", rep.Schedules, *bound)
	}
	return nil
}
