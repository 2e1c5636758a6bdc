package mm

import (
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/pagetable"
)

// userPage is the attribute set of a user page on arm64: EL0 access, not
// global, young, read-only. Writable pages add PTE_WRITE (DBM); a clean
// writable page keeps AP[2] set until the hardware's first write.
const userPage = pagetable.PTEUser | pagetable.PTENG | pagetable.PTEAF | pagetable.PTEUXN | pagetable.PTEPXN | pagetable.PTERdonly

// mkPTE builds the PTE for frame pfn in vma (mk_pte with vm_page_prot).
func mkPTE(pfn uint64, vma *VMA, dirty bool) pagetable.PTE {
	pte := pagetable.NewPage(pfn, userPage)
	if vma.Prot&ProtWrite != 0 {
		pte = pte.MkWrite()
		if dirty {
			pte = pte.MkDirty()
		}
	}
	return pte
}

// handleFault is the kernel's side of a user fault (do_mem_abort →
// handle_mm_fault): it fixes the PTE and returns nil so that the access is
// retried, or returns the SIGSEGV the program gets.
func (t *Task) handleFault(va uint64, write bool, f mmu.Fault) error {
	k := t.k
	t.cpu.Charge(k.cost.FaultEntry)
	k.Stats.Faults.Add(1)
	if f == mmu.FaultAlignment || f == mmu.FaultAddressSize || t.mm == nil {
		return t.segv(va, write, f.String()+" fault")
	}
	mm := t.mm
	mm.mmapLock.RLock(t.th)
	defer mm.mmapLock.RUnlock(t.th)
	vma := mm.findVMA(va)
	if vma == nil {
		return t.segv(va, write, "no mapping")
	}
	if !vma.allows(write) {
		return t.segv(va, write, "not permitted by "+vma.Prot.String())
	}
	return t.handlePTEFault(vma, va&^(pagetable.PageSize-1), write)
}

func (t *Task) segv(va uint64, write bool, why string) error {
	t.k.Stats.Segv.Add(1)
	return &SegvError{VA: va, Write: write, Reason: why}
}

// handlePTEFault resolves a fault the VMA allows (handle_pte_fault), with
// the mmap lock held for reading.
func (t *Task) handlePTEFault(vma *VMA, va uint64, write bool) error {
	mm := t.mm
	if err := t.k.reservePageTables(t); err != nil {
		return err
	}
	slot, err := mm.tables.Ensure(va)
	if err != nil {
		return err
	}
	table := slot.Addr >> pagetable.PageShift
	ptl := mm.ptl(table)
	ptl.Lock(t.th)
	pte := slot.Load()
	ptl.Unlock(t.th)
	switch {
	case pte == 0 && vma.File != nil:
		return t.doFault(vma, va, slot, ptl, write)
	case pte == 0:
		return t.doAnonymousPage(vma, va, slot, ptl, write)
	case isSwapPTE(pte):
		return t.doSwapPage(vma, va, slot, ptl, pte, write)
	case isProtNone(pte):
		// The VMA allows the access but the PTE is PROT_NONE: NUMA
		// balancing made it so (mprotect changes VMA and PTEs under the
		// mmap lock held for writing).
		return t.doNumaPage(vma, va, slot, ptl)
	case isMigrationEntry(pte):
		return t.migrationEntryWait(slot, pte)
	}
	if write && !pte.Write() {
		return t.doWPPage(vma, va, slot, ptl)
	}
	return nil // spurious: another CPU resolved it, or a stale entry was dropped
}

// doAnonymousPage maps a zeroed frame at an empty PTE (do_anonymous_page),
// or a large folio over its block where the VMA asked for one (mthp.go).
// The frame is allocated before the PTL is taken, and the PTE re-checked.
func (t *Task) doAnonymousPage(vma *VMA, va uint64, slot pagetable.Slot, ptl *ptLock, write bool) error {
	if t.doAnonymousLarge(vma, va, slot, ptl, write) {
		return nil
	}
	pfn, err := t.k.allocFrame(t)
	if err != nil {
		return err
	}
	t.k.phys.Zero(pfn)
	t.cpu.Charge(t.k.cost.ZeroPage)
	ptl.Lock(t.th)
	defer ptl.Unlock(t.th)
	if slot.Load() != 0 { // another CPU faulted it in meanwhile
		_ = t.k.phys.Free(pfn)
		return nil
	}
	t.k.newAnonFolio(pfn, t.mm, va, write)
	t.cpu.Yield() // a descriptor update is a yield point
	slot.Store(mkPTE(pfn, vma, write))
	t.tracePTE(va, 0, slot.Load(), "do_anonymous_page maps a zeroed page")
	return nil
}

// doFault maps a file page at an empty PTE (do_read_fault, do_shared_fault,
// do_cow_fault): the page-cache folio, or for a write to a private mapping
// a private copy of it.
func (t *Task) doFault(vma *VMA, va uint64, slot pagetable.Slot, ptl *ptLock, write bool) error {
	k := t.k
	pfn, err := t.filemapGetFolio(vma.File, vma.pageIndex(va))
	if err != nil {
		return err
	}
	if write && !vma.Shared {
		defer k.FolioPut(t, pfn)
		return t.cowInto(vma, va, slot, ptl, 0, pfn)
	}
	ptl.Lock(t.th)
	defer ptl.Unlock(t.th)
	if slot.Load() != 0 {
		k.FolioPut(t, pfn)
		return nil
	}
	k.folios[pfn].mapWithRef(t.mm, va) // our reference becomes the mapping's
	pte := pagetable.NewPage(pfn, userPage)
	if vma.Shared {
		pte = mkPTE(pfn, vma, write)
	}
	t.cpu.Yield()
	slot.Store(pte)
	t.tracePTE(va, 0, pte, "do_fault maps the file page")
	if !write {
		t.faultAround(vma, va, slot)
	}
	return nil
}

// faultAroundPages is fault_around_bytes (64 KiB) in pages.
const faultAroundPages = 16

// faultAround maps the pages around a read fault that are already in the
// page cache, in the aligned 64 KiB window of va (do_fault_around →
// filemap_map_pages), under the PTL the caller holds. Their PTEs are old
// (arm64's arch_wants_old_prefaulted_pte): nothing caches them until a
// program touches them, and reclaim sees them unreferenced — so a shared
// library's pages end up mapped by every process that ran near them.
func (t *Task) faultAround(vma *VMA, va uint64, slot pagetable.Slot) {
	k := t.k
	file := vma.File
	const span = faultAroundPages << pagetable.PageShift
	start := max(va&^(span-1), vma.Start)
	end := min(va&^(span-1)+span, vma.End)
	table := slot.Addr &^ (pagetable.PageSize - 1) // the leaf table holding va's PTE, and the window's
	for a := start; a < end; a += pagetable.PageSize {
		if a == va {
			continue
		}
		s := pagetable.SlotAt(k.phys, table+uint64(pagetable.Index(a, pagetable.Levels-1))*8)
		if s.Load() != 0 {
			continue
		}
		file.mu.Lock()
		pfn, ok := file.cache[vma.pageIndex(a)]
		ok = ok && k.FolioGet(pfn)
		file.mu.Unlock()
		if !ok {
			continue
		}
		k.folios[pfn].mapWithRef(t.mm, a)
		pte := pagetable.NewPage(pfn, userPage)
		if vma.Shared {
			pte = mkPTE(pfn, vma, false)
		}
		t.cpu.Charge(k.cost.PTEUpdate)
		s.Store(pte.MkOld())
	}
}

// doSwapPage brings a swapped-out anonymous page back (do_swap_page): from
// the swap cache if reclaim still has it there, else read from the slot.
// A slot other swap entries still share (after fork) is copied, not taken.
func (t *Task) doSwapPage(vma *VMA, va uint64, slot pagetable.Slot, ptl *ptLock, pte pagetable.PTE, write bool) error {
	k := t.k
	s := swapSlot(pte)
	ptl.Lock(t.th)
	if slot.Load() == pte {
		// Reclaim's reference and ours: nobody else needs the cached folio.
		if k.swapCount(s) == 2 {
			if pfn, ok := k.swapCacheTake(s); ok {
				k.Stats.SwapCacheHits.Add(1)
				k.reuseAnonFolio(pfn, t.mm, va)
				t.cpu.Yield()
				slot.Store(mkPTE(pfn, vma, write))
				t.tracePTE(va, pte, slot.Load(), "do_swap_page maps the swap-cache page")
				ptl.Unlock(t.th)
				k.swapPut(s)
				return nil
			}
		}
	}
	ptl.Unlock(t.th)
	pfn, err := k.allocFrame(t)
	if err != nil {
		return err
	}
	ptl.Lock(t.th)
	defer ptl.Unlock(t.th)
	if slot.Load() != pte { // someone else swapped it in, or it was zapped
		_ = k.phys.Free(pfn)
		return nil
	}
	if cached, ok := k.swapCacheLookup(s); ok && k.FolioGet(cached) {
		k.phys.Copy(pfn, cached) // the slot may not be written yet
		t.cpu.Charge(k.cost.CopyPage)
		k.FolioPut(t, cached)
	} else {
		k.swapRead(s, pfn)
		t.cpu.Charge(k.cost.SwapIn)
	}
	k.Stats.SwapIns.Add(1)
	// The swap copy is gone (for us), so the folio is dirty: it must be
	// written again.
	k.newAnonFolio(pfn, t.mm, va, true)
	t.cpu.Yield()
	slot.Store(mkPTE(pfn, vma, write))
	t.tracePTE(va, pte, slot.Load(), "do_swap_page maps the page read back")
	k.swapPut(s)
	return nil
}

// doWPPage handles a write to a present read-only PTE the VMA allows
// (do_wp_page): a shared mapping or an anonymous page no one else maps is
// made writable in place (wp_page_reuse); anything else is copied
// (wp_page_copy).
func (t *Task) doWPPage(vma *VMA, va uint64, slot pagetable.Slot, ptl *ptLock) error {
	k := t.k
	ptl.Lock(t.th)
	pte := slot.Load()
	if !pte.Valid() || pte.Write() {
		ptl.Unlock(t.th)
		return nil
	}
	pfn := pte.PFN()
	f := &k.folios[pfn]
	if vma.Shared || (f.Flags()&FolioAnon != 0 && f.Mapcount() == 1) {
		t.cpu.Yield()
		// No flush: the hardware dropped the faulting entry, and an upgrade
		// leaves nothing stale that could grant more than the PTE does.
		if slot.CompareAndSwap(pte, pte.MkWrite().MkDirty()) {
			t.tracePTE(va, pte, pte.MkWrite().MkDirty(), "do_wp_page makes it writable")
		}
		ptl.Unlock(t.th)
		return nil
	}
	ok := k.FolioGet(pfn) // keep the old page while copying
	ptl.Unlock(t.th)
	if !ok {
		return nil
	}
	defer k.FolioPut(t, pfn)
	return t.cowInto(vma, va, slot, ptl, pte, pfn)
}

// cowInto gives va a private, writable copy of frame src (wp_page_copy,
// do_cow_fault): the new page is filled outside the PTL; under it the PTE
// must still be old (0 for a fault on an empty PTE), which is cleared and
// flushed (ptep_clear_flush: other CPUs may cache the read-only entry)
// before the copy is mapped. The caller holds a reference to src.
func (t *Task) cowInto(vma *VMA, va uint64, slot pagetable.Slot, ptl *ptLock, old pagetable.PTE, src uint64) error {
	k := t.k
	pfn, err := k.allocFrame(t)
	if err != nil {
		return err
	}
	k.phys.Copy(pfn, src)
	t.cpu.Charge(k.cost.CopyPage)
	ptl.Lock(t.th)
	defer ptl.Unlock(t.th)
	if slot.Load() != old {
		_ = k.phys.Free(pfn)
		return nil
	}
	k.Stats.COWs.Add(1)
	k.newAnonFolio(pfn, t.mm, va, true)
	t.cpu.Yield()
	if old != 0 {
		t.ptepClearFlush(t.mm, va, slot)
		k.folios[src].removeMap(t.mm, va)
		k.FolioPut(t, src) // the old mapping's reference
	}
	slot.Store(mkPTE(pfn, vma, true))
	t.tracePTE(va, old, slot.Load(), "copy on write maps the copy")
	return nil
}

// pageTableReserve is how many free frames an operation that may allocate
// page tables makes sure of first: a level-1, -2 and -3 table and a root.
const pageTableReserve = 4

// reservePageTables reclaims until pageTableReserve frames are free, so that
// the page tables about to be allocated find memory (page-table pages come
// from the page allocator, whose slow path reclaims like any other). Call
// it without a PTL held: reclaim takes PTLs.
func (k *Kernel) reservePageTables(t *Task) error {
	for fails := 0; k.phys.FreeFrames() < pageTableReserve; {
		if !k.reclaimForAlloc(t, &fails) {
			return ErrNoMem
		}
	}
	return nil
}

// allocRetries is how many direct-reclaim attempts in a row may free
// nothing before an allocation fails: other CPUs may take what one frees,
// so only a run of fruitless attempts means memory is really exhausted
// (__alloc_pages_slowpath's no_progress_loops, MAX_RECLAIM_RETRIES).
const allocRetries = 16

// reclaimForAlloc wakes kswapd and reclaims directly on t for an
// allocation that found no free frame; it reports whether to try again.
func (k *Kernel) reclaimForAlloc(t *Task, fails *int) bool {
	r := k.cfg.Reclaim
	if r == nil {
		return false
	}
	r.WakeKswapd()
	if r.DirectReclaim(t) {
		*fails = 0
		return true
	}
	*fails++
	return *fails < allocRetries
}

// allocFrame allocates a frame for user memory on t's time, waking kswapd
// below the watermark and falling back to direct reclaim
// (__alloc_pages_slowpath).
func (k *Kernel) allocFrame(t *Task) (uint64, error) {
	r := k.cfg.Reclaim
	for fails := 0; ; {
		pfn, err := k.phys.Alloc()
		if err == nil {
			t.cpu.Charge(k.cost.PageAlloc)
			if r != nil {
				r.WakeKswapd()
			}
			return pfn, nil
		}
		if !k.reclaimForAlloc(t, &fails) {
			return 0, ErrNoMem
		}
	}
}
