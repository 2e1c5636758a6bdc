package mm

import (
	"fmt"
	"slices"
	"sync/atomic"

	gsync "gvisor.dev/gvisor/pkg/sync"

	"github.com/mmubench/mmubench/pagetable"
)

// The oracle's view of what a program may read back. Per 8-byte word it
// keeps the last store; per page, the last few kernel events that change
// what a load may return (effects: a zap by MADV_DONTNEED or munmap, an
// MADV_FREE pass), each stamped with the clock at its PTE change and tied
// to the system call that made it.
//
// A call's effect is complete for a thread once the call has returned, or
// once the thread's own call of the same kind visited the page's table
// after the change and returned (it saw what the change left and, under a
// correct policy, flushed for it: the nested gather, Nadav Amit's
// reproducer). Until then a racing access may legally go either way: a
// store racing another thread's in-flight MADV_FREE may be dropped, a load
// racing an in-flight MADV_DONTNEED may see the old contents. The oracle
// flags only what no legal order explains.

// shadow is the oracle's per-mm view: the protections user programs may
// rely on (as of the last syscall return) and, per page, stores and effects.
type shadow struct {
	prots atomic.Pointer[[]shadowVMA] // copy-on-write; replaced at syscall returns
	mu    gsync.Mutex
	pages map[uint64]*pageShadow
}

// shadowVMA: [start, end) has protection prot since clock value since.
type shadowVMA struct {
	start, end uint64
	prot       Prot
	since      uint64
}

// pageShadow is what the oracle knows of one page.
type pageShadow struct {
	words   map[uint16]wordShadow
	effects []effect // oldest first, at most maxEffects
}

// wordShadow is the last store to one word.
type wordShadow struct {
	val        uint64
	start, end uint64 // clock at the store's start and completion
	// raced: the store began while an effect on the page was not yet
	// complete for the storing thread, so the effect may still drop it.
	raced bool
}

type effectKind uint8

const (
	effZap  effectKind = iota // the page's contents are gone: it reads as zero
	effLazy                   // MADV_FREE: reclaim may discard the page until it is written again
)

// effect is one kernel event on a page.
type effect struct {
	kind effectKind
	at   uint64   // clock of the PTE change
	call *sysCall // the call that made it; nil: complete at once
}

// maxEffects bounds a page's effect history: an older effect matters only
// to a store older than every later one, and then those decide.
const maxEffects = 8

// doneFor reports whether e is complete for thread t at clock now.
func (e *effect) doneFor(t *Task, va, now uint64) bool {
	if e.call == nil || e.call.returned(now) {
		return true
	}
	if e.kind == effZap {
		return t.ownLaterVisit(va, e.at, now, callDontneed, callMunmap)
	}
	return t.ownLaterVisit(va, e.at, now, callFree)
}

// inherit gives a forked child the parent's view: what the parent stored
// is what the child reads (until either writes).
func (s *shadow) inherit(parent *shadow) {
	s.prots.Store(parent.prots.Load())
	parent.mu.Lock()
	defer parent.mu.Unlock()
	s.pages = make(map[uint64]*pageShadow, len(parent.pages))
	for vpn, p := range parent.pages {
		c := &pageShadow{words: make(map[uint16]wordShadow, len(p.words)), effects: slices.Clone(p.effects)}
		for w, ws := range p.words {
			c.words[w] = ws
		}
		s.pages[vpn] = c
	}
}

// page returns va's page record, creating it. Hold s.mu.
func (s *shadow) page(va uint64) *pageShadow {
	vpn := va >> pagetable.PageShift
	if s.pages == nil {
		s.pages = map[uint64]*pageShadow{}
	}
	p := s.pages[vpn]
	if p == nil {
		p = &pageShadow{words: map[uint16]wordShadow{}}
		s.pages[vpn] = p
	}
	return p
}

func wordOf(va uint64) uint16 { return uint16(va & (pagetable.PageSize - 1) >> 3) }

// store records a completed user store.
func (o *Oracle) store(t *Task, va, val, start uint64) {
	o.checkProt(t, va, true, start)
	end := o.k.Now()
	s := &t.mm.shadow
	s.mu.Lock()
	p := s.page(va)
	ws := wordShadow{val: val, start: start, end: end}
	for i := range p.effects {
		if e := &p.effects[i]; e.at < start && !e.doneFor(t, va, start) {
			ws.raced = true
		}
	}
	p.words[wordOf(va)] = ws
	s.mu.Unlock()
}

// load checks a completed user load against the last store to its word and
// the effects on the page. A load that overlaps that store is not checked.
func (o *Oracle) load(t *Task, va, got, start uint64) {
	o.checkProt(t, va, false, start)
	s := &t.mm.shadow
	s.mu.Lock()
	e := o.expect(t, s.pages[va>>pagetable.PageShift], va, start)
	s.mu.Unlock()
	if e.n == 0 || got == e.want[0] || (e.n == 2 && got == e.want[1]) {
		return
	}
	why := fmt.Sprintf("stored at clock %d", e.at)
	if e.zapped {
		why = fmt.Sprintf("the page was zapped at clock %d", e.at)
	}
	o.report(LostWrite, t.cpu, t.name, va, t.frameOf(va),
		fmt.Sprintf("load at clock %d returned %#x, want %#x (%s)", start, got, e.want[0], why))
}

// expectation is what a load may return: one of want[:n] (n == 0:
// anything), and why — the store at clock at, or (zapped) the zap then.
type expectation struct {
	want   [2]uint64
	n      int
	at     uint64
	zapped bool
}

// expect is what a load of va by t starting at clock start may return.
// Hold s.mu. It allocates nothing: it runs on every load.
func (o *Oracle) expect(t *Task, p *pageShadow, va, start uint64) expectation {
	if p == nil {
		return expectation{}
	}
	ws, stored := p.words[wordOf(va)]
	if stored && ws.end >= start {
		return expectation{} // overlaps the store
	}
	gone, maybe := false, false
	var goneAt uint64
	for i := range p.effects {
		e := &p.effects[i]
		switch {
		case e.at >= start:
			// after the load began: it may or may not see it
			if e.kind == effZap || stored {
				maybe = true
			}
		case stored && e.at < ws.start:
			// before the store: it matters only if the store raced it
		case stored && e.at <= ws.end:
			maybe = true // during the store: either order
		case e.kind == effLazy:
			maybe = true // after the store: reclaim may drop the page
		case e.doneFor(t, va, start):
			gone, goneAt = true, e.at
		default:
			maybe = true // an in-flight zap: the old contents may still show
		}
	}
	switch {
	case gone && !maybe:
		return expectation{n: 1, at: goneAt, zapped: true}
	case gone:
		if stored {
			return expectation{want: [2]uint64{0, ws.val}, n: 2}
		}
		return expectation{}
	case !stored:
		return expectation{}
	case maybe || ws.raced:
		return expectation{want: [2]uint64{ws.val, 0}, n: 2}
	}
	return expectation{want: [2]uint64{ws.val}, n: 1, at: ws.start}
}

// noteZap records that t (in its call in progress, if any) zapped the page
// of va in mm: its contents are gone, it reads as zero from now on.
func (t *Task) noteZap(mm *MM, va uint64) { t.k.noteEffect(mm, va, effZap, t.call) }

// noteLazyfree records an MADV_FREE pass of t's call over the page of va.
func (t *Task) noteLazyfree(mm *MM, va uint64) { t.k.noteEffect(mm, va, effLazy, t.call) }

// noteEffect stamps a kernel event on the oracle's view of va's page with a
// fresh tick of the clock (the event's linearisation point).
func (k *Kernel) noteEffect(mm *MM, va uint64, kind effectKind, call *sysCall) {
	now := k.tick()
	s := &mm.shadow
	s.mu.Lock()
	p := s.page(va)
	if len(p.effects) == maxEffects {
		p.effects = append(p.effects[:0], p.effects[1:]...)
	}
	p.effects = append(p.effects, effect{kind: kind, at: now, call: call})
	s.mu.Unlock()
}
