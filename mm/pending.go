package mm

import (
	"slices"
	"sync/atomic"

	gsync "gvisor.dev/gvisor/pkg/sync"

	"github.com/mmubench/mmubench/pagetable"
)

// What flush_tlb_batched_pending could flush instead of the whole mm: the
// pages reclaim's pending batches cover. Linux keeps no such record
// (mm/rmap.c: "Tracking all mm's that have TLB batching in flight would be
// expensive during reclaim"); these are the two candidates the policies
// price.

// PendingRange records, per mm, exactly the pages that pending reclaim
// batches cover (the range-ideal policy: a lower bound on what flushing
// only the pending pages could cost, not something a kernel could afford —
// a set per mm and a list per reclaiming task, kept under locks that cost
// nothing here). A page is added before the mm's pending count is raised,
// so a flusher that saw the count sees the page; it is removed only when
// the batch that added it has completed (the reclaimer's own DSB), never by
// a flusher, so that a second flusher cannot find the set empty while the
// first one's TLBIs are still in flight.
type PendingRange struct {
	mu    gsync.Mutex
	pages map[uint64]int // va -> number of pending batches covering it
}

// Add records va for one more pending batch.
func (r *PendingRange) Add(va uint64) {
	r.mu.Lock()
	if r.pages == nil {
		r.pages = map[uint64]int{}
	}
	r.pages[va]++
	r.mu.Unlock()
}

// Remove drops one batch's record of va once that batch completed.
func (r *PendingRange) Remove(va uint64) {
	r.mu.Lock()
	if r.pages[va]--; r.pages[va] <= 0 {
		delete(r.pages, va)
	}
	r.mu.Unlock()
}

// Snapshot returns the pages pending batches cover, in VA order, or
// all=true once they reach MaxDVMOps (flush the whole mm instead).
func (r *PendingRange) Snapshot() (pages []uint64, all bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pages) >= MaxDVMOps {
		return nil, true
	}
	for va := range r.pages {
		pages = append(pages, va)
	}
	slices.Sort(pages)
	return pages, false
}

// PendingInterval is what a kernel could keep per mm instead: the interval
// [lo, hi] of the pages pending batches cover, with a generation that every
// widening bumps. Each operation is one 128-bit compare-and-swap on arm64
// (CASP, with FEAT_LSE), on a cache line that reclaimers and flushers write
// from different CPUs: Widen reports whether the line came from another CPU
// (the caller charges a cache-line transfer). Here a host mutex stands in
// for the CASP.
//
// Its lifetime is tied to mm->tlb_flush_batched, not to the batches'
// completion: a reclaimer does not know which mms its batch touched (that
// would be the per-task set Linux avoids), so it cannot clear anything when
// its DSB completes. Instead flush_tlb_batched_pending consumes it: the
// flusher snapshots it, flushes it with its own TLBIs and DSB, and clears it
// only if no widening happened meanwhile (the generation is unchanged) —
// pages added after the snapshot stay for the next flusher, which the
// pending count (raised after the widening) sends. Pages whose batch
// completed on its own are flushed again once: the price of not tracking
// completion.
type PendingInterval struct {
	mu      gsync.Mutex
	lo, hi  uint64 // page-aligned VAs; valid while gen != cleared
	gen     uint64
	cleared uint64 // gen at the last clear: lo, hi mean nothing when equal
	owner   atomic.Int32
}

// Widen adds the page of va (on behalf of CPU cpu) and reports whether the
// line was last written by another CPU.
func (p *PendingInterval) Widen(cpu int, va uint64) (transfer bool) {
	va &^= pagetable.PageSize - 1
	p.mu.Lock()
	if p.gen == p.cleared {
		p.lo, p.hi = va, va
	} else {
		p.lo, p.hi = min(p.lo, va), max(p.hi, va)
	}
	p.gen++
	p.mu.Unlock()
	return p.owner.Swap(int32(cpu)+1) != int32(cpu)+1
}

// Snapshot returns the interval and its generation; ok is false if it is
// empty.
func (p *PendingInterval) Snapshot() (lo, hi, gen uint64, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lo, p.hi, p.gen, p.gen != p.cleared
}

// Clear empties the interval if its generation is still gen (nothing was
// added since the snapshot), and reports whether the line was last written
// by another CPU.
func (p *PendingInterval) Clear(cpu int, gen uint64) (transfer bool) {
	p.mu.Lock()
	if p.gen == gen {
		p.cleared = gen
	}
	p.mu.Unlock()
	return p.owner.Swap(int32(cpu)+1) != int32(cpu)+1
}
