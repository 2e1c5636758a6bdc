package mm

import (
	"fmt"

	"github.com/mmubench/mmubench/pagetable"
)

// Advice is an madvise advice.
type Advice int

const (
	MadvDontneed Advice = iota // MADV_DONTNEED: drop the pages; they read as zero
	MadvFree                   // MADV_FREE: the kernel may drop them until they are written again
	MadvPageout                // MADV_PAGEOUT: reclaim them now
)

func (a Advice) String() string {
	switch a {
	case MadvDontneed:
		return "MADV_DONTNEED"
	case MadvFree:
		return "MADV_FREE"
	case MadvPageout:
		return "MADV_PAGEOUT"
	}
	return fmt.Sprintf("advice(%d)", int(a))
}

// call is the kind of checked call an madvise with advice a is.
func (a Advice) call() callKind {
	switch a {
	case MadvFree:
		return callFree
	case MadvPageout:
		return callPageout
	}
	return callDontneed
}

// Madvise applies advice to [va, va+length), with the mmap lock held for
// reading — so several madvise calls on one mm run in parallel, which is
// what lets their gathers nest (mm_tlb_flush_nested).
func (t *Task) Madvise(va, length uint64, advice Advice) error {
	t.syscallEnter()
	if !pageAligned(va, length) {
		return ErrInval
	}
	mm := t.mm
	end := va + length
	mm.mmapLock.RLock(t.th)
	for a := va; a < end; {
		v := mm.findVMA(a)
		if v == nil {
			mm.mmapLock.RUnlock(t.th)
			return ErrNoMem
		}
		if advice == MadvFree && (v.Shared || v.File != nil) {
			mm.mmapLock.RUnlock(t.th)
			return ErrInval // MADV_FREE applies to private anonymous memory only
		}
		a = v.End
	}
	var err error
	t.beginCall(advice.call(), va, end)
	switch advice {
	case MadvDontneed:
		g := t.tlbGatherMMU(mm, va, end)
		t.zapRange(g, va, end)
		g.tlbFinishMMU()
	case MadvFree:
		g := t.tlbGatherMMU(mm, va, end)
		mm.tables.LeafTables(va, end, func(lt pagetable.LeafTable, lo, hi int) bool {
			t.madviseFreePTERange(g, lt, lo, hi)
			return true
		})
		g.tlbFinishMMU()
	case MadvPageout:
		t.madvisePageout(va, end)
	default:
		err = ErrInval
	}
	mm.mmapLock.RUnlock(t.th)
	t.endCall()
	t.k.syscallReturn(nil, 0, 0, 0)
	return err
}

// madviseFreePTERange marks the present pages of one table lazy-free
// (madvise_free_pte_range): a young or dirty PTE is made old and clean and
// recorded in the gather; a PTE that is already old and clean is left
// alone, and nothing is recorded for it — the heart of the parallel
// MADV_FREE race.
func (t *Task) madviseFreePTERange(g *MMUGather, lt pagetable.LeafTable, lo, hi int) {
	mm := t.mm
	defer t.lockTable(mm, lt, lo, hi)()
	for i := lo; i < hi; i++ {
		s := lt.Slot(i)
		pte := s.Load()
		va := lt.Base + uint64(i)<<pagetable.PageShift
		if isSwapPTE(pte) {
			t.cpu.Yield()
			s.Store(0)
			t.tracePTE(va, pte, 0, "madvise_free_pte_range drops the swap entry")
			t.k.swapPut(swapSlot(pte))
			t.noteZap(mm, va)
			continue
		}
		if !pte.Valid() {
			continue
		}
		pfn := pte.PFN()
		if t.k.folios[pfn].Mapcount() != 1 {
			continue // shared with another process (after fork): leave it
		}
		t.k.folios[pfn].setFlag(FolioDirty, false) // folio_clear_dirty
		if pte.Young() || pte.Dirty() {
			t.cpu.Yield()
			old := s.Swap(0) // get_and_clear_full_ptes
			s.Store(old.MkOld().MkClean())
			t.tracePTE(va, old, old.MkOld().MkClean(), "madvise_free_pte_range makes it old and clean (flush gathered)")
			g.removeTLBEntry(va)
		}
		if !pte.Young() && !pte.Dirty() {
			t.tracePTE(va, pte, pte, "madvise_free_pte_range finds it old and clean: nothing gathered")
		}
		t.noteLazyfree(mm, va)
		t.k.Stats.PagesLazyfreed.Add(1)
		t.k.folios[pfn].setFlag(FolioSwapBacked, false) // folio_mark_lazyfree
		if r := t.k.cfg.Reclaim; r != nil {
			r.FolioMarkLazyfree(pfn)
		}
	}
}

// madvisePageout isolates the present pages of [start, end) and reclaims
// them on this task (madvise_cold_or_pageout_pte_range, then
// reclaim_pages), table by table. Young PTEs are made old with the TLB
// entry recorded in a gather, as the kernel does.
func (t *Task) madvisePageout(start, end uint64) {
	mm := t.mm
	r := t.k.cfg.Reclaim
	mm.tables.LeafTables(start, end, func(lt pagetable.LeafTable, lo, hi int) bool {
		g := t.tlbGatherMMU(mm, start, end)
		var isolated []uint64
		unlock := t.lockTable(mm, lt, lo, hi)
		for i := lo; i < hi; i++ {
			s := lt.Slot(i)
			pte := s.Load()
			if !pte.Valid() {
				continue
			}
			va := lt.Base + uint64(i)<<pagetable.PageShift
			if pte.Young() {
				t.cpu.Yield()
				if s.CompareAndSwap(pte, pte.MkOld()) { // ptep_test_and_clear_young
					g.removeTLBEntry(va)
				}
			}
			// Only folios no other process maps (folio_mapcount == 1).
			if t.k.folios[pte.PFN()].Mapcount() == 1 && t.k.FolioGet(pte.PFN()) { // folio_isolate_lru
				isolated = append(isolated, pte.PFN())
			}
		}
		unlock()
		g.tlbFinishMMU()
		if len(isolated) > 0 {
			if r != nil {
				r.ReclaimPages(t, isolated)
			} else {
				for _, pfn := range isolated {
					t.k.FolioPut(t, pfn)
				}
			}
		}
		return true
	})
}
