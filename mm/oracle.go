package mm

import (
	"cmp"
	"fmt"
	"slices"
	"sync/atomic"

	gsync "gvisor.dev/gvisor/pkg/sync"

	"github.com/mmubench/mmubench/mmu"
)

// ViolationKind is a kind of broken user-visible semantics (README, "How
// correctness is judged").
type ViolationKind int

const (
	// ProtectionViolation: an access succeeded after a syscall that removed
	// its permission (mprotect, munmap) had returned.
	ProtectionViolation ViolationKind = iota
	// LostWrite: a load returned something other than what the program's
	// semantics say must be there.
	LostWrite
	// UseAfterFree: an access reached a frame freed or reassigned after the
	// translation was cached.
	UseAfterFree
	// StaleTLB: mprotect, munmap, madvise or mremap returned while a CPU's TLB
	// still held a translation of the range that maps another frame than
	// the PTE or grants more than it (invariant.go), used or not.
	StaleTLB
	NumViolationKinds
)

var violationNames = [...]string{"protection", "lost-write", "use-after-free", "stale-tlb"}

func (v ViolationKind) String() string { return violationNames[v] }

// Event is the first occurrence of a violation, with what replays it.
type Event struct {
	Kind  ViolationKind `json:"kind"`
	CPU   int           `json:"cpu"`
	Task  string        `json:"task"`
	VA    uint64        `json:"va"`
	PFN   uint64        `json:"pfn"`
	Clock uint64        `json:"clock"` // the kernel's global clock
	Step  uint64        `json:"step"`  // the det scheduler's step (0 in parallel mode)
	What  string        `json:"what"`
}

func (e *Event) String() string {
	return fmt.Sprintf("%v on cpu%d (%s) va %#x pfn %#x at clock %d step %d: %s",
		e.Kind, e.CPU, e.Task, e.VA, e.PFN, e.Clock, e.Step, e.What)
}

// Oracle checks every user access against the program's semantics.
type Oracle struct {
	k      *Kernel
	counts [NumViolationKinds]atomic.Uint64
	mu     gsync.Mutex
	first  [NumViolationKinds]*Event
}

func newOracle(k *Kernel) *Oracle { return &Oracle{k: k} }

// Count is the number of violations of kind v.
func (o *Oracle) Count(v ViolationKind) uint64 { return o.counts[v].Load() }

// Total is the number of violations of every kind.
func (o *Oracle) Total() uint64 {
	var n uint64
	for i := range o.counts {
		n += o.counts[i].Load()
	}
	return n
}

// First is the first violation of kind v, or nil.
func (o *Oracle) First(v ViolationKind) *Event {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.first[v]
}

// FirstAny is the earliest first violation of any kind, or nil.
func (o *Oracle) FirstAny() *Event {
	o.mu.Lock()
	defer o.mu.Unlock()
	var best *Event
	for _, e := range o.first {
		if e != nil && (best == nil || e.Clock < best.Clock || (e.Clock == best.Clock && e.Step < best.Step)) {
			best = e
		}
	}
	return best
}

func (o *Oracle) report(kind ViolationKind, cpu *mmu.CPU, task string, va, pfn uint64, what string) {
	o.counts[kind].Add(1)
	if cpu.Tracing() {
		cpu.Trace(TraceViolation, va, pfn, fmt.Sprintf("%v (%s): %s", kind, task, what))
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.first[kind] == nil {
		o.first[kind] = &Event{Kind: kind, CPU: cpu.ID(), Task: task, VA: va, PFN: pfn,
			Clock: o.k.Now(), Step: o.k.m.Scheduler().Steps(), What: what}
	}
}

// StaleFrame implements mmu.Observer: an access through a stale TLB entry
// reached a freed or reassigned frame.
func (o *Oracle) StaleFrame(c *mmu.CPU, va, pfn uint64, write bool) {
	kind := "load"
	if write {
		kind = "store"
	}
	o.report(UseAfterFree, c, o.taskOn(c), va, pfn, kind+" through a TLB entry filled before the frame was freed")
}

// StaleTable implements mmu.Observer: a walk began at a page-table frame
// freed or reassigned after the walk cache cached it — a table freed
// without the flush of its walk-cache entries (pte_free_tlb's).
func (o *Oracle) StaleTable(c *mmu.CPU, va, pfn uint64, level int) {
	o.report(UseAfterFree, c, o.taskOn(c), va, pfn,
		fmt.Sprintf("walk through a walk-cache entry to the level-%d table in a frame freed since", level))
}

func (o *Oracle) taskOn(c *mmu.CPU) string {
	o.k.mu.Lock()
	defer o.k.mu.Unlock()
	for _, t := range o.k.tasks {
		if t.cpu == c {
			return t.name
		}
	}
	return ""
}

// syscallReturn publishes a syscall's effect on the protections at its
// return (and a grant of permission already at entry, see Mprotect): the
// new view first, then the clock moves, so an access that reads a clock at
// or past the publication sees the new view.
func (k *Kernel) syscallReturn(mm *MM, start, end uint64, prot Prot) {
	k.retMu.Lock()
	defer k.retMu.Unlock()
	now := k.clock.Load() + 1
	if mm != nil && end > start {
		var old []shadowVMA
		if p := mm.shadow.prots.Load(); p != nil {
			old = *p
		}
		next := make([]shadowVMA, 0, len(old)+2)
		for _, v := range old {
			if v.end <= start || v.start >= end {
				next = append(next, v)
				continue
			}
			if v.start < start {
				next = append(next, shadowVMA{v.start, start, v.prot, v.since})
			}
			if v.end > end {
				next = append(next, shadowVMA{end, v.end, v.prot, v.since})
			}
		}
		next = append(next, shadowVMA{start, end, prot, now})
		slices.SortFunc(next, func(a, b shadowVMA) int { return cmp.Compare(a.start, b.start) })
		mm.shadow.prots.Store(&next)
	}
	k.clock.Store(now)
}

// protAt is the protection of va as the program may rely on it, and since when.
func (s *shadow) protAt(va uint64) (Prot, uint64, bool) {
	p := s.prots.Load()
	if p == nil {
		return 0, 0, false
	}
	v := *p
	i, found := slices.BinarySearchFunc(v, va, func(x shadowVMA, va uint64) int {
		switch {
		case x.end <= va:
			return -1
		case x.start > va:
			return 1
		}
		return 0
	})
	if !found {
		return 0, 0, false
	}
	return v[i].prot, v[i].since, true
}

// checkProt reports an access that succeeded although a returned syscall
// had removed its permission before the access began.
func (o *Oracle) checkProt(t *Task, va uint64, write bool, start uint64) {
	prot, since, ok := t.mm.shadow.protAt(va)
	need := ProtRead
	if write {
		need = ProtWrite
	}
	if !ok || prot&need != 0 || start < since {
		return
	}
	kind := "load"
	if write {
		kind = "store"
	}
	o.report(ProtectionViolation, t.cpu, t.name, va, t.frameOf(va),
		fmt.Sprintf("%s succeeded at clock %d, after the mapping became %v at clock %d", kind, start, prot, since))
}

// frameOf names the frame an access at va just reached: the CPU's cached
// translation, else the page table's.
func (t *Task) frameOf(va uint64) uint64 {
	if pfn, ok := t.cpu.Probe(va); ok {
		return pfn
	}
	pte, _ := t.mm.tables.Lookup(va)
	return pte.PFN()
}
