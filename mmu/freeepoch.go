package mmu

import "sync/atomic"

// The use-after-free oracle's check on the L1 hit path, without a load of
// the frame's generation while no frame is being freed.
//
// Phys counts its frees (Phys.frees: odd while a Free changes a generation,
// even otherwise), and every frame generation change after an entry's fill
// starts with a free (an entry filled with a free frame records a
// generation that never matches). So if the count is the even value it had
// when c last compared every L1 entry with its frame's generation
// (c.l1Epoch), no entry's frame has changed since, except those it marked
// permStale — and entries filled since, which checkEntry compared and
// marked at their first use (fill marks those of a fill no access uses).
// allowsL1 uses that; when the count has moved it compares generations, as
// the access path always did, and translate re-verifies the L1 now and then
// (l1Verify) so that the comparison-free test comes back. A reader that
// sees the count unmoved read it before any later Free began, so before its
// generation changed: its answer is the one a comparison at that moment
// gives, in parallel mode too.
//
// Invariant (between accesses): if c.l1Epoch == c.m.phys.frees, every L1
// entry either has permStale set or the generation of its frame. A mark is
// never wrong to set: generations never come back.

// permStale marks an L1 entry whose frame was freed or reused after its
// fill (or was free at the fill). It is not a permission: checkEntry and
// permSlow, which decide faults, never ask for it.
const permStale = 1 << 7

// l1EpochNone is an epoch the count never has when it is even: the L1
// must be re-verified.
const l1EpochNone = ^uint64(0)

// allowsL1 reports whether the L1 entry e allows an access that needs need
// (permUser, and permWrite for a store) through a frame unchanged since the
// fill. It is inlined into Load and Store.
func (c *CPU) allowsL1(e *tlbEntry, need uint8) bool {
	p := e.perm & (need | permStale)
	if c.l1Epoch == c.frees.Load() {
		return p == need
	}
	return p&need == need && e.gen == atomic.LoadUint32(&c.gens[e.pfn])
}

// markIfStale sets permStale on L1 entry e if its frame changed since the
// fill; it reports whether it had.
func (c *CPU) markIfStale(e *tlbEntry) bool {
	if e.gen != atomic.LoadUint32(&c.gens[e.pfn]) {
		e.perm |= permStale
		return true
	}
	return false
}

// l1MaybeVerify re-verifies the L1 if frames were freed since it last did
// and it has not done so within the last L1-size accesses, so that a run of
// frees costs at most one entry comparison per access.
func (c *CPU) l1MaybeVerify() {
	if c.l1Epoch != c.frees.Load() && c.ctr.Accesses >= c.l1VerifyAt {
		c.l1Verify()
	}
}

// l1Verify compares every L1 entry with its frame's generation, marks the
// stale ones, and records the free count it read first, unless a Free was
// changing a generation then (odd).
func (c *CPU) l1Verify() {
	epoch := c.frees.Load()
	if epoch&1 != 0 {
		epoch = l1EpochNone
	}
	t := c.l1
	for i, tag := range t.tags {
		if tag != 0 {
			c.markIfStale(&t.entries[i])
		}
	}
	c.l1Epoch = epoch
	c.l1VerifyAt = c.ctr.Accesses + uint64(len(t.tags))
}
