// Package workloads is what the emulated user threads (and kernel threads)
// do: the race scenarios of the patch threads, each a miniature of its
// thread; the benchmarks the threads cite (pageout-loop, unixbench-shell1,
// swap-bench, mprotect-under-reclaim); synthetic access patterns (seq,
// stride, uniform, zipf) over threads and processes; and replay of valgrind
// lackey traces. Benchmarks report figures per emulated time in their own
// CPUs' cycles (a figure is a sum over CPUs of each one's rate), so they
// mean something whatever the scheduler's interleaving; cost studies run
// them in the clocked det mode (sched.Config.Quantum).
//
// Workloads that race syscalls against each other sequence their threads
// with latches; where a race needs two CPUs to start together (parallel
// mode) they spin instead of blocking (latch.Spin, startTogether).
//
// A workload's Setup runs before the machine starts and returns the body
// every CPU runs; system calls happen inside the bodies, on the CPUs.
package workloads

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"

	gsync "gvisor.dev/gvisor/pkg/sync"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/reclaim"
	"github.com/mmubench/mmubench/sched"
)

// Env is what a workload runs on.
type Env struct {
	Kernel  *mm.Kernel
	Reclaim *reclaim.Reclaim
	Machine *mmu.Machine
	// Rounds is the workload's length (0: its default).
	Rounds int
	// Params are the workload's parameters, with its defaults filled in.
	Params Params

	mu       gsync.Mutex
	errs     []string
	metrics  map[string]float64
	onFinish []func()
}

// OnFinish registers f to run after every CPU has finished (to turn
// counts into the run's metrics).
func (e *Env) OnFinish(f func()) { e.onFinish = append(e.onFinish, f) }

// Finish runs the OnFinish functions; the runner calls it after the run.
func (e *Env) Finish() {
	for _, f := range e.onFinish {
		f()
	}
}

// Params parameterise the synthetic and benchmark workloads; zero fields
// take the workload's defaults.
type Params struct {
	Pages    int     `json:"pages,omitempty"`     // working set, in pages
	Accesses int64   `json:"accesses,omitempty"`  // accesses per thread
	Threads  int     `json:"threads,omitempty"`   // user threads (one per CPU)
	Procs    int     `json:"procs,omitempty"`     // processes the threads are spread over (each its own mm and ASID)
	WritePct int     `json:"write_pct,omitempty"` // percentage of accesses that are stores
	Stride   int     `json:"stride,omitempty"`    // stride pattern: pages between accesses
	ZipfS    float64 `json:"zipf_s,omitempty"`    // zipf pattern: exponent (> 1)
	Compute  int64   `json:"compute,omitempty"`   // user cycles of computation per access (unixbench-shell1)
	Victim   string  `json:"victim,omitempty"`    // mprotect-under-reclaim: what the hot threads run (loop, uniform, zipf, lackey:PATH)
	Gap      int64   `json:"gap,omitempty"`       // mprotect-under-reclaim: cycles between the maintenance thread's rounds
	// Order: the race workloads' order of the racers — which one's PTE
	// change the other's call finds (Workload.Orders names them), "random"
	// (the default: from the run's seed, the race's own order for odd seeds) or "free"
	// (whatever the schedule gives).
	Order string `json:"order,omitempty"`
	// Small: the race workloads on 2-3 pages, for exhaustive exploration.
	Small bool `json:"small,omitempty"`
	// Variant: the form of the kernel code a catalogue race runs, before
	// or after its fix (Workload.Variants; "": the first, the fixed form).
	Variant string `json:"variant,omitempty"`
}

// merged fills p's zero fields from d.
func (p Params) merged(d Params) Params {
	if p.Pages == 0 {
		p.Pages = d.Pages
	}
	if p.Accesses == 0 {
		p.Accesses = d.Accesses
	}
	if p.Threads == 0 {
		p.Threads = d.Threads
	}
	if p.Procs == 0 {
		p.Procs = d.Procs
	}
	if p.WritePct == 0 {
		p.WritePct = d.WritePct
	}
	if p.Stride == 0 {
		p.Stride = d.Stride
	}
	if p.ZipfS == 0 {
		p.ZipfS = d.ZipfS
	}
	if p.Compute == 0 {
		p.Compute = d.Compute
	}
	if p.Victim == "" {
		p.Victim = d.Victim
	}
	if p.Gap == 0 {
		p.Gap = d.Gap
	}
	if p.Order == "" {
		p.Order = d.Order
	}
	p.Small = p.Small || d.Small
	if p.Variant == "" {
		p.Variant = d.Variant
	}
	return p
}

// Limits of the workload parameters: what an emulated machine can hold
// (a working set within the 48-bit VA space of one process's mmap area,
// at most MaxCPUs threads) and what a run can finish.
const (
	MaxPages    = 1 << 28 // 1 TiB of virtual memory
	MaxAccesses = 1 << 40
	MaxRounds   = 1 << 20
	MaxCompute  = 1 << 32 // cycles per access
	MaxGap      = 1 << 40 // cycles
)

// Validate refuses parameters that cannot be run, naming the parameter.
func (p Params) Validate() error {
	switch {
	case p.Pages < 0 || p.Pages > MaxPages:
		return fmt.Errorf("pages %d (must be 0..%d)", p.Pages, MaxPages)
	case p.Accesses < 0 || p.Accesses > MaxAccesses:
		return fmt.Errorf("accesses %d (must be 0..%d)", p.Accesses, int64(MaxAccesses))
	case p.Threads < 0 || p.Threads > mmu.MaxCPUs:
		return fmt.Errorf("threads %d (must be 0..%d)", p.Threads, mmu.MaxCPUs)
	case p.Procs < 0 || p.Procs > mmu.MaxCPUs:
		return fmt.Errorf("procs %d (must be 0..%d)", p.Procs, mmu.MaxCPUs)
	case p.Stride < 0:
		return fmt.Errorf("stride %d (must be >= 0)", p.Stride)
	case p.Compute < 0 || p.Compute > MaxCompute:
		return fmt.Errorf("compute %d (must be 0..%d)", p.Compute, int64(MaxCompute))
	case p.Gap < 0 || p.Gap > MaxGap:
		return fmt.Errorf("gap %d (must be 0..%d)", p.Gap, int64(MaxGap))
	case p.WritePct < 0 || p.WritePct > 100:
		return fmt.Errorf("write percentage %d (must be 0..100)", p.WritePct)
	case !(p.ZipfS == 0 || p.ZipfS > 1) || math.IsInf(p.ZipfS, 0): // NaN too
		return fmt.Errorf("zipf exponent %g (must be finite and > 1)", p.ZipfS)
	case p.Victim != "" && !slices.Contains(victims, p.Victim) && !strings.HasPrefix(p.Victim, "lackey:"):
		return fmt.Errorf("victim %q (valid: %s, lackey:PATH)", p.Victim, strings.Join(victims, ", "))
	}
	return nil
}

// SetMetric records a workload-specific figure of the run (e.g. the hot
// set's miss rate after flushes).
func (e *Env) SetMetric(name string, v float64) {
	e.mu.Lock()
	if e.metrics == nil {
		e.metrics = map[string]float64{}
	}
	e.metrics[name] = v
	e.mu.Unlock()
}

// Metrics returns the figures recorded with SetMetric.
func (e *Env) Metrics() map[string]float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]float64{}
	for k, v := range e.metrics {
		out[k] = v
	}
	return out
}

// Fail records an error a CPU's body met (not a violation: the oracle
// counts those); the run reports it.
func (e *Env) Fail(format string, args ...any) {
	e.mu.Lock()
	e.errs = append(e.errs, fmt.Sprintf(format, args...))
	e.mu.Unlock()
}

// Errors returns what the bodies recorded with Fail.
func (e *Env) Errors() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.errs)
}

// Workload is one scenario.
type Workload struct {
	Name        string
	Description string
	MinCPUs     int
	Rounds      int    // default length
	Defaults    Params // default parameters
	// Orders names the racers of a race workload, the race's own order
	// first: Params.Order chooses which goes first (orders.go).
	Orders []string
	// Variants are the forms of the kernel code the workload runs, the
	// fixed form first (variants.go); nil for a workload without.
	Variants []Variant
	Setup    func(env *Env) (func(c *mmu.CPU), error)
}

// Prepare fills env's length and parameters from the workload's defaults
// and checks them against the machine.
func (w *Workload) Prepare(env *Env) error {
	if env.Rounds == 0 {
		env.Rounds = w.Rounds
	}
	if env.Rounds < 0 || env.Rounds > MaxRounds {
		return fmt.Errorf("%s: %d rounds (must be 1..%d)", w.Name, env.Rounds, MaxRounds)
	}
	env.Params = env.Params.merged(w.Defaults)
	if err := env.Params.Validate(); err != nil {
		return err
	}
	if err := w.resolveOrder(env); err != nil {
		return err
	}
	if err := w.resolveVariant(env); err != nil {
		return err
	}
	if env.Params.Small && w.Orders == nil {
		return fmt.Errorf("%s: no small version (only the race workloads have one)", w.Name)
	}
	if n := env.Machine.NumCPUs(); env.Params.Threads > n {
		return fmt.Errorf("%s: %d threads on %d CPUs", w.Name, env.Params.Threads, n)
	}
	if env.Params.Procs > max(env.Params.Threads, 1) {
		return fmt.Errorf("%s: %d processes for %d threads", w.Name, env.Params.Procs, env.Params.Threads)
	}
	return nil
}

var registry []*Workload

func register(w *Workload) { registry = append(registry, w) }

// All lists the workloads by name.
func All() []*Workload {
	out := slices.Clone(registry)
	slices.SortFunc(out, func(a, b *Workload) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Get returns the workload called name.
func Get(name string) (*Workload, error) {
	if p, ok := strings.CutPrefix(name, "lackey:"); ok {
		return Lackey(p)
	}
	for _, w := range registry {
		if w.Name == name {
			return w, nil
		}
	}
	var names []string
	for _, w := range All() {
		names = append(names, w.Name)
	}
	return nil, fmt.Errorf("unknown workload %q (valid: %s)", name, strings.Join(names, ", "))
}

// latch is a one-shot event CPUs wait on, in both schedulers.
type latch struct {
	set atomic.Bool
	q   sched.WaitQueue
}

func (l *latch) Set() { l.set.Store(true); l.q.Notify() }

func (l *latch) Wait(t *mm.Task, what string) { l.q.Wait(t.Thread(), what, l.set.Load) }

// Spin waits for the latch the way a program spinning on a volatile flag
// does, where that matters: in parallel mode it spins, since waking a
// blocked thread takes longer in host time than the races it starts last.
// In det mode it blocks: when the waiter runs again is then a choice of the
// scheduler, and a spinning thread would only hold the turn until the next
// priority change.
func (l *latch) Spin(t *mm.Task, what string) {
	if t.Thread().Det() {
		l.Wait(t, what)
		return
	}
	for !l.set.Load() {
		t.CPU().Yield()
		t.Thread().Relax()
	}
}

// latches makes n latches.
func latches(n int) []latch { return make([]latch, n) }

// isSegv reports whether err is the SIGSEGV a program expects to get.
func isSegv(err error) bool {
	_, ok := err.(*mm.SegvError)
	return ok
}

const page = 4096

// mapOrWait has thread 0 map the shared working set of pages pages and the
// other threads wait until it has; every thread gets its address in *buf.
func mapOrWait(env *Env, t *mm.Task, id int, pages int, mapped *latch, buf *uint64) error {
	if id != 0 {
		mapped.Wait(t, "working set mapped")
		return nil
	}
	va, err := t.Mmap(uint64(pages)*page, mm.ProtRead|mm.ProtWrite, false)
	*buf = va
	mapped.Set()
	return err
}

// accessMix makes one access of a synthetic thread: a store of val with
// probability writePct%, else a load.
func accessMix(t *mm.Task, r *rand.Rand, writePct int, va, val uint64) error {
	if r.IntN(100) < writePct {
		return t.Store(va, val)
	}
	_, err := t.Load(va)
	return err
}
