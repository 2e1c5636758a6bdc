package mmu

import (
	"fmt"

	"github.com/mmubench/mmubench/pagetable"
)

// inval is one TLB invalidation in flight from its issuer to one target (a
// DVM message, in the interconnect's terms).
type inval struct {
	kind   TLBIKind
	asid   uint16
	va     uint64 // page-aligned
	pages  uint64 // RVALE1: number of pages from va
	issuer *CPU
	marked bool // issued by flush_tlb_batched_pending (MarkPendingFlush)
	ipi    bool // an x86 shootdown IPI (FlushTLBMulti): the target runs the flush in an interrupt
}

type pendingInval struct {
	inval
	due uint64 // target cycle count at which it is applied
}

// MaxRangePages bounds one range TLBI (RVALE1IS: NUM up to 31, SCALE up to 3
// gives (31+1)*2^(5*3+1) pages; we accept any count up to this).
const MaxRangePages = 32 << 16

// TLBI VALE1IS: invalidate last-level entries for va in asid, on every CPU.
func (c *CPU) TLBIVALE1IS(asid uint16, va uint64) { c.tlbi(VALE1IS, asid, va, 1) }

// TLBI VAE1IS: invalidate entries at all levels (walk cache too) for va.
func (c *CPU) TLBIVAE1IS(asid uint16, va uint64) { c.tlbi(VAE1IS, asid, va, 1) }

// TLBI ASIDE1IS: invalidate every non-global entry of asid, on every CPU.
func (c *CPU) TLBIASIDE1IS(asid uint16) { c.tlbi(ASIDE1IS, asid, 0, 0) }

// TLBI VMALLE1IS: invalidate everything, on every CPU.
func (c *CPU) TLBIVMALLE1IS() { c.tlbi(VMALLE1IS, 0, 0, 0) }

// TLBI RVALE1IS: invalidate last-level entries for pages [va, va+pages*4K)
// in asid, on every CPU (FEAT_TLBIRANGE).
func (c *CPU) TLBIRVALE1IS(asid uint16, va, pages uint64) { c.tlbi(RVALE1IS, asid, va, pages) }

// TLBI VALE1: the local form of VALE1IS (this CPU only).
func (c *CPU) TLBIVALE1(asid uint16, va uint64) { c.tlbi(VALE1, asid, va, 1) }

// TLBI VAE1: the local form of VAE1IS.
func (c *CPU) TLBIVAE1(asid uint16, va uint64) { c.tlbi(VAE1, asid, va, 1) }

// TLBI ASIDE1: the local form of ASIDE1IS.
func (c *CPU) TLBIASIDE1(asid uint16) { c.tlbi(ASIDE1, asid, 0, 0) }

// TLBI VMALLE1: the local form of VMALLE1IS.
func (c *CPU) TLBIVMALLE1() { c.tlbi(VMALLE1, 0, 0, 0) }

// TLBI RVALE1: the local form of RVALE1IS.
func (c *CPU) TLBIRVALE1(asid uint16, va, pages uint64) { c.tlbi(RVALE1, asid, va, pages) }

// TLBI issues one operation of kind, for code that picks the kind at run
// time (the kernel's __tlbi and __tlbi_user), with the operands the kind's
// own method passes: 0 for what it does not take, 1 page for a by-VA one.
func (c *CPU) TLBI(kind TLBIKind, asid uint16, va, pages uint64) {
	if kind >= NumTLBIKinds {
		c.m.fault.set(fmt.Errorf("cpu%d issued an unknown TLBI kind %d", c.id, kind))
		return
	}
	c.tlbi(kind, asid, va, pages)
}

// tlbi issues one operation: it posts an invalidation to each target and
// returns at once. Nothing is complete until this CPU executes a DSB.
func (c *CPU) tlbi(kind TLBIKind, asid uint16, va, pages uint64) {
	c.yieldVisible()
	if kind.Broadcast() && !c.m.cfg.Arch.Broadcast() {
		c.m.fault.set(fmt.Errorf("cpu%d issued TLBI %s on %s: %w (a policy or kernel path that needs it cannot run there)", c.id, kind, c.m.cfg.Arch, ErrNoBroadcast))
		return
	}
	c.ctr.TLBI[kind]++
	c.ctr.Cycles += c.cost.TLBIIssue
	inv := inval{kind: kind, asid: asid, va: va &^ (pagetable.PageSize - 1), pages: min(pages, MaxRangePages), issuer: c, marked: c.markFlush}
	c.traceInval(EvTLBI, inv)
	if !kind.Broadcast() {
		c.sinceDSBLocal++
		c.outstanding.Add(1)
		c.post(inv)
		return
	}
	c.sinceDSBBcast++
	cost := c.dvmCost(kind)
	c.sinceDSBCost += cost
	c.dvmBusy += cost
	// A CPU that finished has no translations left to invalidate (it
	// emptied its TLBs when it went offline): it acknowledges at once.
	targets := c.targets[:0]
	for _, t := range c.m.cpus {
		if !t.offline.Load() {
			targets = append(targets, t)
		}
	}
	c.targets = targets
	c.outstanding.Add(int64(len(targets)))
	for _, t := range targets {
		t.post(inv)
	}
}

// goOffline retires a CPU whose body returned: it applies what is addressed
// to it and drops every translation, so later broadcasts need not reach it.
// Invalidations posted while it went offline are still served (it keeps
// serving kicks until the run ends).
func (c *CPU) goOffline() {
	c.offline.Store(true)
	c.applyAll()
	c.each((*tlb).invalidateAll)
}

// post queues inv for c and kicks c, in case it is blocked.
func (c *CPU) post(inv inval) {
	c.inboxMu.Lock()
	c.inbox = append(c.inbox, inv)
	c.inboxN.Store(int32(len(c.inbox)))
	c.inboxMu.Unlock()
	c.thread.Kick()
}

// takeInbox removes and returns everything posted to c.
func (c *CPU) takeInbox(buf []inval) []inval {
	c.inboxMu.Lock()
	buf = append(buf, c.inbox...)
	c.inbox = c.inbox[:0]
	c.inboxN.Store(0)
	c.inboxMu.Unlock()
	return buf
}

// deliverDet is the det-mode delivery model: each pending invalidation is
// applied at this yield point with the configured chance, drawn from the
// scheduler so that it replays (or, with DeliverHold, as deliverHold says).
func (c *CPU) deliverDet() {
	if c.m.cfg.DetDelivery == DeliverHold {
		c.deliverHold()
		return
	}
	num, den := c.m.cfg.DeliverNum, c.m.cfg.DeliverDen
	for _, inv := range c.takeInboxIf(func(inval) bool { return c.thread.Chance(num, den) }) {
		c.apply(inv)
	}
}

// deliverHold is the det delivery model for systematic exploration: when
// this CPU first sees an invalidation, one scheduler choice (a Chance: true
// means hold) applies it at once or holds it until its issuer waits for it
// in a DSB — the latest the architecture allows. So each invalidation is
// one binary choice, not one per yield point, and both extremes are
// reachable. A held invalidation is also applied when this CPU blocks or
// finishes (its service work), as in the other models.
func (c *CPU) deliverHold() {
	for _, inv := range c.takeInbox(nil) {
		if c.thread.Chance(1, 2) {
			c.pending = append(c.pending, pendingInval{inval: inv})
			c.traceInval(EvHold, inv)
		} else {
			c.apply(inv)
		}
	}
	keep := c.pending[:0]
	for _, p := range c.pending {
		if p.issuer.inDSB.Load() {
			c.apply(p.inval)
		} else {
			keep = append(keep, p)
		}
	}
	c.pending = keep
}

// takeInboxIf removes and returns the inbox entries pick chooses, in order,
// leaving the rest.
func (c *CPU) takeInboxIf(pick func(inval) bool) []inval {
	c.inboxMu.Lock()
	defer c.inboxMu.Unlock()
	keep := c.inbox[:0]
	var taken []inval
	for _, inv := range c.inbox {
		if pick(inv) {
			taken = append(taken, inv)
		} else {
			keep = append(keep, inv)
		}
	}
	c.inbox = keep
	c.inboxN.Store(int32(len(keep)))
	return taken
}

// deliverParallel is the parallel-mode delivery model: each invalidation is
// due a random number of own cycles in [0, Latency] after this CPU first
// sees it.
func (c *CPU) deliverParallel() {
	if c.inboxN.Load() != 0 {
		lat := c.m.cfg.Latency
		for _, inv := range c.takeInbox(nil) {
			var d uint64
			if lat > 0 {
				d = c.rng.Uint64N(lat + 1)
			}
			c.pending = append(c.pending, pendingInval{inval: inv, due: c.ctr.Cycles + d})
		}
	}
	next := c.baseDue()
	keep := c.pending[:0]
	for _, p := range c.pending {
		if p.due <= c.ctr.Cycles {
			c.apply(p.inval)
		} else {
			keep = append(keep, p)
			next = min(next, p.due)
		}
	}
	c.pending = keep
	c.nextDue = next
}

// applyAll applies everything addressed to c now. It is c's service work
// while c is blocked or finished, so that no DSB waits on it forever.
func (c *CPU) applyAll() {
	for _, p := range c.pending {
		c.apply(p.inval)
	}
	c.pending = c.pending[:0]
	c.nextDue = c.baseDue()
	for _, inv := range c.takeInbox(nil) {
		c.apply(inv)
	}
}

// applyOwn applies, at once, what c itself posted to its own inbox: a DSB
// completes the issuer's own invalidations on its own TLB without waiting.
func (c *CPU) applyOwn() {
	for _, inv := range c.takeInboxIf(func(inv inval) bool { return inv.issuer == c }) {
		c.apply(inv)
	}
	kept := c.pending[:0]
	for _, p := range c.pending {
		if p.issuer == c {
			c.apply(p.inval)
		} else {
			kept = append(kept, p)
		}
	}
	c.pending = kept
}

// apply removes what inv names from c's TLBs and acknowledges it to the
// issuer. Only c's goroutine calls it.
func (c *CPU) apply(inv inval) {
	c.traceInval(EvApply, inv)
	if inv.ipi {
		c.ctr.Cycles += c.cost.IPIHandler // the shootdown interrupt runs on this CPU
	}
	c.countApplied(c.invalidate(inv))
	if inv.issuer.outstanding.Add(-1) == 0 {
		inv.issuer.thread.Wake() // a DSB may wait for this
	}
}

// countApplied counts an applied invalidation that removed n entries.
func (c *CPU) countApplied(n int) {
	c.ctr.InvalsApplied++
	c.ctr.EntriesRemoved += uint64(n)
}

// invalidate removes what inv names from c's TLBs and returns how many
// entries it removed.
func (c *CPU) invalidate(inv inval) int {
	if inv.marked {
		c.removedBuf = c.removedBuf[:0]
		c.setRemoved(&c.removedBuf)
	}
	var n int
	switch inv.kind {
	case VALE1IS, VALE1:
		n = c.dropVA(inv.asid, inv.va, false)
	case VAE1IS, VAE1:
		n = c.dropVA(inv.asid, inv.va, true)
	case ASIDE1IS, ASIDE1:
		n = c.each(func(t *tlb) int { return t.invalidateASID(inv.asid) })
	case VMALLE1IS, VMALLE1:
		n = c.each((*tlb).invalidateAll)
	case RVALE1IS, RVALE1:
		if inv.ipi {
			n = c.dropPagesWalks(inv.asid, inv.va, inv.pages) // INVLPG per page
		} else {
			n = c.dropRange(inv.asid, inv.va, inv.pages)
		}
	default:
		panic(fmt.Sprintf("mmu: unknown TLBI kind %d", inv.kind))
	}
	if inv.marked {
		c.setRemoved(nil)
		c.recordFlushed(c.removedBuf)
	}
	return n
}

// setRemoved has c's TLBs collect the entries they remove into buf (nil:
// stop).
func (c *CPU) setRemoved(buf *[]tlbEntry) {
	c.l1.removed = buf
	if c.l2 != nil {
		c.l2.removed = buf
	}
	if c.wc != nil {
		c.wc.removed = buf
	}
}

// each applies f to every TLB structure of c (walk cache included).
func (c *CPU) each(f func(*tlb) int) int {
	n := f(c.l1)
	if c.l2 != nil {
		n += f(c.l2)
	}
	if c.wc != nil {
		n += f(c.wc)
	}
	return n
}

// dropVA removes the leaf entries for va (the ASID's and any global one) and,
// for a non-last-level operation, the walk-cache entries on va's path.
func (c *CPU) dropVA(asid uint16, va uint64, walks bool) int {
	leaf, global := leafTag(asid, va), globalLeafTag(va)
	n := c.l1.invalidateTag(leaf) + c.l1.invalidateTag(global)
	if c.l2 != nil {
		n += c.l2.invalidateTag(leaf) + c.l2.invalidateTag(global)
	}
	if walks && c.wc != nil {
		for l := 0; l < 3; l++ {
			n += c.wc.invalidateTag(walkTag(asid, l, va))
		}
	}
	return n
}

// dropRange removes leaf entries for pages [va, va+pages*4K) of asid.
func (c *CPU) dropRange(asid uint16, va, pages uint64) int {
	if pages <= 64 {
		n := 0
		for i := uint64(0); i < pages; i++ {
			n += c.dropVA(asid, va+i<<pagetable.PageShift, false)
		}
		return n
	}
	end := va + pages<<pagetable.PageShift
	in := func(e *tlbEntry) bool {
		if tagKind(e.tag) != 0 || (!tagIsGlobal(e.tag) && tagASID(e.tag) != asid) {
			return false
		}
		v := tagVA(e.tag)
		return v >= va && v < end
	}
	n := c.l1.invalidateMatch(in)
	if c.l2 != nil {
		n += c.l2.invalidateMatch(in)
	}
	return n
}

// DSBISH is DSB ISH: it waits until every TLBI this CPU issued has been
// applied on every target. It does nothing for other CPUs' TLBIs. Its cost
// is CostModel's formula: a round trip acknowledged by every CPU, this
// CPU's own operations, and the queue of the machine's broadcast traffic.
func (c *CPU) DSBISH() {
	c.yieldVisible()
	c.ctr.DSBs++
	wait := c.cost.DSB + c.sinceDSBLocal*c.cost.LocalTLBI
	if c.sinceDSBBcast > 0 {
		rt := c.dvmRoundTrip()
		wait += rt + c.sinceDSBCost + c.dvmQueueWait(rt)
		c.dvmBusy += rt // the Sync occupies the DVM node for its round trip
	}
	c.sinceDSBBcast, c.sinceDSBCost, c.sinceDSBLocal = 0, 0, 0
	c.ctr.DSBWaitCycles += wait
	c.ctr.Cycles += wait
	if c.m.tracer != nil {
		c.Trace(EvDSB, 0, 0, fmt.Sprintf("%s: %d of this CPU's invalidations outstanding", c.m.SyncName(), c.outstanding.Load()))
	}
	c.applyOwn()
	if c.outstanding.Load() != 0 {
		c.inDSB.Store(true) // a held invalidation is due now (deliverHold)
		c.thread.BlockCharged(c.dsbWhat, c.complete)
		c.inDSB.Store(false)
	}
	if c.m.tracer != nil {
		c.Trace(EvDSBDone, 0, 0, c.m.SyncName()+" complete")
	}
}

// DSBISHST is DSB ISHST: it orders this CPU's earlier descriptor stores
// before later TLBIs. Descriptor stores are sequentially consistent here, so
// it only costs cycles; it does not complete TLBIs.
func (c *CPU) DSBISHST() {
	if c.m.cfg.Arch.X86() {
		return // x86 has no such barrier: stores are ordered before INVLPGB and IPIs
	}
	c.yieldVisible()
	c.ctr.DSBSTs++
	c.ctr.DSBWaitCycles += c.cost.DSB
	c.ctr.Cycles += c.cost.DSB
}

// complete reports whether every invalidation c issued has been applied.
func (c *CPU) complete() bool { return c.outstanding.Load() == 0 }
