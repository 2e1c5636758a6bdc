package mm

import (
	"slices"

	"github.com/mmubench/mmubench/pagetable"
)

// Processes. A Task is one CPU's thread of execution; the process it runs
// is its current mm, which fork, exec and exit change: a shell on a CPU
// forks a child, switches to it, the child execs and exits, and the task
// switches back to the shell. Every mm is used by the tasks that switched to
// it; the last MMPut tears it down (exit_mmap).

// Segment is one mapping of an executable image.
type Segment struct {
	File   *File // nil: anonymous memory (bss, heap, stack)
	PgOff  uint64
	Pages  uint64
	Prot   Prot
	Shared bool
}

// Image is what exec maps: a program's and its libraries' segments.
type Image struct {
	Name     string
	Segments []Segment
}

// Fork copies the task's address space for a child process (dup_mmap) and
// returns it; the task keeps running the parent. Private memory becomes
// copy-on-write: each present PTE is copied write-protected, in the parent
// too, and the parent's TLB entries are flushed (flush_tlb_mm(oldmm)).
// Shared mappings are not copied: the child faults them in from the page
// cache (vma_needs_copy).
func (t *Task) Fork() (*MM, error) {
	k := t.k
	t.syscallEnter()
	t.cpu.Charge(k.cost.ForkMM)
	k.Stats.Forks.Add(1)
	parent := t.mm
	if err := k.reservePageTables(t); err != nil {
		return nil, err
	}
	child, err := k.NewMM()
	if err != nil {
		return nil, err
	}
	parent.mmapLock.Lock(t.th)
	defer parent.mmapLock.Unlock(t.th)
	child.nextMap = parent.nextMap
	for _, v := range parent.vmas {
		c := *v
		child.vmas = append(child.vmas, &c)
		if !v.Shared {
			if err := t.copyPageRange(child, v); err != nil {
				return nil, err
			}
		}
	}
	child.shadow.inherit(&parent.shadow)
	t.FlushTLBMM(parent)
	return child, nil
}

// copyPageRange copies the PTEs of v from the task's mm into dst
// (copy_page_range → copy_pte_range), under the source PTL.
func (t *Task) copyPageRange(dst *MM, v *VMA) error {
	k := t.k
	src := t.mm
	var err error
	src.tables.LeafTables(v.Start, v.End, func(lt pagetable.LeafTable, lo, hi int) bool {
		// The child's table for this range first, outside the PTL:
		// allocating it may reclaim.
		if err = k.reservePageTables(t); err != nil {
			return false
		}
		if _, err = dst.tables.Ensure(lt.Base + uint64(lo)<<pagetable.PageShift); err != nil {
			return false
		}
		ptl := src.ptl(lt.PFN)
		ptl.Lock(t.th)
		defer ptl.Unlock(t.th)
		for i := lo; i < hi; i++ {
			s := lt.Slot(i)
			pte := s.Load()
			if pte == 0 {
				continue
			}
			va := lt.Base + uint64(i)<<pagetable.PageShift
			ds, found := dst.tables.SlotOf(va)
			if !found {
				panic("mm: the child's page table vanished") // a bug in the emulated kernel
			}
			t.cpu.Charge(k.cost.ForkPTE)
			switch {
			case isSwapPTE(pte):
				k.swapDup(swapSlot(pte)) // swap_duplicate
			case present(pte):
				if pte.Write() {
					// ptep_set_wrprotect, atomically, so that no hardware
					// dirty update is lost.
					t.cpu.Yield()
					for !s.CompareAndSwap(pte, pte.Wrprotect()) {
						pte = s.Load()
					}
					pte = pte.Wrprotect()
				}
				k.folios[pte.PFN()].addMap(dst, va)
				pte = pte.MkOld()
			default:
				continue
			}
			ds.Store(pte)
		}
		return true
	})
	return err
}

// Exec replaces the task's address space with a fresh one mapping img
// (execve → exec_mmap) and returns the address of each segment. The old
// address space is released (mmput), which tears it down if the task was
// its last user.
func (t *Task) Exec(img *Image) ([]uint64, error) {
	k := t.k
	t.syscallEnter()
	t.cpu.Charge(k.cost.ExecMM)
	k.Stats.Execs.Add(1)
	if err := k.reservePageTables(t); err != nil {
		return nil, err
	}
	mm, err := k.NewMM()
	if err != nil {
		return nil, err
	}
	vas := make([]uint64, len(img.Segments))
	for i, s := range img.Segments {
		va, err := mm.mmapLocked(t, s.File, s.PgOff, s.Pages<<pagetable.PageShift, s.Prot, s.Shared)
		if err != nil {
			return nil, err
		}
		k.syscallReturn(mm, va, va+s.Pages<<pagetable.PageShift, s.Prot)
		vas[i] = va
	}
	old := t.mm
	t.SwitchMM(mm)
	if old != nil {
		t.MMPut(old)
	}
	return vas, nil
}

// Exit ends the process the task runs: its address space is released
// (exit_mm → mmput) and the task runs no process until SwitchMM.
func (t *Task) Exit() {
	mm := t.mm
	if mm == nil {
		return
	}
	t.MMPut(mm)
	t.mm = nil
	t.cpu.SetTTBR0(0, 0)
}

// SwitchMM makes the task run mm's process (context_switch → switch_mm):
// TTBR0 and the ASID change, and no TLB is flushed; __switch_to's
// dsb(ish) completes the CPU's outstanding TLBIs, as on arm64 (x86-invlpgb:
// switch_mm_irqs_off's tlbsync(); FixSwitchToDSB takes either out).
func (t *Task) SwitchMM(mm *MM) {
	t.switchTo()
	t.mm = mm
	t.loadMM(mm)
}

// MMGet takes another user reference on mm (mmget).
func (mm *MM) MMGet() { mm.users.Add(1) }

// MMPut drops a user reference on mm (mmput); the last one tears the
// address space down on t (exit_mmap).
func (t *Task) MMPut(mm *MM) {
	if mm.users.Add(-1) == 0 {
		t.exitMMap(mm)
	}
}

// exitMMap tears an address space down (exit_mmap): every mapping is zapped
// under a fullmm gather — whose zap_pte_range calls still run
// flush_tlb_batched_pending — the page tables are freed, one flush_tlb_mm
// covers it all (arm64's tlb_flush for a fullmm gather that freed tables),
// and only then are the pages, the tables and the ASID given back.
func (t *Task) exitMMap(mm *MM) {
	k := t.k
	t.cpu.Charge(k.cost.ExitMM)
	k.Stats.Exits.Add(1)
	mm.mmapLock.Lock(t.th)
	g := t.tlbGatherMMU(mm, 0, pagetable.MaxVA)
	g.SetFullMM()
	for _, v := range mm.vmas {
		t.zapRange(g, v.Start, v.End)
	}
	mm.vmas = nil
	mm.rmapLock.Lock(t.th)
	mm.dead = true // rmap walks that still hold a stale (mm, va) back off
	mm.tables.FreeEmpty(0, pagetable.MaxVA, func(pfn uint64, level int, va uint64) {
		if level == pagetable.Levels-1 {
			mm.dropPTL(pfn)
		}
		g.removeTable(pfn, va)
	})
	mm.rmapLock.Unlock(t.th)
	g.tlbFinishMMU()
	k.phys.FreeTable(mm.tables.Root())
	mm.mmapLock.Unlock(t.th)
	k.releaseMM(mm)
}

// releaseMM forgets a torn-down mm and frees its ASID: its TLB entries are
// gone from every CPU (exit's flush_tlb_mm completed), so a new mm may use
// it.
func (k *Kernel) releaseMM(mm *MM) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if i := slices.Index(k.mms, mm); i >= 0 {
		k.mms = slices.Delete(k.mms, i, i+1)
	}
	k.freeASIDs = append(k.freeASIDs, mm.asid)
}

// MMs is the number of live address spaces.
func (k *Kernel) MMs() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.mms)
}
