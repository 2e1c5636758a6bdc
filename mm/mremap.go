package mm

import (
	"errors"
	"slices"

	"github.com/mmubench/mmubench/pagetable"
)

// FixMremapBatchedPending is the flush_tlb_batched_pending() call that
// 3ea277194daa ("mm, mprotect: flush TLB if potentially racing with a
// parallel reclaim leaving stale TLB entries", v4.12) put in move_ptes()
// right after the PTLs are taken. Reclaim may have cleared a PTE of the
// range with its flush deferred (TTU_BATCH_FLUSH); move_ptes then moves a
// swap entry (or nothing), which needs no flush of its own, so without the
// call a CPU keeps its translation of the old address after mremap
// returns. Reverted, move_ptes skips the call.
//
// Since eb66ae030829 ("mremap: properly flush TLB before releasing the
// page", 2018) move_ptes flushes only when it moved a present PTE, so this
// call is all that flushes such a PTE; and with MREMAP_DONTUNMAP
// (e346b3813067, v5.7) nothing unmaps the old range afterwards, whose
// zap_pte_range would call flush_tlb_batched_pending itself.
const FixMremapBatchedPending Fix = "mremap-flush-tlb-batched-pending"

// MremapFlags are mremap's flags (MREMAP_*).
type MremapFlags uint8

const (
	MremapMaymove   MremapFlags = 1 << iota // MREMAP_MAYMOVE: the mapping may move
	MremapFixed                             // MREMAP_FIXED: move it to newAddr, unmapping what is there
	MremapDontunmap                         // MREMAP_DONTUNMAP: leave the old range mapped, empty
)

// ErrFault is EFAULT: the old range is not one mapping.
var ErrFault = errors.New("EFAULT")

// Mremap resizes or moves [old, old+oldLen) (mremap → do_mremap) and
// returns its new address. Without MREMAP_MAYMOVE it shrinks or grows the
// mapping in place; with it, a mapping that cannot grow in place moves to a
// free area, or with MREMAP_FIXED to newAddr. A move takes the PTEs with it
// (move_page_tables → move_ptes): the data follows, and the old range is
// unmapped — or, with MREMAP_DONTUNMAP, left mapped and empty (it reads as
// zero). Resizing and MREMAP_DONTUNMAP apply to private anonymous
// mappings only here (the kernel allows more); file and shared mappings
// may move at their size. The TLB invariant is checked over the old range
// when a move returns: whatever translation of it a CPU still holds must
// have been flushed by then, by move_ptes or by the unmap of the old range.
func (t *Task) Mremap(old, oldLen, newLen uint64, flags MremapFlags, newAddr uint64) (uint64, error) {
	t.syscallEnter()
	const pageMask = pagetable.PageSize - 1
	oldLen = (oldLen + pageMask) &^ pageMask
	newLen = (newLen + pageMask) &^ pageMask
	switch { // check_mremap_params
	case flags&^(MremapMaymove|MremapFixed|MremapDontunmap) != 0,
		!pageAligned(old, oldLen), newLen == 0,
		flags&(MremapFixed|MremapDontunmap) != 0 && (flags&MremapMaymove == 0 || !pageAligned(newAddr, newLen)),
		flags&MremapDontunmap != 0 && oldLen != newLen:
		return 0, ErrInval
	}
	mm := t.mm
	mm.mmapLock.Lock(t.th)
	defer mm.mmapLock.Unlock(t.th) // after endCall: the returns publish before anyone else changes the VMAs
	v := mm.findVMA(old)
	switch {
	case v == nil || oldLen > v.End-old: // remap_is_valid: not across VMAs
		return 0, ErrFault
	case newLen != oldLen && (v.Shared || v.File != nil):
		return 0, ErrInval // resizing file and shared mappings is not modelled
	}
	if flags&(MremapFixed|MremapDontunmap) != 0 { // mremap_to
		if old < newAddr+newLen && newAddr < old+oldLen {
			return 0, ErrInval
		}
		if flags&MremapDontunmap != 0 && (v.Shared || v.File != nil) {
			return 0, ErrInval // MREMAP_DONTUNMAP of file or shared mappings is not modelled
		}
		t.beginCall(callMremap, old, old+oldLen)
		if flags&MremapFixed != 0 {
			t.unmapRegion(newAddr, newAddr+newLen) // do_munmap of the target
		} else {
			var err error
			if newAddr, err = mm.getUnmappedArea(newLen); err != nil {
				t.endCall()
				return 0, err
			}
		}
		if newLen < oldLen { // shrink_vma: the tail goes first
			t.unmapRegion(old+newLen, old+oldLen)
			t.k.syscallReturn(mm, old+newLen, old+oldLen, ProtNone)
			oldLen = newLen
		}
		return t.moveVMA(old, oldLen, newAddr, newLen, flags&MremapDontunmap != 0)
	}
	switch { // mremap_at
	case newLen == oldLen:
		return old, nil
	case newLen < oldLen:
		t.beginCall(callMunmap, old+newLen, old+oldLen)
		t.unmapRegion(old+newLen, old+oldLen)
		t.endCall()
		t.k.syscallReturn(mm, old+newLen, old+oldLen, ProtNone)
		return old, nil
	}
	if old+oldLen == v.End && mm.free(v.End, old+newLen) { // expand_vma_in_place
		end := v.End
		v.End = old + newLen
		t.k.syscallReturn(mm, end, v.End, v.Prot)
		return old, nil
	}
	if flags&MremapMaymove == 0 {
		return 0, ErrNoMem
	}
	newAddr, err := mm.getUnmappedArea(newLen)
	if err != nil {
		return 0, err
	}
	t.beginCall(callMremap, old, old+oldLen)
	return t.moveVMA(old, oldLen, newAddr, newLen, false)
}

// free reports whether no VMA overlaps [start, end) (under the mmap lock).
func (mm *MM) free(start, end uint64) bool {
	for _, v := range mm.vmas {
		if v.Start < end && start < v.End {
			return false
		}
	}
	return end <= pagetable.MaxVA
}

// unmapRegion unmaps [start, end) inside a call that holds the mmap lock
// for writing (do_vmi_munmap without dropping the lock): the VMAs go, the
// PTEs are zapped (zap_pte_range, with its own flush_tlb_batched_pending),
// the tables the hole leaves empty are freed, and the gather flushes.
func (t *Task) unmapRegion(start, end uint64) {
	mm := t.mm
	floor, ceiling := mm.detachVMAs(start, end)
	g := t.tlbGatherMMU(mm, start, end)
	t.zapRange(g, start, end)
	mm.freePgtables(t, g, floor, ceiling)
	g.tlbFinishMMU()
}

// moveVMA moves [old, old+oldLen) to newAddr as a mapping of newLen bytes
// (move_vma): the new VMA is made (copy_vma), the PTEs move, the oracle's
// view of the pages follows them, and the old range is unmapped
// (unmap_source_vma) — or kept, empty, with MREMAP_DONTUNMAP
// (dontunmap_complete). The caller has begun the call and holds the mmap
// lock for writing; moveVMA ends the call.
func (t *Task) moveVMA(old, oldLen, newAddr, newLen uint64, dontunmap bool) (uint64, error) {
	mm := t.mm
	in, ok := mm.splitVMAs(old, old+oldLen)
	if !ok || len(in) != 1 {
		t.endCall()
		return 0, ErrFault
	}
	src := in[0]
	dst := *src
	dst.Start, dst.End = newAddr, newAddr+newLen
	mm.insertVMA(&dst)
	// The new range may be used as soon as its PTEs are there.
	t.k.syscallReturn(mm, dst.Start, dst.End, dst.Prot)
	if err := t.movePageTables(old, newAddr, oldLen); err != nil {
		t.endCall()
		return 0, err
	}
	mm.moveShadow(old, newAddr, oldLen, dontunmap, t.call)
	if !dontunmap {
		t.unmapRegion(old, old+oldLen)
	}
	t.endCall()
	if dontunmap {
		t.k.syscallReturn(nil, 0, 0, 0)
	} else {
		t.k.syscallReturn(mm, old, old+oldLen, ProtNone)
	}
	return newAddr, nil
}

// movePageTables moves the PTEs of [old, old+length) to newAddr
// (move_page_tables), one extent at a time: an extent ends where either
// the old or the new level-3 table does. Tables of the new range are
// allocated before any lock is taken. Only PTE tables are moved entry by
// entry; moving whole tables (move_normal_pmd, which flushes the old range
// itself) is not modelled.
func (t *Task) movePageTables(old, newAddr, length uint64) error {
	mm := t.mm
	var tables []pagetable.LeafTable
	var los, his []int
	mm.tables.LeafTables(old, old+length, func(lt pagetable.LeafTable, lo, hi int) bool {
		tables, los, his = append(tables, lt), append(los, lo), append(his, hi)
		return true
	})
	for n, lt := range tables {
		for lo := los[n]; lo < his[n]; {
			va := lt.Base + uint64(lo)<<pagetable.PageShift
			to := newAddr + (va - old)
			hi := min(his[n], lo+pagetable.Entries-pagetable.Index(to, pagetable.Levels-1))
			if err := t.k.reservePageTables(t); err != nil {
				return err
			}
			first, err := mm.tables.Ensure(to) // alloc_new_pmd, pte_alloc
			if err != nil {
				return err
			}
			t.moveptes(lt, lo, hi, first, to)
			lo = hi
		}
	}
	return nil
}

// moveptes moves the PTEs lo..hi of the level-3 table lt to the slots
// from first on, which map from newVA (move_ptes): under the rmap lock (take_rmap_locks, so that
// an rmap walk sees the PTE at one address or the other), the old PTL and
// the new one, after flush_tlb_batched_pending — unless that fix is
// reverted. Each PTE is cleared and set at its new address as it was; a
// moved present PTE's folio is mapped at the new address in its rmap. The
// old addresses are flushed before the PTLs are dropped only if a present
// PTE moved (force_flush): a swap entry or a PTE reclaim cleared needs no
// flush of mremap's own, and a translation reclaim left cached is then
// flushed by flush_tlb_batched_pending or by nobody.
func (t *Task) moveptes(lt pagetable.LeafTable, lo, hi int, first pagetable.Slot, newVA uint64) {
	mm, k := t.mm, t.k
	mm.rmapLock.Lock(t.th)
	defer mm.rmapLock.Unlock(t.th)
	oldPTL := mm.ptl(lt.PFN)
	oldPTL.Lock(t.th)
	defer oldPTL.Unlock(t.th)
	newTable := first.Addr &^ (pagetable.PageSize - 1)
	if newPTL := mm.ptl(newTable >> pagetable.PageShift); newPTL != oldPTL {
		newPTL.Lock(t.th) // spin_lock_nested: the mmap lock excludes another mover
		defer newPTL.Unlock(t.th)
	}
	t.locked, t.lockedOK = lt.Base, true
	if k.Reverted(FixMremapBatchedPending) {
		t.traceKernel("move_ptes: no flush_tlb_batched_pending (before 3ea277194daa)")
	} else {
		t.FlushTLBBatchedPending(mm)
	}
	t.lockedOK = false
	t.noteVisit(oldPTL, lt, lo, hi)
	forceFlush := false
	for i := lo; i < hi; i++ {
		s := lt.Slot(i)
		if s.Load() == 0 {
			continue
		}
		va := lt.Base + uint64(i)<<pagetable.PageShift
		to := pagetable.SlotAt(k.phys, first.Addr+uint64(i-lo)*8)
		toVA := newVA + uint64(i-lo)<<pagetable.PageShift
		t.cpu.Yield()
		pte := s.Swap(0) // get_and_clear_full_ptes: with the hardware's last AF and dirty updates
		t.cpu.Charge(k.cost.PTEUpdate)
		to.Store(pte) // move_pte is the identity on arm64; set_ptes
		t.tracePTE(va, pte, 0, "move_ptes clears it")
		t.tracePTE(toVA, 0, pte, "move_ptes sets it at the new address")
		if present(pte) {
			forceFlush = true
			k.folios[pte.PFN()].moveMap(mm, va, toVA)
		}
	}
	if forceFlush {
		t.FlushTLBRange(mm, lt.Base+uint64(lo)<<pagetable.PageShift, lt.Base+uint64(hi)<<pagetable.PageShift, false)
	}
}

// moveMap moves the folio's rmap entry of va in mm to newVA (the anon_vma
// or i_mmap of the moved VMA finding the folio at its new address).
func (f *Folio) moveMap(mm *MM, va, newVA uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, m := range f.maps {
		if m.mm == mm && m.va == va {
			f.maps[i].va = newVA
			return
		}
	}
	panic("mm: a moved folio has no rmap entry for its old address") // a bug in the emulated kernel
}

// moveShadow moves the oracle's view of the pages of [old, old+length) to
// newAddr: the words stored there, and the kernel events on them, are now
// the new address's. What was recorded at the new addresses goes. With
// dontunmap the old pages stay mapped and read as zero from this call's
// return, like a zap. It runs after the PTEs moved with the mmap lock still
// held, so that a store through a translation the move flushed is recorded
// before, and one faulting a fresh page at the old address after.
func (mm *MM) moveShadow(old, newAddr, length uint64, dontunmap bool, call *sysCall) {
	s := &mm.shadow
	first, last := old>>pagetable.PageShift, (old+length)>>pagetable.PageShift
	nfirst, nlast := newAddr>>pagetable.PageShift, (newAddr+length)>>pagetable.PageShift
	s.mu.Lock()
	var moved []uint64 // old pages with a record, sorted: the clock ticks of their zaps are the same in every run
	for vpn := range s.pages {
		switch {
		case vpn >= first && vpn < last:
			moved = append(moved, vpn)
		case vpn >= nfirst && vpn < nlast:
			delete(s.pages, vpn)
		}
	}
	slices.Sort(moved)
	for _, vpn := range moved {
		s.pages[vpn-first+nfirst] = s.pages[vpn]
		delete(s.pages, vpn)
	}
	s.mu.Unlock()
	if dontunmap {
		for _, vpn := range moved {
			mm.k.noteEffect(mm, vpn<<pagetable.PageShift, effZap, call)
		}
	}
}
