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
//
// Load and Store begin with the common case written out on one straight
// path (see hitL1): no yield point due, and an L1 hit allowed through a
// frame no Free has touched since the L1 was verified, counted by
// countHitL1. Everything else goes to loadSlow or storeSlow, the
// same steps in full, which find the same state. One path ending in a
// return with a single call after it leaves the hit path without spills
// or merges, and lets the profile of cmd/mmubench/default.pgo inline Load
// and Store into their hot callers.
func (c *CPU) Load(va uint64) (uint64, Fault) {
	t := c.l1
	if c.inboxN.Load() == 0 && c.ctr.Cycles < c.nextDue && va&badVABits == 0 && t.nlog < t.logCap {
		tag := c.tagBase | va>>pagetable.PageShift // leafTag(c.asid, va): va is below 2^48
		if i := t.firstWay(tag); uint(i) < uint(len(t.entries)) {
			e := &t.entries[i]
			if e.tag == tag && e.perm&(permUser|permStale) == permUser && c.l1Epoch == c.frees.Load() {
				c.countHitL1(int(i))
				return atomic.LoadUint64(&c.data[e.pfn*FrameWords+(va&0xfff)>>3]), FaultNone
			}
		}
	}
	return c.loadSlow(va)
}

// loadSlow is Load in full: the yield point, the L1 hit in all its cases,
// or translate.
func (c *CPU) loadSlow(va uint64) (uint64, Fault) {
	c.yieldPoint()
	i, e := c.hitL1(va)
	if e != nil && c.allowsL1(e, permUser) {
		c.countHitL1(i)
	} else {
		var f Fault
		if e, f = c.translate(va, false); f != FaultNone {
			return 0, f
		}
	}
	return atomic.LoadUint64(&c.data[e.pfn*FrameWords+(va&0xfff)>>3]), FaultNone
}

// Store writes the 64-bit word at va in the current address space, as an
// EL0 store (STR). Its common case is Load's, written out again: a shared
// helper is too big for Go to inline without the profile, and a call on the
// hit path costs more than the copy (TestAccessGolden holds both to
// loadSlow and storeSlow's answers).
func (c *CPU) Store(va, val uint64) Fault {
	t := c.l1
	if c.inboxN.Load() == 0 && c.ctr.Cycles < c.nextDue && va&badVABits == 0 && t.nlog < t.logCap {
		tag := c.tagBase | va>>pagetable.PageShift // leafTag(c.asid, va): va is below 2^48
		if i := t.firstWay(tag); uint(i) < uint(len(t.entries)) {
			e := &t.entries[i]
			if e.tag == tag && e.perm&(permUser|permWrite|permStale) == (permUser|permWrite) && c.l1Epoch == c.frees.Load() {
				c.countHitL1(int(i))
				c.ctr.Stores++
				atomic.StoreUint64(&c.data[e.pfn*FrameWords+(va&0xfff)>>3], val)
				return FaultNone
			}
		}
	}
	return c.storeSlow(va, val)
}

// storeSlow is Store in full (see loadSlow).
func (c *CPU) storeSlow(va, val uint64) Fault {
	c.yieldPoint()
	c.ctr.Stores++
	i, e := c.hitL1(va)
	if e != nil && c.allowsL1(e, permUser|permWrite) {
		c.countHitL1(i)
	} else {
		var f Fault
		if e, f = c.translate(va, true); f != FaultNone {
			return f
		}
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

// hitL1, allowsL1 and countHitL1 are the common case of an access, inlined
// into loadSlow and storeSlow, where det mode's accesses (whose yield point
// is always due) and hits while frames were freed find it; Load and Store
// write the case of a verified L1 out:
// va's translation is at the first probe of a fully associative LRU L1's
// index (the default L1) — hitL1 returns its way and entry — and allows the
// access (need: permUser, and permWrite for a store) through a frame
// unchanged since the fill — allowsL1 (freeepoch.go). countHitL1 then counts the hit and
// stamps the way as translate would. Otherwise nothing has changed, and the
// caller runs translate, which finds the same state.
func (c *CPU) hitL1(va uint64) (int, *tlbEntry) {
	t := c.l1
	if va&badVABits != 0 || t.nlog >= t.logCap {
		return 0, nil // (a full hit log is translate's to flush)
	}
	tag := c.tagBase | va>>pagetable.PageShift // leafTag(c.asid, va): va is below 2^48
	i := t.index[t.home(tag)] - 1              // firstWay, written out to keep hitL1 within Go's inlining budget
	if uint(i) >= uint(len(t.entries)) || t.entries[i].tag != tag {
		return 0, nil
	}
	return int(i), &t.entries[i]
}

// countHitL1 records the L1 hit of way i, as translate does: useLRU, whose
// log hitL1 saw not full.
func (c *CPU) countHitL1(i int) {
	t := c.l1
	t.hitLog[t.nlog&(lruLogSize-1)] = uint16(i)
	t.nlog++
	c.ctr.Accesses++
	c.ctr.L1Hits++
	c.ctr.Cycles += c.cost.L1Hit
}

// translate is the hardware's address translation for one access, whole:
// Load and Store call it for what hitL1 does not take (a miss, a chained
// index probe, a set associative L1 or another policy, a fault, a stale
// frame). Its own L1 lookup is written out rather than called, since on the
// L2-hit path it runs on every access; misses, permission updates and
// faults, and stale frames go on to translateMiss and checkEntry.
func (c *CPU) translate(va uint64, write bool) (*tlbEntry, Fault) {
	c.l1MaybeVerify()
	c.ctr.Accesses++
	if va&badVABits != 0 { // unaligned, or beyond 48 bits
		return nil, c.badAddress(va)
	}
	t := c.l1
	tag := c.tagBase | va>>pagetable.PageShift // leafTag(c.asid, va): va is below 2^48
	var i int
	if t.index != nil {
		// A fully associative L1 (the default): the first probe of the
		// hash index here, a longer chain in probe.
		w := t.firstWay(tag)
		if uint(w) >= uint(len(t.entries)) {
			return c.translateMiss(va, write)
		}
		if i = int(w); t.entries[i].tag != tag {
			if i = t.probe(tag); i < 0 {
				return c.translateMiss(va, write)
			}
		}
	} else if i = t.probe(tag); i < 0 {
		return c.translateMiss(va, write)
	}
	if t.repl == ReplLRU && t.links == nil { // t.touch(i), a set associative LRU L1's case written out
		t.clock++
		t.stamps[i] = t.clock
	} else {
		t.touch(i)
	}
	c.ctr.L1Hits++
	c.ctr.Cycles += c.cost.L1Hit
	e := &t.entries[i]
	need := uint8(permUser)
	if write {
		need |= permWrite
	}
	if e.perm&need != need || e.gen != atomic.LoadUint32(&c.gens[e.pfn]) {
		return c.checkEntry(e, va, write)
	}
	return e, FaultNone
}

// translateMiss is translate after an L1 miss: the L2 TLB, the walk.
func (c *CPU) translateMiss(va uint64, write bool) (*tlbEntry, Fault) {
	e := c.l1Miss(va)
	if e == nil {
		c.ctr.Faults[FaultTranslation]++
		return nil, FaultTranslation
	}
	return c.checkEntry(e, va, write)
}

// checkEntry checks the access against the L1 entry e that serves it: a
// permission the entry lacks (the hardware dirty update, or a fault), then
// the frame's generation (the use-after-free oracle), marking e if it
// changed. Every L1 entry a fill made reaches it at its first use, or is
// dropped by permSlow.
func (c *CPU) checkEntry(e *tlbEntry, va uint64, write bool) (*tlbEntry, Fault) {
	need := uint8(permUser)
	if write {
		need |= permWrite
	}
	if e.perm&need != need {
		if e = c.permSlow(e, va, write); e == nil {
			return nil, c.lastFault(va)
		}
	}
	if c.markIfStale(e) {
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
			i := c.l1.insertNew(e, nil, nil) // translate just missed tag in L1
			return &c.l1.entries[i]
		}
		c.ctr.L2Misses++
	}
	var was flushedEntry
	refill := len(c.flushed) != 0
	if refill {
		was, refill = c.flushedBefore(tag)
	}
	start := c.ctr.Cycles
	var e tlbEntry
	if !c.walkAndFill(va, &e) {
		return nil
	}
	if refill && e.pfn == was.pfn { // the flush removed a good translation
		c.ctr.FlushRefills++
		c.ctr.FlushLostCycles += c.ctr.Cycles - start
	}
	c.fills++
	if e.tag != tag {
		// A global translation (nG clear). The L1 lookups are by the
		// ASID's tag, which a global entry does not match, so there is no
		// L1 entry for this access to return: l1Miss returns nil (a
		// translation fault), as the lookup of tag after the fill always
		// did.
		c.fill(e)
		if c.m.tracer != nil {
			c.traceFill(va, e)
		}
		return nil
	}
	// Both TLBs just missed tag, and nothing but a fill adds a tag.
	if c.l2 != nil {
		c.l2.insertNew(&e, nil, nil)
	}
	i := c.l1.insertNew(&e, nil, nil)
	if c.m.tracer != nil {
		c.traceFill(va, e)
	}
	return &c.l1.entries[i]
}

// fill installs a translation in L2 and L1 (and marks the L1 entry if its
// frame is free: no access may check it, freeepoch.go).
func (c *CPU) fill(e tlbEntry) {
	if c.l2 != nil {
		c.l2.insert(e)
	}
	c.l1.insert(e)
	c.markIfStale(&c.l1.entries[c.l1.find(e.tag)])
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
