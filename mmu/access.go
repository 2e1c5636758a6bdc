package mmu

import (
	"sync/atomic"

	"github.com/mmubench/mmubench/pagetable"
)

// Permission bits of a cached translation (tlbEntry.perm).
const (
	permUser  = 1 << iota // AP[1]: EL0 may access
	permWrite             // AP[2] clear: writes allowed without a descriptor update
	permDBM               // DBM: a write may clear AP[2] in memory (hardware dirty state)
)

// badVABits are the bits a word access's VA must not have set.
const badVABits = 7 | ^uint64(pagetable.MaxVA-1)

// staleGen marks a generation recorded for a frame that was free when the
// entry was filled: it never equals a real generation, so every access
// through the entry takes the slow path and is reported.
const staleGen = 1 << 31

// Load reads the 64-bit word at va in the current address space, as an EL0
// load (LDR). A fault is returned, not taken: the kernel above handles it.
func (c *CPU) Load(va uint64) (uint64, Fault) {
	c.yieldPoint()
	e, f := c.translate(va, false)
	if f != FaultNone {
		return 0, f
	}
	return atomic.LoadUint64(&c.data[e.pfn*FrameWords+(va&0xfff)>>3]), FaultNone
}

// Store writes the 64-bit word at va in the current address space, as an
// EL0 store (STR).
func (c *CPU) Store(va, val uint64) Fault {
	c.yieldPoint()
	c.ctr.Stores++
	e, f := c.translate(va, true)
	if f != FaultNone {
		return f
	}
	atomic.StoreUint64(&c.data[e.pfn*FrameWords+(va&0xfff)>>3], val)
	return FaultNone
}

// Probe returns the frame a cached translation of va leads to, without
// counting an access or touching replacement state: the oracle uses it to
// name the frame an access through a stale entry reached. Call it on the
// CPU's own goroutine.
func (c *CPU) Probe(va uint64) (uint64, bool) {
	tag := leafTag(c.asid, va)
	for _, t := range [...]*tlb{c.l1, c.l2} {
		if t == nil {
			continue
		}
		if i := t.find(tag); i >= 0 {
			return t.entries[i].pfn, true
		}
	}
	return 0, false
}

// translate is the hardware's address translation for one access.
func (c *CPU) translate(va uint64, write bool) (*tlbEntry, Fault) {
	c.ctr.Accesses++
	if va&badVABits != 0 { // unaligned, or beyond 48 bits
		return nil, c.badAddress(va)
	}
	e := c.l1.lookup(leafTag(c.asid, va))
	if e != nil {
		c.ctr.L1Hits++
		c.ctr.Cycles += c.cost.L1Hit
	} else if e = c.l1Miss(va); e == nil {
		c.ctr.Faults[FaultTranslation]++
		return nil, FaultTranslation
	}
	need := uint8(permUser)
	if write {
		need |= permWrite
	}
	if e.perm&need != need {
		if e = c.permSlow(e, va, write); e == nil {
			return nil, c.lastFault(va)
		}
	}
	if e.gen != atomic.LoadUint32(&c.gens[e.pfn]) {
		c.staleFrame(e, va, write)
	}
	return e, FaultNone
}

func (c *CPU) badAddress(va uint64) Fault {
	f := FaultAlignment
	if va>>pagetable.VABits != 0 {
		f = FaultAddressSize
	}
	c.ctr.Faults[f]++
	return f
}

// l1Miss looks in the L2 TLB and then walks; it fills the TLBs from a valid
// leaf and returns the L1 entry, or nil on a translation fault.
func (c *CPU) l1Miss(va uint64) *tlbEntry {
	c.ctr.L1Misses++
	tag := leafTag(c.asid, va)
	if c.l2 != nil {
		if e := c.l2.lookup(tag); e != nil {
			c.ctr.L2Hits++
			c.ctr.Cycles += c.cost.L2Hit
			c.l1.insert(*e)
			return c.l1.lookup(tag)
		}
		c.ctr.L2Misses++
	}
	var was flushedEntry
	refill := len(c.flushed) != 0
	if refill {
		was, refill = c.flushedBefore(tag)
	}
	start := c.ctr.Cycles
	e, ok := c.walkAndFill(va)
	if !ok {
		return nil
	}
	if refill && e.pfn == was.pfn { // the flush removed a good translation
		c.ctr.FlushRefills++
		c.ctr.FlushLostCycles += c.ctr.Cycles - start
	}
	c.fills++
	c.fill(e)
	if c.m.tracer != nil {
		c.traceFill(va, e)
	}
	return c.l1.lookup(tag)
}

// fill installs a translation in L2 and L1.
func (c *CPU) fill(e tlbEntry) {
	if c.l2 != nil {
		c.l2.insert(e)
	}
	c.l1.insert(e)
}

// walkAndFill walks the tables for va, starting from the deepest walk-cache
// hit; it sets AF in memory if clear (TCR_EL1.HA) and caches the table
// descriptors it read. It returns the leaf translation.
func (c *CPU) walkAndFill(va uint64) (tlbEntry, bool) {
	mem := c.m.phys
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
		w := pagetable.WalkFrom(mem, table, level, va)
		c.ctr.Walks++
		c.ctr.WalkReads += uint64(w.Reads)
		c.ctr.Cycles += uint64(w.Reads) * c.cost.WalkLevel
		if c.wc != nil {
			// Every descriptor read above the last one was a table descriptor.
			for l := level; l < w.Level; l++ {
				next := w.Tables[l+1]
				c.wc.insert(tlbEntry{tag: walkTag(c.asid, l, va), pfn: next, gen: c.frameGen(next), level: uint8(l)})
			}
		}
		if !w.OK || w.PhysAddr(va)>>pagetable.PageShift >= uint64(len(c.gens)) {
			// No translation, or one to beyond physical memory (which the
			// hardware reports as an external abort: a fault all the same).
			return tlbEntry{}, false
		}
		pte := w.PTE
		if !pte.Young() {
			if !w.Slot.CompareAndSwap(pte, pte|pagetable.PTEAF) {
				continue // the descriptor changed under us: walk again
			}
			c.ctr.AFUpdates++
			pte |= pagetable.PTEAF
		}
		return c.entryFor(va, pte, w.Level, w.Slot.Addr), true
	}
}

// entryFor builds the cached form of leaf descriptor pte at level.
func (c *CPU) entryFor(va uint64, pte pagetable.PTE, level int, desc uint64) tlbEntry {
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
	return tlbEntry{tag: tag, pfn: pfn, desc: desc, gen: c.frameGen(pfn), perm: perm, level: uint8(level)}
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

// permSlow handles an access the cached permissions do not allow: the
// hardware dirty-state update of a DBM entry, or a permission fault. It
// returns the entry to use, or nil after recording the fault in c.fault.
func (c *CPU) permSlow(e *tlbEntry, va uint64, write bool) *tlbEntry {
	if e.perm&permUser == 0 || !write || e.perm&permDBM == 0 {
		c.fault = FaultPermission
		c.dropLocal(e.tag)
		return nil
	}
	// Hardware dirty state: atomically re-read the descriptor and clear
	// AP[2]. If the kernel changed it meanwhile, the cached entry is stale.
	slot := pagetable.SlotAt(c.m.phys, e.desc)
	for {
		old := slot.Load()
		switch {
		case !old.Valid() || (e.level == 3 && old.PFN() != e.pfn):
			c.fault = FaultTranslation
			c.dropLocal(e.tag)
			return nil
		case !old.DBM() || !old.User():
			c.fault = FaultPermission
			c.dropLocal(e.tag)
			return nil
		case !old.Rdonly():
			// Already dirty in memory (another CPU's update).
		case !slot.CompareAndSwap(old, old&^pagetable.PTERdonly):
			continue
		default:
			c.ctr.DirtyUpdates++
		}
		break
	}
	// Own TLBs: the entry is now writable.
	if l2 := c.l2; l2 != nil {
		if x := l2.lookup(e.tag); x != nil {
			x.perm |= permWrite
		}
	}
	e.perm |= permWrite
	return e
}

// lastFault counts and returns the fault permSlow recorded.
func (c *CPU) lastFault(va uint64) Fault {
	f := c.fault
	c.ctr.Faults[f]++
	return f
}

// dropLocal evicts a translation from this CPU's own TLBs. The architecture
// lets a TLB drop any entry at any time; the hardware does so for an entry
// that led to a fault, so the kernel's fixed-up descriptor is walked afresh.
func (c *CPU) dropLocal(tag uint64) {
	c.l1.invalidateTag(tag)
	if c.l2 != nil {
		c.l2.invalidateTag(tag)
	}
}

// staleFrame reports an access through an entry whose frame was freed or
// reused after the fill.
func (c *CPU) staleFrame(e *tlbEntry, va uint64, write bool) {
	c.ctr.StaleFrameAccesses++
	if c.m.obs != nil {
		c.m.obs.StaleFrame(c, va, e.pfn, write)
	}
}

// staleTable reports a walk that started from a walk-cache entry whose
// table frame was freed or reused after the entry was filled: the walk
// read descriptors out of a frame that is no longer that table.
func (c *CPU) staleTable(va, pfn uint64, level int) {
	c.ctr.StaleTableWalks++
	if c.m.obs != nil {
		c.m.obs.StaleTable(c, va, pfn, level)
	}
}

// traceFill records a walk's fill of the translation of va.
func (c *CPU) traceFill(va uint64, e tlbEntry) {
	perm := "R"
	switch {
	case e.perm&permWrite != 0:
		perm = "RW"
	case e.perm&permDBM != 0:
		perm = "R, writable-clean (DBM)"
	}
	if e.perm&permUser == 0 {
		perm = "kernel only"
	}
	c.trace(TraceEvent{Kind: EvFill, VA: va &^ (pagetable.PageSize - 1), PFN: e.pfn, ASID: c.asid, Issuer: -1, Text: perm})
}
