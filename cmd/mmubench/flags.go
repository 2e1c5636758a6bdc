package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"

	"github.com/mmubench/mmubench/bench"
	"github.com/mmubench/mmubench/mmu"
)

// machineFlags are the flags that describe the machine and the workload's
// parameters, shared by run and sweep.
type machineFlags struct {
	l1, l2, walkCache, replacement string
	arch                           string
	kpti                           bool
	memMiB                         int
	latency                        uint64
}

func addMachineFlags(fs *flag.FlagSet, cfg *bench.Config) *machineFlags {
	mf := &machineFlags{
		l1:          cfg.Machine.L1.String(),
		l2:          cfg.Machine.L2.String(),
		walkCache:   cfg.Machine.WalkCache.String(),
		replacement: cfg.Machine.Replacement.String(),
		memMiB:      cfg.Machine.Frames * 4 >> 10,
		latency:     cfg.Machine.Latency,
		arch:        cfg.Machine.Arch.String(),
		kpti:        cfg.Machine.KPTI,
	}
	fs.StringVar(&mf.arch, "arch", mf.arch, "machine flavour: arm64 (TLBI + DSB), x86-invlpgb (INVLPGB + TLBSYNC), x86-ipi (IPI shootdown); each with its cost table")
	fs.BoolVar(&mf.kpti, "kpti", mf.kpti, "arm64 kernel page-table isolation: an ASID pair per process, every user TLBI issued twice (__tlbi_user)")
	fs.StringVar(&mf.l1, "l1", mf.l1, "L1 data TLB geometry ENTRIESxWAYS (ways = entries: fully associative)")
	fs.StringVar(&mf.l2, "l2", mf.l2, "L2 TLB geometry ENTRIESxWAYS, or off")
	fs.StringVar(&mf.walkCache, "walk-cache", mf.walkCache, "walk cache geometry ENTRIESxWAYS, or off")
	fs.StringVar(&mf.replacement, "replacement", mf.replacement, "TLB replacement: lru, random, plru")
	fs.IntVar(&mf.memMiB, "mem", mf.memMiB, "emulated physical memory in MiB")
	fs.Uint64Var(&mf.latency, "latency", mf.latency, "parallel mode: max delivery latency of a broadcast TLBI, in the target's cycles")
	p := &cfg.Params
	fs.IntVar(&p.Pages, "pages", 0, "workload working set in pages (0: the workload's default)")
	fs.Int64Var(&p.Accesses, "accesses", 0, "accesses per thread (0: the workload's default)")
	fs.IntVar(&p.Threads, "threads", 0, "user threads (0: the workload's default)")
	fs.IntVar(&p.Procs, "procs", 0, "processes the threads are spread over, each its own address space (0: the workload's default)")
	fs.IntVar(&p.WritePct, "write-pct", 0, "percentage of accesses that are stores (0: the workload's default)")
	fs.IntVar(&p.Stride, "stride", 0, "stride workload: pages between accesses")
	fs.Float64Var(&p.ZipfS, "zipf", 0, "zipf workload: exponent (> 1)")
	fs.StringVar(&p.Victim, "victim", "", "mprotect-under-reclaim: what the hot threads run: loop, uniform, zipf, or lackey:PATH (a trace)")
	fs.Int64Var(&p.Gap, "gap", 0, "mprotect-under-reclaim: cycles between the maintenance thread's rounds (sets how often it mprotects)")
	fs.StringVar(&p.Order, "order", "", "race workloads: which racer goes first (reclaim-mprotect: reclaim, mprotect; madvfree-race, dontneed-race: helper and writer or main), random (the default: odd seeds the race's own order, the first named; even seeds the other) or free (as the schedule falls)")
	fs.StringVar(&p.Variant, "variant", "", "race catalogue workloads: the form of the kernel code, after its fix (the default, the first `mmubench list` names) or before it")
	fs.BoolVar(&p.Small, "small", false, "race workloads: the small version (2-3 pages), as explore runs them")
	fs.Int64Var(&p.Compute, "compute", 0, "user cycles of computation per access (unixbench-shell1, mprotect-under-reclaim's synthetic victims; 0: the workload's default)")
	return mf
}

// apply puts the parsed flags into cfg.
func (mf *machineFlags) apply(cfg *bench.Config) error { return mf.applyOnly(cfg, nil) }

// applyOnly puts the flags named in set (nil: all) into cfg: a replayed
// schedule's configuration takes only the flags given on the command line.
func (mf *machineFlags) applyOnly(cfg *bench.Config, set map[string]bool) error {
	use := func(name string) bool { return set == nil || set[name] }
	var err error
	m := &cfg.Machine
	if use("l1") {
		if m.L1, err = bench.ParseGeometry(mf.l1, false); err != nil {
			return fmt.Errorf("--l1: %w", err)
		}
	}
	if use("l2") {
		if m.L2, err = bench.ParseGeometry(mf.l2, true); err != nil {
			return fmt.Errorf("--l2: %w", err)
		}
	}
	if use("walk-cache") {
		if m.WalkCache, err = bench.ParseGeometry(mf.walkCache, true); err != nil {
			return fmt.Errorf("--walk-cache: %w", err)
		}
	}
	if use("replacement") {
		if m.Replacement, err = mmu.ParseReplacement(mf.replacement); err != nil {
			return fmt.Errorf("--replacement: %w", err)
		}
	}
	if use("mem") {
		if mf.memMiB < 1 || mf.memMiB > mmu.MaxFrames>>8 {
			return fmt.Errorf("--mem %d: must be 1..%d MiB", mf.memMiB, mmu.MaxFrames>>8)
		}
		m.Frames = mf.memMiB << 8
	}
	if use("latency") {
		m.Latency = mf.latency
	}
	if use("kpti") {
		m.KPTI = mf.kpti
	}
	if use("arch") {
		a, err := mmu.ParseArch(mf.arch)
		if err != nil {
			return fmt.Errorf("--arch: %w", err)
		}
		if a != m.Arch {
			m.SetArch(a)
		}
	}
	return nil
}

// parseFlags parses args for a command that takes flags only: -h prints the
// flags (on the flag set's output, the command's stderr) and ends the
// command (help is true); anything else wrong is a one-line usage error.
func parseFlags(fs *flag.FlagSet, args []string) (help bool, err error) {
	rest, help, err := parseInterleaved(fs, args)
	if help || err != nil {
		return help, err
	}
	if len(rest) > 0 {
		return false, usageError{fmt.Errorf("unexpected argument %q", rest[0])}
	}
	return false, nil
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments, which it returns ("--" ends the flags).
func parseInterleaved(fs *flag.FlagSet, args []string) (positional []string, help bool, err error) {
	out := fs.Output()
	usage := fs.Usage
	fs.SetOutput(io.Discard) // a bad flag is one line, not the flags' list
	fs.Usage = func() {}
	defer func() { fs.SetOutput(out); fs.Usage = usage }()
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(out)
				usage()
				return nil, true, nil
			}
			return nil, false, usageError{fmt.Errorf("%v (mmubench %s -h lists the flags)", err, fs.Name())}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, false, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(positional, rest...), false, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// startCPUProfile profiles the host CPU into path until the returned stop.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
