package mm

import (
	"fmt"
	"sync/atomic"

	"github.com/mmubench/mmubench/pagetable"
)

// NUMA balancing and page migration, and the race between them that
// mm->tlb_flush_pending closed (20841405940e, "mm: fix TLB flush race
// between migration, and change_protection_range", Rik van Riel, 2013).
//
// task_numa_work scans a process's memory under the mmap lock held for
// reading and makes its PTEs PROT_NONE (change_prot_numa →
// change_protection_range), flushing the TLB only once, at the end of the
// range, after the PTLs are dropped. A CPU that touches such a page takes a
// NUMA hinting fault (do_numa_page) and, if the folio lives on another node,
// migrates it there (migrate_misplaced_folio): unmap it (PTE to a migration
// entry), copy it to a new frame, map the copy, free the old frame. Until
// the scanner's flush completes, a third CPU may still hold the old writable
// translation and write the old frame: after the copy, the write is lost;
// after the free, it lands in somebody else's memory. The fix raises
// mm->tlb_flush_pending around change_protection_range, and migration's
// ptep_clear_flush (through pte_accessible) flushes a PROT_NONE PTE while
// it is raised. Reverting FixMigrateTLBFlushPending takes that check out:
// pte_accessible is pte_valid alone (x86's before the fix).
//
// The model has NUMA nodes only as labels: every CPU is on node 0 unless
// SetCPUNode says otherwise, and every folio is on node 0 unless it was
// migrated (frames have no node; a migration target takes the node it was
// migrated to). Only exclusive anonymous folios are scanned and migrated.

// FixMigrateTLBFlushPending is the check of 20841405940e: while a
// change_protection_range has its flush pending (mm_tlb_flush_pending), a
// PROT_NONE PTE may still be cached valid, so migration flushes it before
// copying the page (pte_accessible's mm_tlb_flush_pending clause, which
// ptep_clear_flush and set_tlb_ubc_flush_pending consult).
const FixMigrateTLBFlushPending Fix = "migrate-tlb-flush-pending"

// MaxNUMANodes bounds the node numbers SetCPUNode accepts.
const MaxNUMANodes = 64

// numaState is the kernel's NUMA topology and counters.
type numaState struct {
	cpuNode []uint8 // node of each CPU (cpu_to_node); nil: all on node 0

	PTEUpdates   atomic.Uint64 // PTEs made PROT_NONE by change_prot_numa (NUMA_PTE_UPDATES)
	HintFaults   atomic.Uint64 // NUMA hinting faults (NUMA_HINT_FAULTS)
	Migrated     atomic.Uint64 // folios migrated (NUMA_PAGE_MIGRATE)
	MigrateFails atomic.Uint64 // migrations that found the folio changed under them
}

// NUMAStats is what NUMA balancing did: PTEs scanned, hinting faults,
// folios migrated and migrations abandoned.
func (k *Kernel) NUMAStats() (pteUpdates, hintFaults, migrated, fails uint64) {
	n := &k.numa
	return n.PTEUpdates.Load(), n.HintFaults.Load(), n.Migrated.Load(), n.MigrateFails.Load()
}

// SetCPUNode puts CPU cpu on NUMA node node. Call it before the machine
// runs.
func (k *Kernel) SetCPUNode(cpu, node int) error {
	if cpu < 0 || cpu >= k.m.NumCPUs() {
		return fmt.Errorf("mm: CPU %d of %d", cpu, k.m.NumCPUs())
	}
	if node < 0 || node >= MaxNUMANodes {
		return fmt.Errorf("mm: NUMA node %d (must be 0..%d)", node, MaxNUMANodes-1)
	}
	if k.numa.cpuNode == nil {
		k.numa.cpuNode = make([]uint8, k.m.NumCPUs())
	}
	k.numa.cpuNode[cpu] = uint8(node)
	return nil
}

// CPUToNode is the node of CPU cpu (cpu_to_node).
func (k *Kernel) CPUToNode(cpu int) int {
	if k.numa.cpuNode == nil {
		return 0
	}
	return int(k.numa.cpuNode[cpu])
}

// FolioNid is the node of folio pfn (folio_nid).
func (k *Kernel) FolioNid(pfn uint64) int {
	f := &k.folios[pfn]
	f.mu.Lock()
	defer f.mu.Unlock()
	return int(f.nid)
}

// incTLBFlushPending counts one more operation whose PTE changes are not
// yet flushed (inc_tlb_flush_pending): before the first PTE changes.
func (mm *MM) incTLBFlushPending() { mm.tlbFlushPending.Add(1) }

// decTLBFlushPending ends one (dec_tlb_flush_pending): after its flush.
func (mm *MM) decTLBFlushPending() { mm.tlbFlushPending.Add(-1) }

// mmTLBFlushPending reports whether some operation on mm has changed PTEs
// and not yet flushed them (mm_tlb_flush_pending).
func (mm *MM) mmTLBFlushPending() bool { return mm.tlbFlushPending.Load() > 0 }

// TLBFlushPending is mm->tlb_flush_pending: the operations (mmu_gathers,
// change_prot_numa) with their flush pending.
func (mm *MM) TLBFlushPending() int32 { return mm.tlbFlushPending.Load() }

// pteMigration marks a migration entry (a software bit, like PTE_PROT_NONE):
// the frame being migrated stays in the address bits, with the old PTE's
// write and dirty state; the hardware sees it as invalid.
const pteMigration = pagetable.PTE(1 << 57)

// makeMigrationEntry turns the PTE try_to_migrate_one cleared into the
// migration entry it installs (make_*_migration_entry): writable if the
// PTE was, dirty if it was.
func makeMigrationEntry(old pagetable.PTE) pagetable.PTE {
	e := pagetable.PTE(old.PFN()<<pagetable.PageShift) | pteMigration
	if old.Write() {
		e |= pagetable.PTEWrite
	}
	if old.Dirty() {
		e |= pagetable.PTEDirty
	}
	return e
}

func isMigrationEntry(p pagetable.PTE) bool { return !p.Valid() && p&pteMigration != 0 }

// IsProtNone reports whether pte is a PROT_NONE PTE (pte_protnone): present
// to the kernel, invalid to the hardware — what change_prot_numa leaves.
func IsProtNone(pte pagetable.PTE) bool { return isProtNone(pte) }

// IsMigrationEntry reports whether pte is a migration entry
// (is_migration_entry).
func IsMigrationEntry(pte pagetable.PTE) bool { return isMigrationEntry(pte) }

// TaskNumaWork is the NUMA scanner's pass over [start, end) of the task's
// mm (task_numa_work): under the mmap lock held for reading, each
// accessible anonymous VMA in the range goes through change_prot_numa. It
// returns how many PTEs it made PROT_NONE.
func (t *Task) TaskNumaWork(start, end uint64) (int, error) {
	if !pageAligned(start, end-start) {
		return 0, ErrInval
	}
	mm := t.mm
	if mm == nil {
		return 0, fmt.Errorf("mm: task_numa_work on a kernel thread")
	}
	mm.mmapLock.RLock(t.th)
	defer mm.mmapLock.RUnlock(t.th)
	n := 0
	for _, v := range mm.vmas {
		if v.End <= start || v.Start >= end || v.Prot == ProtNone || v.File != nil {
			continue // !vma_is_accessible, or not migratable here
		}
		n += t.changeProtNuma(v, max(start, v.Start), min(end, v.End))
	}
	return n, nil
}

// changeProtNuma makes the present PTEs of [start, end) in vma PROT_NONE so
// that the next access takes a NUMA hinting fault (change_prot_numa →
// change_protection_range with MM_CP_PROT_NUMA, in its 2013 form): it
// raises mm->tlb_flush_pending first, changes the PTEs table by table under
// each PTL, and only then flushes the range (flush_tlb_range, after the PTLs
// are dropped) and lowers the count. Today's kernel does the same through
// tlb_gather_mmu/tlb_finish_mmu.
func (t *Task) changeProtNuma(vma *VMA, start, end uint64) int {
	mm := t.mm
	mm.incTLBFlushPending()
	pages := 0
	mm.tables.LeafTables(start, end, func(lt pagetable.LeafTable, lo, hi int) bool {
		pages += t.changePTERangeNuma(lt, lo, hi)
		return true
	})
	if pages > 0 { // only flush if entries were changed
		t.traceKernel(fmt.Sprintf("change_prot_numa: %d PTEs made PROT_NONE, flush_tlb_range [%#x, %#x)", pages, start, end))
		t.FlushTLBRange(mm, start, end, true)
	}
	mm.decTLBFlushPending()
	t.k.numa.PTEUpdates.Add(uint64(pages))
	return pages
}

// changePTERangeNuma makes the PTEs [lo, hi) of one table PROT_NONE
// (change_pte_range with prot_numa), under its PTL, after
// flush_tlb_batched_pending. It skips what NUMA balancing skips: PTEs not
// present or already PROT_NONE (no flush for those), folios other
// processes map too (shared copy-on-write), and page-cache folios.
func (t *Task) changePTERangeNuma(lt pagetable.LeafTable, lo, hi int) int {
	mm := t.mm
	defer t.lockTable(mm, lt, lo, hi)()
	pages := 0
	for i := lo; i < hi; i++ {
		s := lt.Slot(i)
		old := s.Load()
		va := lt.Base + uint64(i)<<pagetable.PageShift
		if !old.Valid() {
			continue // none, swap, migration entry or already PROT_NONE
		}
		if f := &t.k.folios[old.PFN()]; f.Flags()&FolioAnon == 0 || f.Mapcount() != 1 {
			continue
		}
		t.cpu.Yield()
		old = s.Swap(0) // ptep_modify_prot_start
		t.cpu.Charge(t.k.cost.PTEUpdate)
		next := pagetable.NewPage(old.PFN(), userPage)&^pagetable.PTEValid | pteProtNone
		if old.Dirty() {
			next |= pagetable.PTEDirty // pte_modify keeps the dirty state
		}
		s.Store(next)
		t.tracePTE(va, old, next, "change_prot_numa makes it PROT_NONE (flush at the end of the range)")
		pages++
	}
	return pages
}

// doNumaPage handles a fault on a PROT_NONE PTE in a VMA that allows the
// access: a NUMA hinting fault (do_numa_page). Under the PTL it re-checks
// the PTE; a folio on another node than the faulting CPU's is migrated
// there (migrate_misplaced_folio); otherwise, or if the migration fails,
// the PTE gets the VMA's protection back. The access is retried.
func (t *Task) doNumaPage(vma *VMA, va uint64, slot pagetable.Slot, ptl *ptLock) error {
	k := t.k
	k.numa.HintFaults.Add(1)
	ptl.Lock(t.th)
	pte := slot.Load()
	if !isProtNone(pte) {
		ptl.Unlock(t.th)
		return nil // somebody else resolved it
	}
	pfn := pte.PFN()
	f := &k.folios[pfn]
	target := k.CPUToNode(t.cpu.ID())
	misplaced := f.Flags()&FolioAnon != 0 && f.Mapcount() == 1 && k.FolioNid(pfn) != target // numa_migrate_check
	if !misplaced {
		t.numaRebuildSingleMapping(vma, va, slot, pte)
		ptl.Unlock(t.th)
		return nil
	}
	ptl.Unlock(t.th)
	t.traceKernel(fmt.Sprintf("do_numa_page: pfn %#x on node %d, fault on node %d: migrate", pfn, k.FolioNid(pfn), target))
	if t.migrateMisplacedFolio(vma, va, pfn, target) {
		return nil
	}
	k.numa.MigrateFails.Add(1)
	ptl.Lock(t.th)
	if slot.Load() == pte {
		t.numaRebuildSingleMapping(vma, va, slot, pte)
	}
	ptl.Unlock(t.th)
	return nil
}

// numaRebuildSingleMapping gives a PROT_NONE PTE the VMA's protection back
// (do_numa_page's out_map: pte_modify with vm_page_prot, pte_mkyoung,
// writable where can_change_pte_writable allows). Hold the PTL. No flush:
// the PTE goes from invalid to valid.
func (t *Task) numaRebuildSingleMapping(vma *VMA, va uint64, slot pagetable.Slot, pte pagetable.PTE) {
	pfn := pte.PFN()
	next := pagetable.NewPage(pfn, userPage)
	if pte.SWDirty() {
		next |= pagetable.PTEDirty
	}
	if vma.Prot&ProtWrite != 0 && t.k.canChangePTEWritable(vma, pfn) {
		next = next.MkWrite()
	}
	t.cpu.Yield()
	slot.Store(next)
	t.cpu.Charge(t.k.cost.PTEUpdate)
	t.tracePTE(va, pte, next, "do_numa_page maps it again in place")
}

// migrateMisplacedFolio moves folio pfn, mapped at va of the task's mm, to
// a new frame on node (migrate_misplaced_folio → migrate_pages:
// migrate_folio_unmap, then migrate_folio_move): isolate it, allocate the
// destination, unmap it (tryToMigrateOne), copy it, map the copy where the
// migration entry is (remove_migration_ptes), and drop the old frame. It
// reports whether the folio moved.
func (t *Task) migrateMisplacedFolio(vma *VMA, va, pfn uint64, node int) bool {
	k := t.k
	if !k.FolioGet(pfn) { // numa_migrate_isolate_folio
		return false
	}
	if r := k.cfg.Reclaim; r != nil {
		r.FolioDelLRU(pfn)
	}
	putback := func() {
		if r := k.cfg.Reclaim; r != nil && k.folios[pfn].Mapcount() > 0 {
			r.FolioAddLRU(pfn)
		}
		k.FolioPut(t, pfn)
	}
	dst, err := k.allocFrame(t) // alloc_misplaced_dst_folio
	if err != nil {
		putback()
		return false
	}
	entry, ok := t.tryToMigrateOne(pfn, va)
	if !ok {
		_ = k.phys.Free(dst)
		putback()
		return false
	}
	t.cpu.Yield()
	k.phys.Copy(dst, pfn) // folio_mc_copy
	t.cpu.Charge(k.cost.CopyPage)
	t.traceKernel(fmt.Sprintf("migrate_folio_move: pfn %#x copied to pfn %#x", pfn, dst))
	if !t.removeMigrationPTE(vma, va, entry, dst, node) {
		_ = k.phys.Free(dst) // the mapping went away meanwhile
	} else {
		k.numa.Migrated.Add(1)
	}
	k.FolioPut(t, pfn) // the isolation's reference: the old frame is freed
	return true
}

// tryToMigrateOne replaces the PTE of va mapping pfn with a migration entry
// (try_to_migrate_one): ptep_clear_flush — which flushes only a PTE a TLB
// may hold (pte_accessible) — then the entry; the PTE's dirty state moves
// to the folio and the mapping's reference is dropped. It returns the
// entry, or ok=false if the PTE no longer maps pfn.
func (t *Task) tryToMigrateOne(pfn, va uint64) (pagetable.PTE, bool) {
	mm := t.mm
	s, unlock, ok := t.lockPTE(mm, va, pfn)
	if !ok {
		return 0, false
	}
	defer unlock()
	t.cpu.Yield()
	old := s.Swap(0) // ptep_get_and_clear
	t.cpu.Charge(t.k.cost.PTEUpdate)
	if pteAccessible(mm, old) {
		t.traceKernel("try_to_migrate_one: ptep_clear_flush flushes (pte_accessible)")
		t.FlushTLBPage(mm, va)
	} else {
		t.traceKernel("try_to_migrate_one: ptep_clear_flush finds the PTE inaccessible: no flush")
	}
	if old.Dirty() {
		t.k.FolioMarkDirty(pfn)
	}
	entry := makeMigrationEntry(old)
	s.Store(entry)
	t.tracePTE(va, old, entry, "try_to_migrate_one installs the migration entry")
	f := &t.k.folios[pfn]
	f.removeMap(mm, va)
	t.k.FolioPut(t, pfn)
	return entry, true
}

// removeMigrationPTE maps the copy dst where the migration entry of va is
// (remove_migration_pte): the VMA's protection, writable if the entry was,
// dirty if it was; the new folio is anonymous, on node, with the mapping's
// reference. It reports false if the entry is gone.
func (t *Task) removeMigrationPTE(vma *VMA, va uint64, entry pagetable.PTE, dst uint64, node int) bool {
	mm := t.mm
	mm.rmapLock.RLock(t.th)
	defer mm.rmapLock.RUnlock(t.th)
	s, found := mm.tables.SlotOf(va)
	if mm.dead || !found {
		return false
	}
	ptl := mm.ptl(s.Addr >> pagetable.PageShift)
	ptl.Lock(t.th)
	defer ptl.Unlock(t.th)
	if s.Load() != entry {
		return false
	}
	dirty := entry&pagetable.PTEDirty != 0
	t.k.newAnonFolio(dst, mm, va, dirty)
	f := &t.k.folios[dst]
	f.mu.Lock()
	f.nid = uint8(node)
	f.mu.Unlock()
	next := pagetable.NewPage(dst, userPage)
	if dirty {
		next |= pagetable.PTEDirty
	}
	if entry.Write() && vma.Prot&ProtWrite != 0 {
		next = next.MkWrite()
	}
	t.cpu.Yield()
	s.Store(next)
	t.cpu.Charge(t.k.cost.PTEUpdate)
	t.tracePTE(va, entry, next, "remove_migration_pte maps the copy")
	return true
}

// migrationEntryWait waits until the migration entry at slot is gone
// (migration_entry_wait); the access is then retried.
func (t *Task) migrationEntryWait(slot pagetable.Slot, entry pagetable.PTE) error {
	gone := func() bool { return slot.Load() != entry }
	if t.th.Det() {
		t.th.Block("migration entry", gone)
		return nil
	}
	for !gone() {
		t.cpu.Yield()
		t.th.Relax()
	}
	return nil
}
