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
	MadvHugepage               // MADV_HUGEPAGE: anonymous faults may map large folios (mthp.go)
)

func (a Advice) String() string {
	switch a {
	case MadvDontneed:
		return "MADV_DONTNEED"
	case MadvFree:
		return "MADV_FREE"
	case MadvPageout:
		return "MADV_PAGEOUT"
	case MadvHugepage:
		return "MADV_HUGEPAGE"
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
	if advice == MadvHugepage {
		return t.madviseHugepage(va, end)
	}
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
// MADV_FREE race. A large folio wholly inside the range is marked page by
// page; one only partly inside is split first, with the PTL dropped and
// re-taken (madviseSplitLarge), and its PTEs looked at again.
func (t *Task) madviseFreePTERange(g *MMUGather, lt pagetable.LeafTable, lo, hi int) {
	mm := t.mm
	unlock := t.lockTable(mm, lt, lo, hi)
	defer func() { unlock() }()
	for i := lo; i < hi; i++ {
		pte := lt.Slot(i).Load()
		if t.k.largeFolios.Load() == 0 || !pte.Valid() || !t.k.FolioTestLarge(pte.PFN()) {
			t.madviseFreePTE(g, lt, i, pte)
			continue
		}
		nr := t.folioPTEBatch(lt, i, hi, pte)
		if nr < t.k.FolioNrPages(pte.PFN()) {
			var split bool
			if unlock, split = t.madviseSplitLarge(mm, lt, lo, hi, pte.PFN(), unlock); split {
				i-- // the same PTE again, now of a small folio
			} else {
				i += nr - 1
			}
			continue
		}
		for j := i; j < i+nr; j++ {
			t.madviseFreePTE(g, lt, j, lt.Slot(j).Load())
		}
		i += nr - 1
	}
}

// madviseFreePTE is madvise_free_pte_range's work on the PTE of slot i,
// whose value was pte.
func (t *Task) madviseFreePTE(g *MMUGather, lt pagetable.LeafTable, i int, pte pagetable.PTE) {
	mm := t.mm
	s := lt.Slot(i)
	va := lt.Base + uint64(i)<<pagetable.PageShift
	if isSwapPTE(pte) {
		t.cpu.Yield()
		s.Store(0)
		t.tracePTE(va, pte, 0, "madvise_free_pte_range drops the swap entry")
		t.k.swapPut(swapSlot(pte))
		t.noteZap(mm, va)
		return
	}
	if !pte.Valid() {
		return
	}
	pfn := pte.PFN()
	if t.k.folios[pfn].Mapcount() != 1 {
		return // shared with another process (after fork): leave it
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

// madvisePageout isolates the present pages of [start, end) and reclaims
// them on this task (madvise_cold_or_pageout_pte_range, then
// reclaim_pages), table by table. Young PTEs are made old with the TLB
// entry recorded in a gather, as the kernel does. A large folio wholly
// inside the range is isolated whole (its head); one only partly inside is
// split first, with the PTL dropped and re-taken (madviseSplitLarge).
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
			if t.k.largeFolios.Load() != 0 && t.k.FolioTestLarge(pte.PFN()) {
				head := t.k.FolioHead(pte.PFN())
				nr := t.folioPTEBatch(lt, i, hi, pte)
				if nr < t.k.FolioNrPages(head) {
					var split bool
					if unlock, split = t.madviseSplitLarge(mm, lt, lo, hi, pte.PFN(), unlock); split {
						i--
					} else {
						i += nr - 1
					}
					continue
				}
				// Wholly inside: the folio's young states, then the folio
				// isolated at its head if no other process maps it.
				for j := i; j < i+nr; j++ {
					t.pageoutClearYoung(g, lt, j, lt.Slot(j).Load())
				}
				if !t.k.folioMaybeMappedShared(head, nr) && t.k.FolioGet(head) {
					isolated = append(isolated, head)
				}
				i += nr - 1
				continue
			}
			t.pageoutClearYoung(g, lt, i, pte)
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

// pageoutClearYoung is madvise_cold_or_pageout_pte_range's work on the
// young state of the PTE of slot i, whose value was pte: a young PTE is
// made old (ptep_test_and_clear_young) and its TLB entry gathered.
func (t *Task) pageoutClearYoung(g *MMUGather, lt pagetable.LeafTable, i int, pte pagetable.PTE) {
	if !pte.Young() {
		return
	}
	t.cpu.Yield()
	if lt.Slot(i).CompareAndSwap(pte, pte.MkOld()) {
		g.removeTLBEntry(lt.Base + uint64(i)<<pagetable.PageShift)
	}
}
