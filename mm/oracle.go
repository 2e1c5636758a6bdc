package mm

import (
	"cmp"
	"fmt"
	"slices"
	"sync/atomic"

	gsync "gvisor.dev/gvisor/pkg/sync"

	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/pagetable"
)

// ViolationKind is a kind of broken user-visible semantics (DESIGN.md,
// "Correctness").
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
	// StaleTLB: mprotect, munmap or madvise returned while a CPU's TLB
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

// shadow is the oracle's per-mm view: the protections user programs may
// rely on (as of the last syscall return) and, per page, the last store and
// the kernel events that change what a load may return.
type shadow struct {
	prots atomic.Pointer[[]shadowVMA] // copy-on-write; replaced at syscall returns
	mu    gsync.Mutex
	pages map[uint64]*pageShadow
}

// inherit gives a forked child the parent's view: what the parent stored
// is what the child reads (until either writes).
func (s *shadow) inherit(parent *shadow) {
	s.prots.Store(parent.prots.Load())
	parent.mu.Lock()
	defer parent.mu.Unlock()
	s.pages = make(map[uint64]*pageShadow, len(parent.pages))
	for vpn, p := range parent.pages {
		c := *p
		s.pages[vpn] = &c
	}
}

// shadowVMA: [start, end) has protection prot since clock value since.
type shadowVMA struct {
	start, end uint64
	prot       Prot
	since      uint64
}

// pageShadow is what the oracle knows of one page.
type pageShadow struct {
	stored     bool
	off        uint64 // the word of the last store
	val        uint64
	storeStart uint64
	storeEnd   uint64
	zapAt      uint64 // last MADV_DONTNEED/munmap of the page (PTE cleared under the PTL)
	lazyAt     uint64 // last MADV_FREE pass over the page
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

func (s *shadow) page(va uint64) *pageShadow {
	vpn := va >> pagetable.PageShift
	if s.pages == nil {
		s.pages = map[uint64]*pageShadow{}
	}
	p := s.pages[vpn]
	if p == nil {
		p = &pageShadow{}
		s.pages[vpn] = p
	}
	return p
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

// store records a completed user store.
func (o *Oracle) store(t *Task, va, val, start uint64) {
	o.checkProt(t, va, true, start)
	end := o.k.Now()
	s := &t.mm.shadow
	s.mu.Lock()
	p := s.page(va)
	p.stored, p.off, p.val, p.storeStart, p.storeEnd = true, va&(pagetable.PageSize-1), val, start, end
	s.mu.Unlock()
}

// load checks a completed user load against the last store to the word
// and the kernel events since. It flags only definite losses: a load that
// overlaps a store or the kernel event that decides its value is not
// checked.
func (o *Oracle) load(t *Task, va, got, start uint64) {
	o.checkProt(t, va, false, start)
	s := &t.mm.shadow
	s.mu.Lock()
	p := s.pages[va>>pagetable.PageShift]
	var want []uint64
	var why string
	if p != nil {
		switch {
		case p.stored && p.off == va&(pagetable.PageSize-1) && p.storeEnd < start && p.zapAt < p.storeStart:
			switch {
			case p.lazyAt > p.storeEnd: // MADV_FREE after the store: reclaim may drop it
				want = []uint64{p.val, 0}
			case p.lazyAt < p.storeStart || p.lazyAt == 0:
				want, why = []uint64{p.val}, fmt.Sprintf("stored at clock %d", p.storeStart)
				if p.lazyAt != 0 {
					why += fmt.Sprintf(", after MADV_FREE at clock %d", p.lazyAt)
				}
			}
		case p.zapAt != 0 && p.zapAt < start && (!p.stored || p.storeEnd < p.zapAt):
			want, why = []uint64{0}, fmt.Sprintf("the page was zapped at clock %d", p.zapAt)
		}
	}
	s.mu.Unlock()
	if want == nil || slices.Contains(want, got) {
		return
	}
	o.report(LostWrite, t.cpu, t.name, va, t.frameOf(va),
		fmt.Sprintf("load at clock %d returned %#x, want %#x (%s)", start, got, want[0], why))
}

// noteZap records that the page of va was zapped (its contents are gone:
// it reads as zero from now on).
func (k *Kernel) noteZap(mm *MM, va uint64) {
	k.notePage(mm, va, func(p *pageShadow, now uint64) { p.zapAt = now })
}

// noteLazyfree records an MADV_FREE pass over the page of va.
func (k *Kernel) noteLazyfree(mm *MM, va uint64) {
	k.notePage(mm, va, func(p *pageShadow, now uint64) { p.lazyAt = now })
}

// notePage stamps a kernel event on the oracle's view of va's page with a
// fresh tick of the clock (the event's linearisation point).
func (k *Kernel) notePage(mm *MM, va uint64, set func(p *pageShadow, now uint64)) {
	now := k.tick()
	s := &mm.shadow
	s.mu.Lock()
	set(s.page(va), now)
	s.mu.Unlock()
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
