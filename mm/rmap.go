package mm

import (
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/pagetable"
)

// lockPTE finds the PTE of va in mm and locks its PTL if it still maps pfn
// (page_vma_mapped_walk), on t's time (an rmap walk visiting one mapping).
// It returns ok=false if it does not (any more). The caller releases the
// rmap lock and the PTL with unlock.
func (t *Task) lockPTE(mm *MM, va, pfn uint64) (slot pagetable.Slot, unlock func(), ok bool) {
	t.cpu.Charge(t.k.cost.RmapMapping)
	mm.rmapLock.RLock(t.th)
	if mm.dead {
		mm.rmapLock.RUnlock(t.th)
		return pagetable.Slot{}, nil, false
	}
	slot, found := mm.tables.SlotOf(va)
	if !found {
		mm.rmapLock.RUnlock(t.th)
		return pagetable.Slot{}, nil, false
	}
	ptl := mm.ptl(slot.Addr >> pagetable.PageShift)
	ptl.Lock(t.th)
	pte := slot.Load()
	if !present(pte) || pte.PFN() != pfn {
		ptl.Unlock(t.th)
		mm.rmapLock.RUnlock(t.th)
		return pagetable.Slot{}, nil, false
	}
	return slot, func() { ptl.Unlock(t.th); mm.rmapLock.RUnlock(t.th) }, true
}

// FolioReferenced tests and clears the young state of every PTE that maps
// the folio (folio_referenced → ptep_clear_flush_young). arm64 issues the
// TLBI for a young PTE without the trailing DSB: the worst case is a CPU
// that keeps using the young entry for a while.
func (t *Task) FolioReferenced(pfn uint64) bool {
	referenced := false
	for _, m := range t.k.folios[pfn].mappings() {
		if t.clearYoung(m.mm, m.va, pfn) {
			referenced = true
		}
	}
	return referenced
}

// clearYoung is folio_referenced_one for the mapping of pfn at va in mm.
func (t *Task) clearYoung(mm *MM, va, pfn uint64) bool {
	slot, unlock, ok := t.lockPTE(mm, va, pfn)
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
			t.tracePTE(va, pte, pte.MkOld(), "folio_referenced clears young")
			t.cpu.Charge(t.k.cost.PTEUpdate)
			if !t.k.arch.X86() { // x86's ptep_clear_flush_young flushes nothing
				t.FlushTLBPageNosync(mm, va)
			}
			return true
		}
	}
}

// TryToUnmap unmaps a folio that reclaim has isolated from every PTE that
// maps it (try_to_unmap → try_to_unmap_one per mapping). With batch
// (TTU_BATCH_FLUSH) and a policy that defers, each mapping's flush is left
// to the task's batch — one deferred flush per mm, each mm's
// tlb_flush_batched raised; otherwise each is done at once
// (ptep_clear_flush). A swap-backed anonymous folio's PTEs become swap
// entries for slot; a page-cache folio's PTEs are cleared (it is found
// again through its file). A clean lazy-free folio is discarded; one that
// was written again is remapped and made swap-backed, and unmapping fails.
// Each mapping's folio reference is dropped; the caller's isolation
// reference keeps the frame until after the batch flush. It reports
// whether no PTE maps the folio any more.
func (t *Task) TryToUnmap(pfn uint64, slot int, batch bool) bool {
	f := &t.k.folios[pfn]
	anon := f.Flags()&FolioAnon != 0
	if anon && slot >= 0 {
		t.k.swapCacheAdd(slot, pfn) // add_to_swap put it in the swap cache
	}
	for _, m := range f.mappings() {
		if !t.tryToUnmapOne(pfn, m.mm, m.va, slot, batch) {
			return false
		}
	}
	if f.Mapcount() != 0 {
		return false
	}
	t.k.Stats.Unmapped.Add(1)
	return true
}

// tryToUnmapOne unmaps pfn from va in mm (try_to_unmap_one); false means
// reclaim must keep the folio.
func (t *Task) tryToUnmapOne(pfn uint64, mm *MM, va uint64, slot int, batch bool) bool {
	s, unlock, ok := t.lockPTE(mm, va, pfn)
	if !ok {
		return true // unmapped meanwhile: nothing to do here
	}
	defer unlock()
	// No flush_tlb_batched_pending here: this is the batching side.
	t.cpu.Yield()
	var pteval pagetable.PTE
	if batch && t.k.batch.ShouldDefer(mm) {
		pteval = s.Swap(0) // ptep_get_and_clear
		t.cpu.Charge(t.k.cost.PTEUpdate)
		t.tracePTE(va, pteval, 0, "try_to_unmap_one clears it, flush deferred (set_tlb_ubc_flush_pending)")
		t.setTLBUBCFlushPending(mm, pteval, va)
	} else {
		pteval = t.ptepClearFlush(mm, va, s)
		t.tracePTE(va, pteval, 0, "try_to_unmap_one clears and flushes it (ptep_clear_flush)")
	}
	// The PTE's dirty state moves to the folio.
	if pteval.Dirty() {
		t.k.FolioMarkDirty(pfn)
	}
	f := &t.k.folios[pfn]
	flags := f.Flags()
	switch {
	case flags&FolioAnon != 0 && flags&FolioSwapBacked == 0: // MADV_FREE'd
		if flags&FolioDirty != 0 {
			// Written since MADV_FREE: keep it.
			t.cpu.Yield()
			s.Store(pteval)
			t.k.FolioSetSwapBacked(pfn)
			t.k.Stats.Redirtied.Add(1)
			return false
		}
		t.k.Stats.Discarded.Add(1)
	case flags&FolioAnon != 0:
		if slot < 0 {
			s.Store(pteval) // nowhere to put it: keep it mapped
			return false
		}
		t.k.swapDup(slot)
		t.cpu.Yield()
		s.Store(swapPTE(slot))
		t.tracePTE(va, 0, swapPTE(slot), "try_to_unmap_one installs the swap entry")
	}
	f.removeMap(mm, va)
	t.k.FolioPut(t, pfn)
	t.k.Stats.UnmappedPTEs.Add(1)
	return true
}

// ptepClearFlush clears the PTE in s (of va in mm) and flushes it at once,
// waiting for the flush to complete (ptep_clear_flush: DSB ISHST; TLBI
// VALE1IS; DSB ISH). It counts its cycles, and those of the final DSB, in
// Stats: the figures of Barry Song's profile.
func (t *Task) ptepClearFlush(mm *MM, va uint64, s pagetable.Slot) pagetable.PTE {
	ctr := t.cpu.Counters()
	start := ctr.Cycles
	old := s.Swap(0)
	t.cpu.Charge(t.k.cost.PTEUpdate)
	dsb := ctr.Cycles
	if t.k.arch == mmu.ArchX86IPI { // flush_tlb_page: a shootdown, waited for
		t.FlushTLBPage(mm, va)
	} else {
		t.FlushTLBPageNosync(mm, va)
		dsb = ctr.Cycles
		t.cpu.DSBISH()
	}
	t.k.Stats.PtepClearFlushes.Add(1)
	t.k.Stats.PtepClearFlushCycles.Add(ctr.Cycles - start)
	t.k.Stats.PtepClearFlushDSBCycles.Add(ctr.Cycles - dsb)
	return old
}

// Writeback writes a dirty page-cache folio of a regular file back to
// storage, on t's time (the cost of a swap write: a page written out).
func (k *Kernel) Writeback(t *Task, pfn uint64) {
	t.cpu.Yield()
	t.cpu.Charge(k.cost.SwapOut)
	k.folios[pfn].setFlag(FolioDirty, false)
	k.Stats.WrittenBack.Add(1)
}

// Pageout writes folio pfn to its swap slot (pageout → swap_writepage, or
// shmem_writeout), on t's time. Reclaim calls TryToUnmapFlushDirty first,
// so no CPU can still write the frame; a policy that gets that wrong loses
// the write, and the oracle sees it when the page comes back.
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
	t.cpu.Charge(k.cost.SwapOut)
	k.folios[pfn].setFlag(FolioDirty, false)
	k.Stats.WrittenBack.Add(1)
}
