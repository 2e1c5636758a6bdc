package mm

import (
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/pagetable"
)

// lockPTE finds the PTE that maps pfn through the folio's rmap and locks
// its PTL (page_vma_mapped_walk). It returns ok=false if the folio is not
// mapped (any more). The caller unlocks rmapLock and the PTL via unlock.
func (t *Task) lockPTE(pfn uint64) (mm *MM, va uint64, slot pagetable.Slot, unlock func(), ok bool) {
	mm, va = t.k.folios[pfn].Mapping()
	if mm == nil {
		return nil, 0, pagetable.Slot{}, nil, false
	}
	mm.rmapLock.RLock(t.th)
	slot, found := mm.tables.SlotOf(va)
	if !found {
		mm.rmapLock.RUnlock(t.th)
		return nil, 0, pagetable.Slot{}, nil, false
	}
	ptl := mm.ptl(slot.Addr >> pagetable.PageShift)
	ptl.Lock(t.th)
	pte := slot.Load()
	if !present(pte) || pte.PFN() != pfn {
		ptl.Unlock(t.th)
		mm.rmapLock.RUnlock(t.th)
		return nil, 0, pagetable.Slot{}, nil, false
	}
	return mm, va, slot, func() { ptl.Unlock(t.th); mm.rmapLock.RUnlock(t.th) }, true
}

// FolioReferenced tests and clears the young state of the folio's PTE
// (folio_referenced → ptep_clear_flush_young). arm64 issues the TLBI for a
// young PTE without the trailing DSB: the worst case is a CPU that keeps
// using the young entry for a while.
func (t *Task) FolioReferenced(pfn uint64) bool {
	mm, va, slot, unlock, ok := t.lockPTE(pfn)
	if !ok {
		return false
	}
	defer unlock()
	for {
		pte := slot.Load()
		if !pte.Valid() || !pte.Young() {
			return false
		}
		t.cpu.Yield()
		if slot.CompareAndSwap(pte, pte.MkOld()) {
			t.FlushTLBPageNosync(mm, va)
			return true
		}
	}
}

// TryToUnmap unmaps a folio that reclaim has isolated (try_to_unmap →
// try_to_unmap_one). With batch (TTU_BATCH_FLUSH) and a policy that defers,
// the flush is left to the task's batch; otherwise it is done at once
// (ptep_clear_flush). A swap-backed folio's PTE becomes a swap entry for
// slot. A clean lazy-free folio is discarded (its PTE cleared); one that
// was written again is remapped and made swap-backed, and unmapping fails.
// The mapping's folio reference is dropped; the caller's isolation
// reference keeps the frame until after the batch flush.
func (t *Task) TryToUnmap(pfn uint64, slot int, batch bool) bool {
	mm, va, s, unlock, ok := t.lockPTE(pfn)
	if !ok {
		return false
	}
	defer unlock()
	// No flush_tlb_batched_pending here: this is the batching side.
	t.cpu.Yield()
	var pteval pagetable.PTE
	if batch && t.k.batch.ShouldDefer(mm) {
		pteval = s.Swap(0) // ptep_get_and_clear
		t.setTLBUBCFlushPending(mm, pteval, va)
	} else {
		pteval = s.Swap(0) // ptep_clear_flush
		t.FlushTLBPage(mm, va)
	}
	// The PTE's dirty state moves to the folio.
	if pteval.Dirty() {
		t.k.FolioMarkDirty(pfn)
	}
	f := &t.k.folios[pfn]
	if f.Flags()&FolioSwapBacked == 0 { // MADV_FREE'd
		if t.k.FolioTestDirty(pfn) {
			// Written since MADV_FREE: keep it.
			t.cpu.Yield()
			s.Store(pteval)
			t.k.FolioSetSwapBacked(pfn)
			t.k.Stats.Redirtied.Add(1)
			return false
		}
		t.k.Stats.Discarded.Add(1)
	} else {
		t.k.swap.mu.Lock()
		t.k.swap.cache[slot] = pfn // add_to_swap put it in the swap cache
		t.k.swap.mu.Unlock()
		t.cpu.Yield()
		s.Store(swapPTE(slot))
	}
	f.unmapRmap()
	t.k.Stats.Unmapped.Add(1)
	t.k.FolioPut(pfn)
	return true
}

// AllocSwapSlot reserves a swap slot for a folio about to be unmapped
// (add_to_swap; the data is written by Pageout).
func (k *Kernel) AllocSwapSlot() (int, error) {
	s := &k.swap
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.free)
	if n == 0 {
		return 0, ErrSwapFull
	}
	slot := s.free[n-1]
	s.free = s.free[:n-1]
	s.used++
	return slot, nil
}

// FreeSwapSlot releases a slot reserved for a folio that stayed mapped.
func (k *Kernel) FreeSwapSlot(slot int) { k.swapFree(slot) }

// Pageout writes folio pfn to its swap slot (pageout → swap_writepage).
// Reclaim calls TryToUnmapFlushDirty first, so no CPU can still write the
// frame; a policy that gets that wrong loses the write, and the oracle
// sees it when the page comes back.
func (k *Kernel) Pageout(t *Task, pfn uint64, slot int) {
	s := &k.swap
	s.mu.Lock()
	if s.slots[slot] == nil {
		s.slots[slot] = new([mmu.FrameWords]uint64)
	}
	buf := s.slots[slot]
	s.mu.Unlock()
	t.cpu.Yield()
	copyFrame(buf, k.phys.Words(pfn))
	k.folios[pfn].setFlag(FolioDirty, false)
	k.Stats.WrittenBack.Add(1)
}
