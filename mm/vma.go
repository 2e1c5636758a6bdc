package mm

import (
	"cmp"
	"slices"

	"github.com/mmubench/mmubench/pagetable"
)

func pageAligned(va, length uint64) bool {
	return va&(pagetable.PageSize-1) == 0 && length != 0 && length&(pagetable.PageSize-1) == 0 && va+length > va && va+length <= pagetable.MaxVA
}

// Mmap creates an anonymous mapping of length bytes (mmap with
// MAP_ANONYMOUS and MAP_PRIVATE or MAP_SHARED) and returns its address.
// A shared anonymous mapping is shmem (shmem_zero_setup): its pages live in
// a page cache of their own, swap-backed. Mappings are placed 2 MiB apart
// from each other.
func (t *Task) Mmap(length uint64, prot Prot, shared bool) (uint64, error) {
	var file *File
	if shared {
		file = t.k.newShmem((length + pagetable.PageSize - 1) >> pagetable.PageShift)
	}
	return t.MmapFile(file, 0, length, prot, shared)
}

// MmapFile maps length bytes of file from page pgoff (mmap of a file;
// file == nil is an anonymous mapping) and returns the address. A private
// mapping sees the file's pages until it writes one, which copies it (COW).
func (t *Task) MmapFile(file *File, pgoff, length uint64, prot Prot, shared bool) (uint64, error) {
	t.syscallEnter()
	va, err := t.mm.mmapLocked(t, file, pgoff, length, prot, shared)
	if err != nil {
		return 0, err
	}
	t.k.syscallReturn(t.mm, va, va+length, prot)
	return va, nil
}

// mmapLocked places a mapping in mm (do_mmap), taking the mmap lock.
func (mm *MM) mmapLocked(t *Task, file *File, pgoff, length uint64, prot Prot, shared bool) (uint64, error) {
	if length == 0 || length > 1<<40 || prot&^(ProtRead|ProtWrite) != 0 {
		return 0, ErrInval
	}
	length = (length + pagetable.PageSize - 1) &^ (pagetable.PageSize - 1)
	if file != nil && pgoff+length>>pagetable.PageShift > file.Pages {
		return 0, ErrInval
	}
	mm.mmapLock.Lock(t.th)
	defer mm.mmapLock.Unlock(t.th)
	va, err := mm.getUnmappedArea(length)
	if err != nil {
		return 0, err
	}
	mm.insertVMA(&VMA{Start: va, End: va + length, Prot: prot, Shared: shared, File: file, PgOff: pgoff})
	return va, nil
}

// getUnmappedArea picks the address of a new mapping of length bytes
// (get_unmapped_area), under the mmap lock for writing: the next 2 MiB
// boundary past the last placement that no VMA is in the way of, with a
// guard gap after it.
func (mm *MM) getUnmappedArea(length uint64) (uint64, error) {
	va := mm.nextMap
	for _, v := range mm.vmas { // sorted: step past any in the way (MmapFixed)
		if v.Start < va+length && va < v.End {
			va = (v.End + 2<<20 - 1) &^ (2<<20 - 1)
		}
	}
	if va+length > pagetable.MaxVA {
		return 0, ErrNoMem
	}
	mm.nextMap = (va + length + 2<<20 - 1) &^ (2<<20 - 1)
	mm.nextMap += 2 << 20 // a guard gap
	return va, nil
}

// MmapFixed creates an anonymous mapping at exactly [va, va+length)
// (mmap with MAP_FIXED_NOREPLACE): EEXIST-like ErrInval if any of it is
// already mapped. Trace replay uses it to map the addresses a trace touches.
func (t *Task) MmapFixed(va, length uint64, prot Prot, shared bool) error {
	t.syscallEnter()
	if !pageAligned(va, length) || prot&^(ProtRead|ProtWrite) != 0 {
		return ErrInval
	}
	mm := t.mm
	end := va + length
	mm.mmapLock.Lock(t.th)
	for _, v := range mm.vmas {
		if v.Start < end && va < v.End {
			mm.mmapLock.Unlock(t.th)
			return ErrInval
		}
	}
	var file *File
	if shared {
		file = t.k.newShmem(length >> pagetable.PageShift)
	}
	mm.insertVMA(&VMA{Start: va, End: end, Prot: prot, Shared: shared, File: file})
	mm.mmapLock.Unlock(t.th)
	t.k.syscallReturn(mm, va, end, prot)
	return nil
}

// insertVMA adds v, keeping the VMAs sorted (under the mmap lock for writing).
func (mm *MM) insertVMA(v *VMA) {
	mm.vmas = append(mm.vmas, v)
	slices.SortFunc(mm.vmas, func(a, b *VMA) int { return cmp.Compare(a.Start, b.Start) })
}

// splitVMAs makes [start, end) a union of whole VMAs (split_vma) and
// returns them; ok is false if part of the range is unmapped.
func (mm *MM) splitVMAs(start, end uint64) (in []*VMA, ok bool) {
	var out []*VMA
	covered := start
	for _, v := range mm.vmas {
		if v.End <= start || v.Start >= end {
			out = append(out, v)
			continue
		}
		if v.Start > covered {
			return nil, false
		}
		covered = max(covered, v.End)
		if v.Start < start {
			out = append(out, v.slice(v.Start, start))
		}
		mid := v.slice(max(v.Start, start), min(v.End, end))
		out = append(out, mid)
		in = append(in, mid)
		if v.End > end {
			out = append(out, v.slice(end, v.End))
		}
	}
	if covered < end {
		return nil, false
	}
	mm.vmas = out
	return in, true
}

// Mprotect changes the protection of [va, va+length) (mprotect →
// change_protection → change_pte_range). Removing write makes present PTEs
// read-only; PROT_NONE makes them invalid to the hardware. The TLB flush is
// gathered and done before the call returns.
func (t *Task) Mprotect(va, length uint64, prot Prot) error {
	t.syscallEnter()
	if !pageAligned(va, length) || prot&^(ProtRead|ProtWrite) != 0 {
		return ErrInval
	}
	mm := t.mm
	end := va + length
	mm.mmapLock.Lock(t.th)
	vmas, ok := mm.splitVMAs(va, end)
	if !ok {
		mm.mmapLock.Unlock(t.th)
		return ErrNoMem
	}
	for _, v := range vmas {
		if prot&^v.Prot != 0 {
			// A grant may be used as soon as the PTEs change: a write
			// racing with mprotect(PROT_WRITE) is allowed to succeed. So
			// the oracle learns of it now, and of a removal at return.
			t.k.syscallReturn(mm, v.Start, v.End, v.Prot|prot)
		}
		v.Prot = prot
	}
	t.beginCall(callMprotect, va, end)
	g := t.tlbGatherMMU(mm, va, end)
	mm.tables.LeafTables(va, end, func(lt pagetable.LeafTable, lo, hi int) bool {
		t.changePTERange(g, lt, lo, hi, prot)
		return true
	})
	g.tlbFinishMMU()
	mm.mmapLock.Unlock(t.th)
	t.endCall()
	t.k.syscallReturn(mm, va, end, prot)
	return nil
}

// changePTERange applies prot to the present PTEs of one table
// (change_pte_range), under its PTL, after flush_tlb_batched_pending.
func (t *Task) changePTERange(g *MMUGather, lt pagetable.LeafTable, lo, hi int, prot Prot) {
	mm := t.mm
	defer t.lockTable(mm, lt, lo, hi)()
	for i := lo; i < hi; i++ {
		s := lt.Slot(i)
		old := s.Load()
		va := lt.Base + uint64(i)<<pagetable.PageShift
		if !present(old) {
			t.tracePTE(va, old, old, "change_pte_range finds it not present: nothing to change, nothing to flush")
			continue
		}
		vma := mm.findVMA(va)
		t.cpu.Yield()
		old = s.Swap(0) // ptep_modify_prot_start: no hardware update is lost
		t.cpu.Charge(t.k.cost.PTEUpdate)
		pfn := old.PFN()
		hwDirty := old.Valid() && old.HWDirty() || old&pagetable.PTEDirty != 0
		var next pagetable.PTE
		switch {
		case prot == ProtNone:
			next = pagetable.NewPage(pfn, userPage)&^pagetable.PTEValid | pteProtNone
		case prot&ProtWrite != 0 && t.k.canChangePTEWritable(vma, pfn):
			next = pagetable.NewPage(pfn, userPage).MkWrite()
		default:
			next = pagetable.NewPage(pfn, userPage)
		}
		if hwDirty {
			next |= pagetable.PTEDirty // keep the dirty state (pte_wrprotect saves HW dirty as SW dirty)
			if next.Write() {
				next = next.MkDirty()
			}
		}
		s.Store(next)
		t.tracePTE(va, old, next, "change_pte_range (flush gathered)")
		t.k.Stats.PagesWriteProtected.Add(1)
		g.removeTLBEntry(va) // tlb_flush_pte_range (pte_needs_flush is always true on arm64)
	}
}

// canChangePTEWritable reports whether mprotect may make the PTE of folio
// pfn in vma writable at once (can_change_pte_writable): in a shared
// mapping, or for an anonymous folio no other process maps. Anything else
// must take a write fault first (copy on write).
func (k *Kernel) canChangePTEWritable(vma *VMA, pfn uint64) bool {
	if vma.Shared {
		return true
	}
	f := &k.folios[pfn]
	return f.Flags()&FolioAnon != 0 && f.Mapcount() == 1
}

// Munmap removes [va, va+length) (munmap → unmap_region: zap the PTEs,
// flush, free the pages and the page tables that became empty).
func (t *Task) Munmap(va, length uint64) error {
	t.syscallEnter()
	if !pageAligned(va, length) {
		return ErrInval
	}
	mm := t.mm
	end := va + length
	mm.mmapLock.Lock(t.th)
	floor, ceiling := mm.detachVMAs(va, end)
	// The VMAs are detached: the rest runs with the lock held for reading
	// (mmap_write_downgrade in do_vmi_align_munmap), so faults and madvise
	// elsewhere in the mm proceed meanwhile; nothing can fault in the range.
	mm.mmapLock.Downgrade(t.th)
	t.beginCall(callMunmap, va, end)
	g := t.tlbGatherMMU(mm, va, end)
	t.zapRange(g, va, end)
	mm.freePgtables(t, g, floor, ceiling)
	g.tlbFinishMMU()
	mm.mmapLock.RUnlock(t.th)
	t.endCall()
	t.k.syscallReturn(mm, va, end, ProtNone)
	return nil
}

// detachVMAs removes [va, end) from the VMAs, splitting those it cuts
// (vms_gather_munmap_vmas), under the mmap lock for writing, and returns
// the floor and ceiling of free_pgtables: the whole hole the unmapping
// leaves between the neighbouring mappings, whose tables may all go, not
// only those inside the range.
func (mm *MM) detachVMAs(va, end uint64) (floor, ceiling uint64) {
	out := mm.vmas[:0:0]
	for _, v := range mm.vmas {
		switch {
		case v.End <= va || v.Start >= end:
			out = append(out, v)
		default:
			if v.Start < va {
				out = append(out, v.slice(v.Start, va))
			}
			if v.End > end {
				out = append(out, v.slice(end, v.End))
			}
		}
	}
	mm.vmas = out
	floor, ceiling = 0, uint64(pagetable.MaxVA)
	for _, v := range out {
		if v.End <= va {
			floor = max(floor, v.End)
		}
		if v.Start >= end {
			ceiling = min(ceiling, v.Start)
		}
	}
	return floor, ceiling
}

// freePgtables unlinks the empty tables lying wholly inside [start, end)
// under the rmap lock, so that no rmap walk is inside them, and has the
// gather free them after its flush (free_pgtables).
func (mm *MM) freePgtables(t *Task, g *MMUGather, start, end uint64) {
	mm.rmapLock.Lock(t.th)
	mm.tables.FreeEmpty(start, end, func(pfn uint64, level int, va uint64) {
		if level == pagetable.Levels-1 {
			mm.dropPTL(pfn)
		}
		g.removeTable(pfn, va)
	})
	mm.rmapLock.Unlock(t.th)
}

// zapRange clears every PTE in [start, end) (unmap_page_range →
// zap_pte_range), table by table under the PTL, after
// flush_tlb_batched_pending. Frames are dropped after the gather's flush.
func (t *Task) zapRange(g *MMUGather, start, end uint64) {
	mm := g.mm
	mm.tables.LeafTables(start, end, func(lt pagetable.LeafTable, lo, hi int) bool {
		unlock := t.lockTable(mm, lt, lo, hi)
		for i := lo; i < hi; i++ {
			s := lt.Slot(i)
			va := lt.Base + uint64(i)<<pagetable.PageShift
			if s.Load() == 0 {
				t.tracePTE(va, 0, 0, "zap_pte_range finds it none: nothing to flush")
				continue
			}
			t.cpu.Yield()
			old := s.Swap(0) // ptep_get_and_clear_full
			t.cpu.Charge(t.k.cost.PTEUpdate)
			t.tracePTE(va, old, 0, "zap_pte_range clears it (flush gathered)")
			t.noteZap(mm, va)
			t.k.Stats.PagesZapped.Add(1)
			switch {
			case isSwapPTE(old):
				t.k.swapPut(swapSlot(old)) // free_swap_and_cache
			case present(old):
				g.removeTLBEntry(va) // tlb_remove_tlb_entry: a PROT_NONE PTE's old translation may still be cached
				t.k.folios[old.PFN()].removeMap(mm, va)
				g.removePage(old.PFN())
			}
		}
		unlock()
		return true
	})
}
