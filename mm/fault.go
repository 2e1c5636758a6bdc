package mm

import (
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/pagetable"
	"github.com/mmubench/mmubench/sched"
)

// userPage is the attribute set of a user anonymous page on arm64: EL0
// access, not global, young. Writable pages add PTE_WRITE (DBM); a clean
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
	case pte == 0:
		return t.doAnonymousPage(vma, va, slot, ptl, write)
	case isSwapPTE(pte):
		return t.doSwapPage(vma, va, slot, ptl, pte, write)
	case isProtNone(pte):
		// The VMA allows the access but the PTE is still PROT_NONE: a
		// racing mprotect is about to fix it. Retry.
		return nil
	}
	if write && !pte.Write() {
		return t.doWPPage(vma, va, slot, ptl)
	}
	return nil // spurious: another CPU resolved it, or a stale entry was dropped
}

// doAnonymousPage maps a zeroed frame at an empty PTE (do_anonymous_page).
// The frame is allocated before the PTL is taken, and the PTE re-checked.
func (t *Task) doAnonymousPage(vma *VMA, va uint64, slot pagetable.Slot, ptl *sched.Mutex, write bool) error {
	pfn, err := t.k.allocFrame(t)
	if err != nil {
		return err
	}
	t.k.phys.Zero(pfn)
	ptl.Lock(t.th)
	defer ptl.Unlock(t.th)
	if slot.Load() != 0 { // another CPU faulted it in meanwhile
		_ = t.k.phys.Free(pfn)
		return nil
	}
	t.k.newAnonFolio(pfn, t.mm, va, write)
	t.cpu.Yield() // a descriptor update is a yield point
	slot.Store(mkPTE(pfn, vma, write))
	return nil
}

// doSwapPage brings a swapped-out page back (do_swap_page).
func (t *Task) doSwapPage(vma *VMA, va uint64, slot pagetable.Slot, ptl *sched.Mutex, pte pagetable.PTE, write bool) error {
	ptl.Lock(t.th)
	if slot.Load() == pte {
		if pfn, ok := t.k.swapCacheTake(swapSlot(pte)); ok {
			// Still in memory: map the same folio back.
			t.k.Stats.SwapCacheHits.Add(1)
			t.k.reuseAnonFolio(pfn, t.mm, va)
			t.cpu.Yield()
			slot.Store(mkPTE(pfn, vma, write))
			ptl.Unlock(t.th)
			return nil
		}
	}
	ptl.Unlock(t.th)
	pfn, err := t.k.allocFrame(t)
	if err != nil {
		return err
	}
	ptl.Lock(t.th)
	defer ptl.Unlock(t.th)
	if slot.Load() != pte { // someone else swapped it in, or it was zapped
		_ = t.k.phys.Free(pfn)
		return nil
	}
	t.k.swapIn(swapSlot(pte), pfn)
	t.k.Stats.SwapIns.Add(1)
	// The swap copy is gone, so the folio is dirty: it must be written again.
	t.k.newAnonFolio(pfn, t.mm, va, true)
	t.cpu.Yield()
	slot.Store(mkPTE(pfn, vma, write))
	return nil
}

// doWPPage makes a present page writable on a write the VMA allows
// (do_wp_page reusing an exclusive anonymous page: there is no fork, so
// every anonymous page is exclusive).
func (t *Task) doWPPage(vma *VMA, va uint64, slot pagetable.Slot, ptl *sched.Mutex) error {
	ptl.Lock(t.th)
	defer ptl.Unlock(t.th)
	pte := slot.Load()
	if !pte.Valid() || pte.Write() {
		return nil
	}
	t.cpu.Yield()
	// No flush: the hardware dropped the faulting entry, and an upgrade
	// leaves nothing stale that could grant more than the PTE does.
	slot.CompareAndSwap(pte, pte.MkWrite().MkDirty())
	return nil
}

// allocFrame allocates a frame for user memory, waking kswapd below the
// watermark and falling back to direct reclaim (__alloc_pages_slowpath).
func (k *Kernel) allocFrame(t *Task) (uint64, error) {
	r := k.cfg.Reclaim
	for i := 0; ; i++ {
		pfn, err := k.phys.Alloc()
		if err == nil {
			if r != nil {
				r.WakeKswapd()
			}
			return pfn, nil
		}
		if r == nil || i >= 16 {
			return 0, ErrNoMem
		}
		r.WakeKswapd()
		if !r.DirectReclaim(t) && t.k.phys.FreeFrames() == 0 {
			return 0, ErrNoMem // nothing reclaimable: out of memory
		}
	}
}
