package mmu

import (
	"sync/atomic"

	"github.com/mmubench/mmubench/pagetable"
)

// OpStore marks an op of Replay as a store: bit 0 of a word's VA, which a
// valid word access has clear.
const OpStore = 1

// Replay makes the word accesses of ops in order, each as Load (its value
// discarded) or Store of val would, and returns how many it made: all of
// them, or those before the one that faulted, with its fault (nothing of
// that access happened: the kernel handles the fault and the caller
// replays from it). An op is a word's VA, with OpStore set for a store.
//
// It is the batched form of Load and Store for a trace replay, which reads
// no values: the L1 hits of a run of ops are counted in locals and written
// back once, where Load and Store update the counters and the hit log in
// memory on every access. The run stops, with everything written back, at
// the first op Load's fast path would not take, and that op goes through
// loadSlow or storeSlow, so the state every access sees — yield points,
// inbox, counters, LRU order — is what the same accesses made one by one
// would see.
func (c *CPU) Replay(ops []uint64, val uint64) (int, Fault) {
	t := c.l1
	for n := 0; n < len(ops); n++ {
		n = c.replayHits(t, ops, n, val)
		if n == len(ops) {
			break
		}
		va := ops[n] &^ OpStore
		var f Fault
		if ops[n]&OpStore != 0 {
			f = c.storeSlow(va, val)
		} else {
			_, f = c.loadSlow(va)
		}
		if f != FaultNone {
			return n, f
		}
	}
	return len(ops), FaultNone
}

// replayHits makes the ops from ops[n] on that are L1 hits Load's fast
// path takes, and returns the index of the first that is not (or
// len(ops)). Nothing else runs on this CPU meanwhile, so the hits the
// yield point's deadline and the hit log's room allow are counted up front,
// and the counters and the log's length are written back once.
func (c *CPU) replayHits(t *tlb, ops []uint64, n int, val uint64) int {
	run := ops[n : n+c.fastHitsAllowed(t, len(ops)-n)]
	tagBase, epoch, logged := c.tagBase, c.l1Epoch, t.nlog
	k := 0
	for ; k < len(run); k++ {
		op := run[k]
		if c.inboxN.Load() != 0 {
			break
		}
		va := op &^ OpStore
		if va&badVABits != 0 {
			break
		}
		tag := tagBase | va>>pagetable.PageShift // leafTag(c.asid, va): va is below 2^48
		i := t.firstWay(tag)
		if uint(i) >= uint(len(t.entries)) {
			break
		}
		e := &t.entries[i]
		if e.tag != tag || e.perm&(permUser|permStale) != permUser {
			break
		}
		if op&OpStore != 0 && e.perm&permWrite == 0 {
			break
		}
		if epoch != c.frees.Load() {
			break
		}
		t.hitLog[(logged+k)&(lruLogSize-1)] = uint16(i)
		p := &c.data[e.pfn*FrameWords+(va&0xfff)>>3]
		if op&OpStore != 0 {
			atomic.StoreUint64(p, val)
		} else {
			atomic.LoadUint64(p)
		}
	}
	var stores uint64
	for _, op := range run[:k] {
		stores += op & OpStore
	}
	t.nlog += k
	c.ctr.Accesses += uint64(k)
	c.ctr.L1Hits += uint64(k)
	c.ctr.Stores += stores
	c.ctr.Cycles += uint64(k) * c.cost.L1Hit
	return n + k
}

// fastHitsAllowed is how many of the next most accesses may be L1 hits of
// the fast path before its two counted tests fail: the cycle count reaching
// the yield point's deadline (each hit adds cost.L1Hit), and the hit log
// filling.
func (c *CPU) fastHitsAllowed(t *tlb, most int) int {
	cycles, due, cost := c.ctr.Cycles, c.nextDue, c.cost.L1Hit
	if cycles >= due {
		return 0
	}
	allowed := min(most, t.logCap-t.nlog)
	if cost != 0 {
		// Hit j (from 0) is taken while cycles + j*cost < due.
		d := due - cycles
		if k := d/cost + min(d%cost, 1); k < uint64(allowed) {
			allowed = int(k)
		}
	}
	return max(allowed, 0)
}
