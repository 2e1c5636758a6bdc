package litmus

import (
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync/atomic"
	"time"

	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/pagetable"
)

// Options tune an exploration.
type Options struct {
	// Speculative enumerates speculative TLB fills: at any point, any CPU
	// whose thread may still access memory may fill the translation of any
	// location whose descriptor is valid with AF set. Off, TLBs fill only
	// on the accesses the program makes.
	Speculative bool
	// MaxStates bounds the distinct states explored (0: DefaultMaxStates);
	// a test that needs more is reported as unsupported rather than given
	// a verdict from a partial search.
	MaxStates int

	// noReduce turns every reduction off (local-first, eager deliveries,
	// fills and hashing of immutable translations), for tests that check
	// the reductions change no outcome.
	noReduce bool
	// observeAll makes every register a thread uses, every location, every
	// descriptor and every fault part of the final state, as if the
	// condition named them all: the tests use it to compare searches on
	// whole states.
	observeAll bool
}

// DefaultMaxStates is Options.MaxStates's default.
const DefaultMaxStates = 4_000_000

// DefaultOptions explores everything the model can do.
func DefaultOptions() Options { return Options{Speculative: true} }

// UnsupportedError says why a test was skipped.
type UnsupportedError struct {
	Test, What string
}

func (e *UnsupportedError) Error() string { return fmt.Sprintf("Unsupported %s: %s", e.Test, e.What) }

// frame is a saved state, one per depth of the search.
type frame struct {
	cpus  []mmu.Snapshot
	th    []threadState
	pte   []uint64
	cells []uint64 // data cells, in world.offs order × locations
	trans []transition
	pre   []preAct // the fills of trans's step variants
}

// explorer is a depth-first search of the world's state graph.
type explorer struct {
	w      *world
	opt    Options
	seen   map[[2]uint64]struct{}
	seeds  [2]maphash.Seed
	buf    []byte
	frames []*frame
	finals map[string]*final
	err    error
	cached []mmu.Cached
	pend   []mmu.Invalidation   // scratch
	pendOf [][]mmu.Invalidation // each CPU's, in the state settle left
	sorted []mmu.Invalidation   // scratch
	// transitions' scratch
	accessNext []int
	opts       [][]preAct
	choice     []int
	maxDepth   int
}

// final is one distinct final state.
type final struct {
	th  []threadState
	pte []uint64
	mem []uint64 // each location's word 0
}

// Run explores every execution of t and collects its final states. It
// returns an *UnsupportedError for a test the runner does not model.
func Run(t *Test, opt Options) (*Result, error) {
	start := time.Now()
	if t.Unsupported != "" {
		return nil, &UnsupportedError{t.Name, t.Unsupported}
	}
	if opt.MaxStates <= 0 {
		opt.MaxStates = DefaultMaxStates
	}
	if opt.observeAll {
		t = observeEverything(t)
	}
	w, err := newWorld(t)
	if err != nil {
		return nil, &UnsupportedError{t.Name, err.Error()}
	}
	w.observeAll = opt.observeAll
	e := &explorer{w: w, opt: opt, seen: make(map[[2]uint64]struct{}, 1<<12), finals: map[string]*final{},
		pendOf:     make([][]mmu.Invalidation, len(w.cpus)),
		seeds:      [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		accessNext: make([]int, len(w.th))}
	e.dfs(0)
	if e.err != nil {
		var ue *unsupportedError
		if errors.As(e.err, &ue) {
			return nil, &UnsupportedError{t.Name, ue.what}
		}
		return nil, e.err
	}
	return newResult(t, w, e, time.Since(start)), nil
}

// dfs explores from the current state; depth indexes the saved frames.
func (e *explorer) dfs(depth int) {
	for e.err == nil {
		if err := e.settle(); err != nil {
			e.err = err
			return
		}
		if e.allDone() {
			e.final()
			return
		}
		if !e.visit() {
			return
		}
		fr := e.frame(depth)
		e.transitions(fr)
		switch len(fr.trans) {
		case 0:
			return // every thread waits: no final state this way
		case 1:
			// A single choice needs no saved state: go on at this depth.
			if e.err = e.apply(fr, fr.trans[0]); e.err != nil {
				return
			}
			continue
		}
		e.save(fr)
		for i, tr := range fr.trans {
			if i > 0 {
				e.restore(fr)
			}
			if e.err = e.apply(fr, tr); e.err != nil {
				return
			}
			e.dfs(depth + 1)
			if e.err != nil {
				return
			}
		}
		return
	}
}

func (e *explorer) allDone() bool {
	for i := range e.w.th {
		if !e.w.th[i].done {
			return false
		}
	}
	return true
}

func (e *explorer) frame(depth int) *frame {
	for len(e.frames) <= depth {
		e.frames = append(e.frames, &frame{cpus: make([]mmu.Snapshot, len(e.w.cpus))})
	}
	e.maxDepth = max(e.maxDepth, depth)
	return e.frames[depth]
}

// save copies the current state into fr.
func (e *explorer) save(fr *frame) {
	w := e.w
	for i, c := range w.cpus {
		c.Save(&fr.cpus[i])
	}
	if len(fr.th) != len(w.th) {
		fr.th = make([]threadState, len(w.th))
	}
	for i := range w.th {
		f := fr.th[i].faults
		fr.th[i] = w.th[i]
		fr.th[i].faults = append(f[:0], w.th[i].faults...)
	}
	fr.pte = fr.pte[:0]
	for _, s := range w.lay.slot {
		fr.pte = append(fr.pte, uint64(s.Load()))
	}
	fr.cells = fr.cells[:0]
	for _, o := range w.offs {
		for l := range w.data {
			fr.cells = append(fr.cells, w.wordAt(l, o))
		}
	}
}

// restore puts back the state save copied into fr. Data cells tracked
// since then had never been written when fr was saved: they go back to 0.
func (e *explorer) restore(fr *frame) {
	w := e.w
	for i, c := range w.cpus {
		c.Restore(&fr.cpus[i])
	}
	for i := range w.th {
		f := w.th[i].faults
		w.th[i] = fr.th[i]
		w.th[i].faults = append(f[:0], fr.th[i].faults...)
	}
	for i, s := range w.lay.slot {
		s.Store(pagetable.PTE(fr.pte[i]))
	}
	n := len(w.data)
	for k, o := range w.offs {
		for l := range w.data {
			v := uint64(0)
			if k*n+l < len(fr.cells) {
				v = fr.cells[k*n+l]
			}
			atomic.StoreUint64(&w.data[l][o], v)
		}
	}
}

// final records the current state, every thread finished, as an outcome.
func (e *explorer) final() {
	w := e.w
	f := &final{th: make([]threadState, len(w.th))}
	for i := range w.th {
		f.th[i] = w.th[i]
		f.th[i].faults = slices.Clone(w.th[i].faults)
	}
	for _, s := range w.lay.slot {
		f.pte = append(f.pte, uint64(s.Load()))
	}
	for l := range w.data {
		f.mem = append(f.mem, w.wordAt(l, 0))
	}
	key := e.w.stateLine(f)
	if _, ok := e.finals[key]; !ok {
		e.finals[key] = f
	}
}

// observeEverything returns a copy of t whose locations line names every
// register its threads use and every location and descriptor.
func observeEverything(t *Test) *Test {
	c := *t
	c.Extra = slices.Clone(t.Extra)
	for i, th := range t.Threads {
		var used [zr]bool
		for r := range th.Init {
			used[r] = true
		}
		for _, in := range th.Instrs {
			for _, r := range []reg{in.rd, in.rn, in.src.r} {
				if r.n < zr {
					used[r.n] = true
				}
			}
		}
		for r, u := range used {
			if u {
				c.Extra = append(c.Extra, Loc{Kind: LReg, Thread: i, Reg: r})
			}
		}
	}
	for l := range t.Locs {
		c.Extra = append(c.Extra, Loc{Kind: LMem, Loc: l}, Loc{Kind: LPTE, Loc: l})
	}
	return &c
}
