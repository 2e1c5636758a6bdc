package mmu

import (
	"sync/atomic"

	"github.com/mmubench/mmubench/pagetable"
)

// The table walk of a TLB miss. It is pagetable.WalkFrom's walk, done here
// over the machine's own frames: the descriptor words are read in place
// (no Memory interface call per level) and the outcome stays in the
// caller's frame, since on a walk-bound load the walk is most of an
// access's cost. TestWalkMatchesPagetable holds it to WalkFrom's result on
// every kind of descriptor.

// tableWalk is the outcome of walkFrom: the fields of pagetable.Walk the
// access path uses, with the last descriptor's physical address for its Slot.
type tableWalk struct {
	pte    pagetable.PTE // the last descriptor read: the leaf if ok, else the faulting one
	desc   uint64        // its physical address (0 if a table frame was missing)
	level  int           // its level
	reads  int           // descriptors read
	tables [pagetable.Levels]uint64
	ok     bool
}

// walkFrom is pagetable.WalkFrom(c.m.phys, table, level, va) into w, which
// must be zero: the same reads, in the same order, each atomic and once.
func (c *CPU) walkFrom(w *tableWalk, table uint64, level int, va uint64) {
	w.level = level
	if level < 0 || level >= pagetable.Levels || va >= pagetable.MaxVA {
		return
	}
	frames := uint64(len(c.gens))
	for {
		w.level = level
		if table >= frames { // Phys.Words is nil: WalkFrom's zero PTE and Slot
			w.pte, w.desc = 0, 0
			return
		}
		w.tables[level] = table
		w.desc = table<<pagetable.PageShift + uint64(pagetable.Index(va, level))*8
		w.pte = pagetable.PTE(atomic.LoadUint64(&c.data[w.desc>>3]))
		w.reads++
		switch {
		case !w.pte.Valid():
			return
		case level == pagetable.Levels-1:
			w.ok = w.pte.IsPage()
			return
		case w.pte.IsTable(level):
			table = w.pte.PFN()
			level++
		default:
			w.ok = w.pte.IsBlock(level)
			return
		}
	}
}

// walkAndFill walks the tables for va, starting from the deepest walk-cache
// hit; it sets AF in memory if clear (TCR_EL1.HA) and caches the table
// descriptors it read. It builds the leaf translation in *e (in the
// caller's frame, which the fills then read in place) and reports whether
// there is one.
func (c *CPU) walkAndFill(va uint64, e *tlbEntry) bool {
	for {
		table, level := c.root, 0
		if c.wc != nil {
			for l := 2; l >= 0; l-- {
				if w := c.wc.lookup(walkTag(c.asid, l, va)); w != nil {
					table, level = w.pfn, l+1
					c.ctr.WalkCacheHits++
					c.ctr.Cycles += c.cost.WalkCacheHit
					if w.gen != atomic.LoadUint32(&c.gens[w.pfn]) {
						c.staleTable(va, w.pfn, l+1)
					}
					break
				}
			}
		}
		var w tableWalk
		c.walkFrom(&w, table, level, va)
		c.ctr.Walks++
		c.ctr.WalkReads += uint64(w.reads)
		c.ctr.Cycles += uint64(w.reads) * c.cost.WalkLevel
		if c.wc != nil {
			// Every descriptor read above the last one was a table descriptor.
			for l := level; l < w.level; l++ {
				next := w.tables[l+1]
				c.wc.insert(tlbEntry{tag: walkTag(c.asid, l, va), pfn: next, gen: c.frameGen(next), level: uint8(l)})
			}
		}
		if !w.ok {
			return false
		}
		if off := pagetable.LevelSize(w.level) - 1; (w.pte.Addr()&^off|va&off)>>pagetable.PageShift >= uint64(len(c.gens)) {
			// A translation to beyond physical memory, which the hardware
			// reports as an external abort: a fault all the same.
			return false
		}
		pte := w.pte
		if !pte.Young() {
			if !atomic.CompareAndSwapUint64(&c.data[w.desc>>3], uint64(pte), uint64(pte|pagetable.PTEAF)) {
				continue // the descriptor changed under us: walk again
			}
			c.ctr.AFUpdates++
			pte |= pagetable.PTEAF
		}
		c.entryFor(e, va, pte, w.level, w.desc)
		return true
	}
}

// entryFor builds in *e the cached form of leaf descriptor pte at level.
func (c *CPU) entryFor(e *tlbEntry, va uint64, pte pagetable.PTE, level int, desc uint64) {
	pfn := pte.PFN()
	if level < 3 { // a block: the 4 KiB page of it that va is in
		span := uint64(1) << (9 * uint(3-level))
		pfn = pfn&^(span-1) + (va>>pagetable.PageShift)&(span-1)
	}
	var perm uint8
	if pte.User() {
		perm |= permUser
	}
	if !pte.Rdonly() {
		perm |= permWrite
	}
	if pte.DBM() {
		perm |= permDBM
	}
	tag := leafTag(c.asid, va)
	if !pte.NG() {
		tag = globalLeafTag(va)
	}
	*e = tlbEntry{tag: tag, pfn: pfn, desc: desc, gen: c.frameGen(pfn), perm: perm, level: uint8(level)}
}

// frameGen is the generation an entry filled now records for frame pfn:
// a free frame's is marked so that it never matches (every use reports).
func (c *CPU) frameGen(pfn uint64) uint32 {
	gen := atomic.LoadUint32(&c.gens[pfn])
	if gen&1 == 0 {
		gen |= staleGen
	}
	return gen
}
