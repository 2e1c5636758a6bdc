// Package workloads is what the emulated user threads (and kernel threads)
// do: the race scenarios of the patch threads, each a miniature of its
// thread, and (to come) synthetic access patterns and the threads'
// benchmarks.
//
// A workload's Setup runs before the machine starts and returns the body
// every CPU runs; system calls happen inside the bodies, on the CPUs.
package workloads

import (
	"fmt"
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

	mu   gsync.Mutex
	errs []string
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
	Rounds      int // default length
	Setup       func(env *Env) (func(c *mmu.CPU), error)
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

// latches makes n latches.
func latches(n int) []latch { return make([]latch, n) }

// isSegv reports whether err is the SIGSEGV a program expects to get.
func isSegv(err error) bool {
	_, ok := err.(*mm.SegvError)
	return ok
}

const page = 4096
