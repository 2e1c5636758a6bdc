package mm

import (
	"errors"
	"fmt"

	"github.com/mmubench/mmubench/pagetable"
)

// Large anonymous folios (mTHP): 2^order physically contiguous, naturally
// aligned frames of one folio, mapped by 2^order PTEs of one leaf table
// (never by a block descriptor), allocated by the anonymous fault of a VMA
// that asked for them (MADV_HUGEPAGE, with the order's sysfs knob set to
// "madvise") and split into small folios by split_folio. Small folios stay
// the default: nothing here runs unless a workload sets an order
// (SetAnonMTHPOrder), and while no large folio exists every check costs one
// atomic load.
//
// The model keeps each page's reference count, rmap and flags in the page's
// own Folio record (as the per-page _mapcount did); a large folio is its
// head's order and its tails' pointer to the head. What the kernel does to
// the folio (mark it lazy-free, clear its dirty flag) is done to each page.
// The folio lock (PG_locked) and the LRU entry are the head's. A page of a
// large folio freed while others live dissolves the folio first (the
// kernel's deferred split, done at once).
// split_folio is in split.go.

// FixMadviseRelockFlush is 383c4613c67c ("mm: close theoretical race where
// stale TLB entries could linger", 2025): madvise_free_pte_range and
// madvise_cold_or_pageout_pte_range drop the PTL to split a large folio and,
// before the fix, did not call flush_tlb_batched_pending after re-taking it,
// so a reclaim batch that cleared a PTE of the table meanwhile could leave
// its stale TLB entry behind when the madvise returned.
const FixMadviseRelockFlush Fix = "383c4613c67c"

// MaxMTHPOrder is the largest mTHP order the model allocates (64 KiB).
const MaxMTHPOrder = 4

// FolioLocked is PG_locked, on a large folio's head (folio_trylock).
const FolioLocked = 1 << 3

// ErrBusy is split_folio's -EAGAIN: a reference beyond the mappings' and
// the caller's, or the folio lock held by somebody else.
var ErrBusy = errors.New("EAGAIN")

// SetAnonMTHPOrder enables large anonymous folios of 2^order pages for
// VMAs with MADV_HUGEPAGE (hugepages-<size>kB/enabled = madvise); 0, the
// default, disables them. Call it before the machine runs.
func (k *Kernel) SetAnonMTHPOrder(order int) error {
	if order < 0 || order > MaxMTHPOrder {
		return fmt.Errorf("mm: mTHP order %d (must be 0..%d)", order, MaxMTHPOrder)
	}
	k.mthpOrder = order
	return nil
}

// FolioHead returns the head page of the folio page pfn belongs to
// (page_folio): pfn itself for a small folio or a head.
func (k *Kernel) FolioHead(pfn uint64) uint64 {
	if k.largeFolios.Load() == 0 {
		return pfn
	}
	f := &k.folios[pfn]
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.head != 0 {
		return f.head
	}
	return pfn
}

// FolioNrPages is the number of pages of pfn's folio (folio_nr_pages).
func (k *Kernel) FolioNrPages(pfn uint64) int {
	if k.largeFolios.Load() == 0 {
		return 1
	}
	h := &k.folios[k.FolioHead(pfn)]
	h.mu.Lock()
	defer h.mu.Unlock()
	return 1 << h.order
}

// FolioTestLarge reports whether pfn's folio has more than one page.
func (k *Kernel) FolioTestLarge(pfn uint64) bool { return k.FolioNrPages(pfn) > 1 }

// folioTrylock takes PG_locked of the folio whose head is head (folio_trylock).
func (k *Kernel) folioTrylock(head uint64) bool {
	f := &k.folios[head]
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.flags&FolioLocked != 0 {
		return false
	}
	f.flags |= FolioLocked
	return true
}

// folioUnlock drops PG_locked (folio_unlock).
func (k *Kernel) folioUnlock(head uint64) { k.folios[head].setFlag(FolioLocked, false) }

// folioMaybeMappedShared reports whether another process may map a page of
// the folio whose head is head (folio_maybe_mapped_shared).
func (k *Kernel) folioMaybeMappedShared(head uint64, nr int) bool {
	for i := 0; i < nr; i++ {
		if k.folios[head+uint64(i)].Mapcount() > 1 {
			return true
		}
	}
	return false
}

// doAnonymousLarge is do_anonymous_page with a large folio
// (alloc_anon_folio): if an order is enabled, the VMA asked for it with
// MADV_HUGEPAGE, the naturally aligned block around va lies inside the VMA
// and every PTE of the block is none, it maps a zeroed large folio over
// the whole block (set_ptes) and reports true. It reports false — the
// caller maps a small folio — where any of that fails, or where the
// allocator has no aligned run of free frames (the fallback to order 0).
func (t *Task) doAnonymousLarge(vma *VMA, va uint64, slot pagetable.Slot, ptl *ptLock, write bool) bool {
	k := t.k
	order := k.mthpOrder
	if order == 0 || !vma.HugePage {
		return false
	}
	nr := 1 << order
	size := uint64(nr) << pagetable.PageShift
	start := va &^ (size - 1)
	if start < vma.Start || start+size > vma.End || !k.pteRangeNone(slot, start, nr) {
		return false
	}
	base, ok := k.allocContig(t, nr)
	if !ok {
		return false
	}
	for i := 0; i < nr; i++ {
		k.phys.Zero(base + uint64(i))
		t.cpu.Charge(k.cost.ZeroPage)
	}
	ptl.Lock(t.th)
	defer ptl.Unlock(t.th)
	if !k.pteRangeNone(slot, start, nr) { // another CPU faulted in part of it meanwhile
		for i := 0; i < nr; i++ {
			_ = k.phys.Free(base + uint64(i))
		}
		return true // retry the access
	}
	k.newAnonLargeFolio(base, order, t.mm, start, write)
	k.Stats.MTHPAllocs.Add(1)
	t.cpu.Yield() // a descriptor update is a yield point
	for i := 0; i < nr; i++ {
		leafSlot(k, slot, start+uint64(i)<<pagetable.PageShift).Store(mkPTE(base+uint64(i), vma, write))
	}
	t.tracePTE(start, 0, mkPTE(base, vma, write), fmt.Sprintf("do_anonymous_page maps a zeroed %d KiB folio (set_ptes)", size>>10))
	return true
}

// leafSlot is the slot of va's PTE in the leaf table that holds slot.
func leafSlot(k *Kernel, slot pagetable.Slot, va uint64) pagetable.Slot {
	table := slot.Addr &^ (pagetable.PageSize - 1)
	return pagetable.SlotAt(k.phys, table+uint64(pagetable.Index(va, pagetable.Levels-1))*8)
}

// pteRangeNone reports whether the n PTEs from start, in the leaf table
// holding slot, are all none (pte_range_none).
func (k *Kernel) pteRangeNone(slot pagetable.Slot, start uint64, n int) bool {
	for i := 0; i < n; i++ {
		if leafSlot(k, slot, start+uint64(i)<<pagetable.PageShift).Load() != 0 {
			return false
		}
	}
	return true
}

// allocContig allocates n naturally aligned contiguous frames (the buddy
// allocator's order-n block) without reclaiming: it takes frames until the
// last n taken form such a block, within a bound, and gives back the rest.
func (k *Kernel) allocContig(t *Task, n int) (uint64, bool) {
	var taken []uint64
	base, ok := uint64(0), false
	for len(taken) < 4*n {
		pfn, err := k.phys.Alloc()
		if err != nil {
			break
		}
		taken = append(taken, pfn)
		if len(taken) < n {
			continue
		}
		lo, hi := pfn, pfn
		for _, f := range taken[len(taken)-n:] {
			lo, hi = min(lo, f), max(hi, f)
		}
		if hi-lo == uint64(n-1) && lo%uint64(n) == 0 {
			base, ok = lo, true
			break
		}
	}
	for _, f := range taken {
		if !ok || f < base || f >= base+uint64(n) {
			_ = k.phys.Free(f)
		}
	}
	if ok {
		t.cpu.Charge(k.cost.PageAlloc)
		if r := k.cfg.Reclaim; r != nil {
			r.WakeKswapd()
		}
	}
	return base, ok
}

// newAnonLargeFolio sets up the frames from base as one anonymous folio of
// 2^order pages mapped from va of mm, each page with its mapping's
// reference; only the head goes on the LRU.
func (k *Kernel) newAnonLargeFolio(base uint64, order int, mm *MM, va uint64, dirty bool) {
	for i := uint64(0); i < 1<<order; i++ {
		f := &k.folios[base+i]
		f.mu.Lock()
		f.refs = 1
		f.flags = FolioAnon | FolioSwapBacked
		if dirty {
			f.flags |= FolioDirty
		}
		f.maps = append(f.maps[:0], rmapItem{mm, va + i<<pagetable.PageShift})
		if i == 0 {
			f.order = uint8(order)
		} else {
			f.head = base
		}
		f.mu.Unlock()
	}
	k.largeFolios.Add(1)
	if r := k.cfg.Reclaim; r != nil {
		r.FolioAddLRU(base)
	}
}

// folioPTEBatch counts the PTEs from slot i of lt (below hi) that map
// consecutive pages of the folio of pte's page (folio_pte_batch).
func (t *Task) folioPTEBatch(lt pagetable.LeafTable, i, hi int, pte pagetable.PTE) int {
	k := t.k
	pfn := pte.PFN()
	head := k.FolioHead(pfn)
	end := head + uint64(k.FolioNrPages(head))
	n := 1
	for j := i + 1; j < hi && pfn+uint64(n) < end; j++ {
		p := lt.Slot(j).Load()
		if !p.Valid() || p.PFN() != pfn+uint64(n) {
			break
		}
		n++
	}
	return n
}

// madviseSplitLarge is the large-folio path of madvise_free_pte_range and
// madvise_cold_or_pageout_pte_range for a folio only partly inside the
// range (or partly mapped): unless another process may map it or its lock
// is taken, the walker takes a reference, drops the PTL
// (pte_unmap_unlock), splits the folio, and re-takes the PTL
// (pte_offset_map_lock) — followed, since 383c4613c67c, by
// flush_tlb_batched_pending: while the PTL was dropped, reclaim may have
// cleared a PTE of this table and deferred its flush. It returns the new
// unlock and whether the folio was split (the walker then looks at the
// same PTE again).
func (t *Task) madviseSplitLarge(mm *MM, lt pagetable.LeafTable, lo, hi int, pfn uint64, unlock func()) (func(), bool) {
	k := t.k
	head := k.FolioHead(pfn)
	if k.folioMaybeMappedShared(head, k.FolioNrPages(head)) || !k.folioTrylock(head) {
		return unlock, false
	}
	if !k.FolioGet(head) {
		k.folioUnlock(head)
		return unlock, false
	}
	t.traceKernel("madvise drops the PTL to split a large folio (pte_unmap_unlock)")
	unlock()
	_, err := t.splitFolio(head, false)
	k.folioUnlock(head)
	k.FolioPut(t, head)
	return t.relockTable(mm, lt, lo, hi), err == nil
}

// relockTable re-takes the PTL of lt that a madvise walker dropped
// (pte_offset_map_lock) and — unless 383c4613c67c is reverted — calls
// flush_tlb_batched_pending again. The call's visit of the table is
// brought up to date: what changed in it while the PTL was dropped is the
// call's to flush. It returns the unlock.
func (t *Task) relockTable(mm *MM, lt pagetable.LeafTable, lo, hi int) func() {
	ptl := mm.ptl(lt.PFN)
	ptl.Lock(t.th)
	if t.k.Reverted(FixMadviseRelockFlush) {
		t.traceKernel("madvise re-takes the PTL without flush_tlb_batched_pending (383c4613c67c reverted)")
	} else {
		t.locked, t.lockedOK = lt.Base, true
		t.FlushTLBBatchedPending(mm)
		t.lockedOK = false
	}
	if c := t.call; c != nil {
		for i := range c.visits {
			if v := &c.visits[i]; v.ptl == ptl {
				v.at, v.seq = t.k.Now(), ptl.seq.Load()
				return func() { ptl.Unlock(t.th) }
			}
		}
	}
	t.noteVisit(ptl, lt, lo, hi)
	return func() { ptl.Unlock(t.th) }
}

// madviseHugepage marks the VMAs of [va, end) VM_HUGEPAGE (madvise with
// MADV_HUGEPAGE → hugepage_madvise), splitting VMAs at the range's ends.
func (t *Task) madviseHugepage(va, end uint64) error {
	mm := t.mm
	mm.mmapLock.Lock(t.th)
	vmas, ok := mm.splitVMAs(va, end)
	if ok {
		for _, v := range vmas {
			v.HugePage = true
		}
	}
	mm.mmapLock.Unlock(t.th)
	t.k.syscallReturn(nil, 0, 0, 0)
	if !ok {
		return ErrNoMem
	}
	return nil
}
