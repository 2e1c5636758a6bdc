package mm

import (
	"fmt"

	"github.com/mmubench/mmubench/pagetable"
)

// The encoding of mm->tlb_flush_batched (mm/rmap.c): pending batched
// flushes in bits 0-14, flushed ones from bit 16.
const (
	TLBFlushBatchFlushedShift = 16
	TLBFlushBatchPendingMask  = 1<<(TLBFlushBatchFlushedShift-1) - 1
	TLBFlushBatchPendingLarge = TLBFlushBatchPendingMask / 2
)

// setTLBUBCFlushPending records a deferred flush of va after try_to_unmap
// cleared its PTE (set_tlb_ubc_flush_pending): the policy issues (or
// records) the invalidation, the task's batch needs a flush, and the mm's
// pending count goes up — reset to 1 pending, 0 flushed when it grows large,
// so that pending never catches up with flushed by wrapping.
func (t *Task) setTLBUBCFlushPending(mm *MM, pteval pagetable.PTE, va uint64) {
	if !pteAccessible(mm, pteval) { // no TLB can hold it
		return
	}
	t.k.batch.AddPending(t, mm, va)
	t.UBC.FlushRequired = true
	IncTLBFlushBatched(&mm.tlbFlushBatched)
	// A dirty PTE may be cached writable: writeback must flush first.
	if pteval.Dirty() {
		t.UBC.Writable = true
	}
}

// pteAccessible reports whether a TLB may hold a translation for pte
// (arm64's pte_accessible): a valid PTE, or — while a gather or
// change_prot_numa on mm has a flush pending (mm_tlb_flush_pending) — any
// present one, since a PROT_NONE or other change whose flush has not
// completed leaves the old, valid translation cached. Without
// FixMigrateTLBFlushPending (numa.go) it is pte_valid alone.
func pteAccessible(mm *MM, pte pagetable.PTE) bool {
	if mm.mmTLBFlushPending() && !mm.k.Reverted(FixMigrateTLBFlushPending) {
		return present(pte)
	}
	return pte.Valid()
}

// atomicInt32 is the part of atomic.Int32 the counter encoding needs.
type atomicInt32 interface {
	Load() int32
	Add(int32) int32
	CompareAndSwap(old, new int32) bool
}

// IncTLBFlushBatched raises the pending count of a tlb_flush_batched word,
// resetting it to pending=1, flushed=0 once pending passes
// TLBFlushBatchPendingLarge.
func IncTLBFlushBatched(v atomicInt32) {
	for {
		batch := v.Load()
		if batch&TLBFlushBatchPendingMask > TLBFlushBatchPendingLarge {
			if v.CompareAndSwap(batch, 1) {
				return
			}
			continue
		}
		v.Add(1)
		return
	}
}

// BatchedPending reports the pending and flushed counts of a
// tlb_flush_batched word.
func BatchedPending(batch int32) (pending, flushed int32) {
	return batch & TLBFlushBatchPendingMask, batch >> TLBFlushBatchFlushedShift
}

// FlushTLBBatchedPending makes sure no TLB entry that a pending reclaim
// batch has yet to flush can still be used for mm (flush_tlb_batched_pending).
// Callers hold a PTL of mm; if pending != flushed the policy flushes and the
// flushed count catches up — unless a new batch arrived meanwhile, whose
// flush must not be lost.
func (t *Task) FlushTLBBatchedPending(mm *MM) {
	batch := mm.tlbFlushBatched.Load()
	pending, flushed := BatchedPending(batch)
	if pending == flushed {
		return
	}
	t.k.Stats.BatchedPending.Add(1)
	t.traceKernel(fmt.Sprintf("flush_tlb_batched_pending: %d batches pending, %d flushed: %s", pending, flushed, t.k.batch.Name()))
	mm.pendingFlushes.Add(1)
	t.cpu.MarkPendingFlush(true) // its TLBIs' side effect is counted (flush refills)
	t.k.batch.FlushPending(t, mm)
	t.cpu.MarkPendingFlush(false)
	mm.tlbFlushBatched.CompareAndSwap(batch, pending|pending<<TLBFlushBatchFlushedShift)
}

// TryToUnmapFlush ends the task's reclaim batch (try_to_unmap_flush).
func (t *Task) TryToUnmapFlush() {
	if !t.UBC.FlushRequired {
		return
	}
	t.traceKernel("try_to_unmap_flush: the reclaim batch ends (arch_tlbbatch_flush)")
	t.k.batch.Flush(t)
	t.UBC.FlushRequired, t.UBC.Writable = false, false
}

// TryToUnmapFlushDirty ends the batch if a dirty PTE was unmapped in it
// (try_to_unmap_flush_dirty): reclaim calls it before writing a page back,
// so that no CPU can still dirty the page during writeback.
func (t *Task) TryToUnmapFlushDirty() {
	if t.UBC.Writable {
		t.TryToUnmapFlush()
	}
}

// lockTable takes the PTL of the level-3 table lt, whose PTEs [lo, hi) the
// caller is about to walk, and then makes sure no pending reclaim batch
// leaves a stale TLB entry for the mm (pte_offset_map_lock followed by
// flush_tlb_batched_pending, as change_pte_range, zap_pte_range and the
// madvise walkers do). The visit is recorded for the checks of the
// caller's system call. It returns the unlock.
func (t *Task) lockTable(mm *MM, lt pagetable.LeafTable, lo, hi int) func() {
	ptl := mm.ptl(lt.PFN)
	ptl.Lock(t.th)
	t.locked, t.lockedOK = lt.Base, true
	t.FlushTLBBatchedPending(mm)
	t.lockedOK = false
	t.noteVisit(ptl, lt, lo, hi)
	return func() { ptl.Unlock(t.th) }
}
