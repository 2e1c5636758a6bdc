package mmu

// Hooks for systematic exploration: a litmus enumerator (package litmus) or
// any explorer that drives the CPUs itself, one step at a time, and
// enumerates the hardware's own nondeterminism — when each pending
// invalidation reaches each target, when a TLB fills speculatively —
// instead of leaving it to the delivery model's coin.
//
// How they are used: the machine runs in det mode, with the default
// delivery model (DeliverChance), and a sched.Chooser that always keeps
// the current thread and refuses every Chance; then no yield point
// switches goroutines and deliverDet never applies anything, so one
// goroutine may call every CPU's methods in turn outside Machine.Run, and
// every invalidation stays in the target's inbox until ApplyPending. A
// DSBISH must then be issued only when DSBComplete holds (it would
// otherwise block waiting for a goroutine that does not run). The
// snapshots below let the explorer return to a state and try another
// choice without re-executing from the start.
//
// Nothing here changes how a CPU behaves under Machine.Run; the hooks only
// read state, apply an invalidation that was already posted (what the
// delivery model does), fill a TLB from a walk (what a TLB miss does), or
// put back state a snapshot took.

// Invalidation is one invalidation posted to a CPU and not yet applied.
type Invalidation struct {
	Kind   TLBIKind
	ASID   uint16
	VA     uint64 // page-aligned
	Pages  uint64 // range operations: pages from VA
	Issuer int    // the issuing CPU's ID
}

// Pending appends to buf the invalidations posted to c that c has not yet
// applied, in posting order: the inbox (with DeliverHold, the held ones
// wait elsewhere and are not listed). Call it when c is not running.
func (c *CPU) Pending(buf []Invalidation) []Invalidation {
	c.inboxMu.Lock()
	defer c.inboxMu.Unlock()
	for _, inv := range c.inbox {
		buf = append(buf, Invalidation{Kind: inv.kind, ASID: inv.asid, VA: inv.va, Pages: inv.pages, Issuer: inv.issuer.id})
	}
	return buf
}

// NumPending is the number of invalidations posted to c and not yet
// applied (det mode): a lock-free test before Pending.
func (c *CPU) NumPending() int { return int(c.inboxN.Load()) }

// ApplyPending applies the i-th pending invalidation (in Pending's order)
// to c's TLBs now and acknowledges it to its issuer, as the delivery model
// would at one of c's yield points. It reports false if there is no i-th.
// It lets an explorer choose the delivery point of every invalidation on
// every target.
func (c *CPU) ApplyPending(i int) bool {
	c.inboxMu.Lock()
	if i < 0 || i >= len(c.inbox) {
		c.inboxMu.Unlock()
		return false
	}
	inv := c.inbox[i]
	c.inbox = append(c.inbox[:i], c.inbox[i+1:]...)
	c.inboxN.Store(int32(len(c.inbox)))
	c.inboxMu.Unlock()
	c.apply(inv)
	return true
}

// DSBComplete reports whether a DSB ISH on c would complete at once: every
// invalidation c issued has been applied on every other target (those
// still in c's own inbox the DSB applies itself). An explorer driving CPUs
// from one goroutine issues DSBISH only when it holds, since the DSB would
// otherwise wait for targets that only the explorer moves.
func (c *CPU) DSBComplete() bool {
	own := int64(0)
	c.inboxMu.Lock()
	for _, inv := range c.inbox {
		if inv.issuer == c {
			own++
		}
	}
	c.inboxMu.Unlock()
	for _, p := range c.pending {
		if p.issuer == c {
			own++
		}
	}
	return c.outstanding.Load() == own
}

// Prefetch is a speculative TLB fill: the architecture lets a TLB cache any
// translation that does not fault, at any time. If va's translation is not
// cached, Prefetch walks the tables as a TLB miss does (setting AF in
// memory if it is clear) and fills the TLBs from a valid leaf; it reports
// whether it filled. It counts a walk but no access, and is not a yield
// point. An explorer uses it to enumerate the fill points a real TLB may
// choose.
func (c *CPU) Prefetch(va uint64) bool {
	if va&badVABits != 0 {
		return false
	}
	tag := leafTag(c.asid, va)
	for _, t := range [...]*tlb{c.l1, c.l2} {
		if t != nil && (t.find(tag) >= 0 || t.find(globalLeafTag(va)) >= 0) {
			return false
		}
	}
	var e tlbEntry
	if !c.walkAndFill(va, &e) {
		return false
	}
	c.fills++
	c.fill(e)
	return true
}

// Cached is one translation held in a CPU's TLBs, as a state hash or a
// trace sees it.
type Cached struct {
	Where    uint8  // 1 = L1, 2 = L2, 3 = walk cache
	Tag      uint64 // the packed tag: kind, global, ASID, VA prefix
	PFN      uint64 // output frame (walk cache: the next table's frame)
	Desc     uint64 // physical address of the leaf descriptor
	Gen      uint32 // the frame's generation when filled
	Perm     uint8  // cached permissions (user, write, DBM)
	Level    uint8
	Writable bool // a store through it touches no descriptor
	DBM      bool // a store through it, if not Writable, makes the hardware dirty the descriptor
}

// VA is the lowest virtual address the entry covers.
func (x Cached) VA() uint64 { return tagVA(x.Tag) }

// AppendCached appends every valid entry of c's TLBs (L1, L2, walk cache)
// to buf, in way order. Replacement state is not included: with no
// capacity evictions it does not change what the CPU will do.
func (c *CPU) AppendCached(buf []Cached) []Cached {
	for w, t := range [...]*tlb{c.l1, c.l2, c.wc} {
		if t == nil {
			continue
		}
		for i, tag := range t.tags {
			if tag == 0 {
				continue
			}
			e := &t.entries[i]
			buf = append(buf, Cached{Where: uint8(w + 1), Tag: tag, PFN: e.pfn, Desc: e.desc, Gen: e.gen,
				Perm: e.perm &^ permStale, Level: e.level, Writable: e.perm&permWrite != 0, DBM: e.perm&permDBM != 0})
		}
	}
	return buf
}

// Snapshot is a copy of a CPU's translation state: its TLBs with their
// replacement state, and the invalidations posted to it or issued by it
// and not yet applied. Counters and cost-model state are not part of it. A
// Snapshot is reused by later Saves, so that an explorer can keep one per
// depth without allocating.
type Snapshot struct {
	l1, l2, wc  tlbSnapshot
	inbox       []inval
	pending     []pendingInval
	outstanding int64
}

type tlbSnapshot struct {
	tags         []uint64
	entries      []tlbEntry
	stamps       []uint64
	plru         []uint64
	index        []uint32
	links        []lruLink
	nlog         int
	hitLog       [lruLogSize]uint16
	clock        uint64
	lhead, ltail int32
	rng          uint64
	n            int
}

// Save copies c's translation state into s. Call it when c is not running.
func (c *CPU) Save(s *Snapshot) {
	s.l1.save(c.l1)
	s.l2.save(c.l2)
	s.wc.save(c.wc)
	c.inboxMu.Lock()
	s.inbox = append(s.inbox[:0], c.inbox...)
	c.inboxMu.Unlock()
	s.pending = append(s.pending[:0], c.pending...)
	s.outstanding = c.outstanding.Load()
}

// Restore puts back the state Save copied into s (s stays valid for more
// Restores). The snapshot must come from this CPU.
func (c *CPU) Restore(s *Snapshot) {
	s.l1.restore(c.l1)
	s.l2.restore(c.l2)
	s.wc.restore(c.wc)
	c.l1Epoch = l1EpochNone // the restored L1 is verified afresh (freeepoch.go)
	c.inboxMu.Lock()
	c.inbox = append(c.inbox[:0], s.inbox...)
	c.inboxN.Store(int32(len(c.inbox)))
	c.inboxMu.Unlock()
	c.pending = append(c.pending[:0], s.pending...)
	c.outstanding.Store(s.outstanding)
}

func (s *tlbSnapshot) save(t *tlb) {
	if t == nil {
		return
	}
	s.tags = append(s.tags[:0], t.tags...)
	s.entries = append(s.entries[:0], t.entries...)
	s.stamps = append(s.stamps[:0], t.stamps...)
	s.plru = append(s.plru[:0], t.plru...)
	s.index = append(s.index[:0], t.index...)
	s.links = append(s.links[:0], t.links...)
	s.clock, s.lhead, s.ltail, s.rng, s.n = t.clock, t.lhead, t.ltail, t.rng, t.n
	s.nlog, s.hitLog = t.nlog, t.hitLog
}

func (s *tlbSnapshot) restore(t *tlb) {
	if t == nil {
		return
	}
	copy(t.tags, s.tags)
	copy(t.entries, s.entries)
	copy(t.stamps, s.stamps)
	copy(t.plru, s.plru)
	copy(t.index, s.index)
	copy(t.links, s.links)
	t.clock, t.lhead, t.ltail, t.rng, t.n = s.clock, s.lhead, s.ltail, s.rng, s.n
	t.nlog, t.hitLog = s.nlog, s.hitLog
}
