// Package bench runs configurations of the emulator and reports them: a
// run's configuration is one value that travels in its result, so every
// result says how to reproduce it (configuration, seed, scheduler, version).
package bench

import (
	"cmp"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/policy"
	"github.com/mmubench/mmubench/reclaim"
	"github.com/mmubench/mmubench/sched"
	"github.com/mmubench/mmubench/workloads"
)

// Config is one run.
type Config struct {
	Workload string           `json:"workload"`
	Policy   string           `json:"policy"`
	Nested   string           `json:"nested"`
	Rounds   int              `json:"rounds"` // workload length; 0 = its default
	Params   workloads.Params `json:"params"` // workload parameters; zero fields take its defaults
	Machine  mmu.Config       `json:"machine"`
}

// DefaultConfig is the defaults of `mmubench run`.
func DefaultConfig() Config {
	m := mmu.DefaultConfig()
	m.Sched = sched.Config{Mode: sched.Det, Seed: 1}
	return Config{Workload: "reclaim-mprotect", Policy: "flush-mm", Nested: "fullmm", Machine: m}
}

// Result is what one run measured.
type Result struct {
	Config  Config       `json:"config"`
	Version string       `json:"version"`
	Rounds  int          `json:"rounds"`
	Total   mmu.Counters `json:"counters"`
	// Kernel counts kernel events (mm.Stats) by name.
	Kernel     map[string]uint64            `json:"kernel"`
	Violations [mm.NumViolationKinds]uint64 `json:"violations"`
	First      *mm.Event                    `json:"first_violation,omitempty"`
	Steps      uint64                       `json:"det_steps"`
	WallNs     int64                        `json:"wall_ns"`
	Errors     []string                     `json:"errors,omitempty"`
	// Metrics are the workload's own figures (cycles_per_iter, hot_miss_rate, ...).
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Params are the workload parameters in force (defaults filled in).
	Params workloads.Params `json:"params"`
	// Trace is the det-mode schedule, when Config.Machine.Sched.Record
	// asked for it: replaying it reproduces the run without the seed.
	Trace *sched.Trace `json:"-"`
}

// ViolationCount is the number of violations of every kind.
func (r *Result) ViolationCount() uint64 {
	var n uint64
	for _, v := range r.Violations {
		n += v
	}
	return n
}

// FlushOverheadPct is the share, in %, of the victim threads' cycles spent
// refilling translations flush_tlb_batched_pending flushed: the workload's
// own figure where it names victims, else over every CPU's cycles.
func (r *Result) FlushOverheadPct() float64 {
	if v, ok := r.Metrics["flush_overhead_pct"]; ok {
		return v
	}
	if r.Total.Cycles == 0 {
		return 0
	}
	return 100 * float64(r.Total.FlushLostCycles) / float64(r.Total.Cycles)
}

// MissRate is walks per access.
func (r *Result) MissRate() float64 {
	if r.Total.Accesses == 0 {
		return 0
	}
	return float64(r.Total.Walks) / float64(r.Total.Accesses)
}

// BaseVersion is mmubench's release; Version adds the VCS revision the
// binary was built from, when the build recorded it.
const BaseVersion = "0.1.0"

// Version identifies the code that produced a result.
func Version() string {
	v := BaseVersion
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += "+" + s.Value[:12]
		}
		if s.Key == "vcs.modified" && s.Value == "true" {
			v += "-dirty"
		}
	}
	return v
}

// Validate checks the configuration without running it.
func (c *Config) Validate() (*workloads.Workload, error) {
	w, err := workloads.Get(c.Workload)
	if err != nil {
		return nil, err
	}
	batch, err := policy.Batch(c.Policy)
	if err != nil {
		return nil, err
	}
	if err := c.Machine.Arch.Validate(); err != nil {
		return nil, err
	}
	if err := mm.CheckBatchArch(batch, c.Machine.Arch); err != nil {
		return nil, err
	}
	if _, err := policy.Nested(c.Nested); err != nil {
		return nil, err
	}
	if c.Rounds < 0 || c.Rounds > workloads.MaxRounds {
		return nil, fmt.Errorf("%d rounds (must be 0..%d; 0: the workload's default)", c.Rounds, workloads.MaxRounds)
	}
	if err := c.Params.Validate(); err != nil {
		return nil, err
	}
	threads := cmp.Or(c.Params.Threads, w.Defaults.Threads)
	if threads > c.Machine.CPUs {
		return nil, fmt.Errorf("workload %s: %d threads on %d CPUs", w.Name, threads, c.Machine.CPUs)
	}
	if procs := cmp.Or(c.Params.Procs, w.Defaults.Procs); procs > max(threads, 1) {
		return nil, fmt.Errorf("workload %s: %d processes for %d threads", w.Name, procs, threads)
	}
	if c.Machine.CPUs < w.MinCPUs {
		return nil, fmt.Errorf("workload %s needs at least %d CPUs, got %d", w.Name, w.MinCPUs, c.Machine.CPUs)
	}
	if err := c.Machine.Validate(); err != nil {
		return nil, err
	}
	return w, nil
}

// Run runs one configuration.
func Run(cfg Config) (*Result, error) {
	w, err := cfg.Validate()
	if err != nil {
		return nil, err
	}
	batch, _ := policy.Batch(cfg.Policy)
	nested, _ := policy.Nested(cfg.Nested)
	m, err := mmu.NewMachine(cfg.Machine)
	if err != nil {
		return nil, err
	}
	k, err := mm.New(m, mm.Config{Batch: batch, Nested: nested})
	if err != nil {
		return nil, err
	}
	env := &workloads.Env{Kernel: k, Reclaim: reclaim.New(k, reclaim.Config{}), Machine: m, Rounds: cfg.Rounds, Params: cfg.Params}
	if err := w.Prepare(env); err != nil {
		return nil, err
	}
	body, err := w.Setup(env)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", w.Name, err)
	}
	start := time.Now()
	runErr := m.Run(body)
	if runErr == nil {
		env.Finish()
	}
	res := &Result{
		Config:  cfg,
		Version: Version(),
		Rounds:  env.Rounds,
		Total:   m.Counters(),
		Kernel:  kernelStats(&k.Stats),
		Steps:   m.Scheduler().Steps(),
		WallNs:  time.Since(start).Nanoseconds(),
		Errors:  env.Errors(),
		Metrics: env.Metrics(),
		Params:  env.Params,
	}
	res.Kernel["swap_used"] = uint64(k.SwapUsed())
	res.Kernel["free_frames"] = uint64(k.FreeFrames())
	if cfg.Machine.Arch == mmu.ArchX86IPI {
		res.Kernel["ipis"] = m.IPIs()
	}
	if cfg.Machine.Sched.Record {
		res.Trace = m.Scheduler().Trace()
	}
	o := k.Oracle()
	for v := mm.ViolationKind(0); v < mm.NumViolationKinds; v++ {
		res.Violations[v] = o.Count(v)
	}
	res.First = o.FirstAny()
	if runErr != nil {
		res.Errors = append(res.Errors, runErr.Error())
	}
	return res, nil
}

func kernelStats(s *mm.Stats) map[string]uint64 {
	return map[string]uint64{
		"flush_mm":              s.FlushMM.Load(),
		"range_flushes":         s.RangeFlushes.Load(),
		"range_fallbacks":       s.RangeFallbacks.Load(),
		"batched_pending":       s.BatchedPending.Load(),
		"nested_flushes":        s.NestedFlushes.Load(),
		"faults":                s.Faults.Load(),
		"segv":                  s.Segv.Load(),
		"swap_ins":              s.SwapIns.Load(),
		"scanned":               s.Scanned.Load(),
		"unmapped":              s.Unmapped.Load(),
		"unmapped_ptes":         s.UnmappedPTEs.Load(),
		"written_back":          s.WrittenBack.Load(),
		"discarded":             s.Discarded.Load(),
		"redirtied":             s.Redirtied.Load(),
		"syscalls":              s.Syscalls.Load(),
		"pages_zapped":          s.PagesZapped.Load(),
		"pages_lazyfreed":       s.PagesLazyfreed.Load(),
		"pages_write_protected": s.PagesWriteProtected.Load(),
		"file_reads":            s.FileReads.Load(),
		"cows":                  s.COWs.Load(),
		"forks":                 s.Forks.Load(),
		"execs":                 s.Execs.Load(),
		"exits":                 s.Exits.Load(),
		"swap_cache_hits":       s.SwapCacheHits.Load(),
		"ptep_clear_flushes":    s.PtepClearFlushes.Load(),
	}
}

// ParseGeometry parses a TLB geometry "ENTRIESxWAYS" ("48x48" is fully
// associative), or "off" where allowOff (a zero geometry).
func ParseGeometry(s string, allowOff bool) (mmu.TLBGeometry, error) {
	if s == "off" {
		if !allowOff {
			return mmu.TLBGeometry{}, fmt.Errorf("geometry %q: this TLB cannot be off", s)
		}
		return mmu.TLBGeometry{}, nil
	}
	var g mmu.TLBGeometry
	var rest string
	if n, err := fmt.Sscanf(s, "%dx%d%s", &g.Entries, &g.Ways, &rest); (err != nil && n < 2) || rest != "" {
		return g, fmt.Errorf("geometry %q: want ENTRIESxWAYS, e.g. 1280x5", s)
	}
	if g.Entries <= 0 || g.Ways <= 0 {
		return g, fmt.Errorf("geometry %q: entries and ways must be positive", s)
	}
	return g, nil
}
