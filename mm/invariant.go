package mm

import (
	"fmt"

	"github.com/mmubench/mmubench/mmu"
)

// checkTLB is the TLB-state invariant at the return of mprotect, munmap,
// madvise and mremap (over the range it moved from): for the call's range, no CPU's L1 or L2 TLB may hold — even with
// its invalidation posted but not yet applied — a translation of the mm
// that maps another frame than the PTE does, or grants more than it (any
// access where the PTE allows none, a write without a descriptor update
// where the PTE is read-only). Whatever the call changed it must have
// flushed, and whatever it found changed but unflushed (a reclaim batch, a
// concurrent gather) it must have flushed too: that is what
// flush_tlb_batched_pending and the nested tlb_finish_mmu are for. A
// breach is a stale_tlb violation whether or not any access ever uses the
// entry.
//
// Tables somebody else locked after the call left them are skipped: their
// later changes, and the flushes those owe, are not the call's. The check
// reads every CPU's TLBs, which only det mode allows (one goroutine runs at
// a time); in parallel mode it is off.
func (k *Kernel) checkTLB(c *sysCall) {
	if !k.det {
		return
	}
	mm := c.t.mm
	excused := func(va uint64) bool {
		for _, v := range c.visits {
			if va >= v.lo && va < v.hi && v.ptl.seq.Load() != v.seq {
				return true
			}
		}
		return false
	}
	for i := 0; i < k.m.NumCPUs(); i++ {
		cpu := k.m.CPU(i)
		cpu.CachedLeaves(mm.asid, c.start, c.end, func(e mmu.CachedLeaf) {
			why := staleReason(mm, e)
			if why == "" || excused(e.VA) {
				return
			}
			tlb := "L1"
			if e.L2 {
				tlb = "L2"
			}
			k.oracle.report(StaleTLB, c.t.cpu, c.t.name, e.VA, e.PFN,
				fmt.Sprintf("%v returned at clock %d with cpu%d's %s TLB still holding a translation to pfn %#x that %s",
					c.kind, k.Now(), i, tlb, e.PFN, why))
		})
	}
}

// staleReason says how cached translation e exceeds what its PTE allows
// now, or "" if it does not.
func staleReason(mm *MM, e mmu.CachedLeaf) string {
	pte, ok := mm.tables.Lookup(e.VA)
	switch {
	case !ok || !pte.Valid():
		return "the PTE no longer maps"
	case pte.PFN() != e.PFN:
		return fmt.Sprintf("the PTE now maps to pfn %#x", pte.PFN())
	case e.User && !pte.User():
		return "the PTE no longer lets EL0 access"
	case e.Write && pte.Rdonly():
		return "is writable while the PTE is read-only"
	}
	return ""
}

func (k callKind) String() string {
	switch k {
	case callMprotect:
		return "mprotect"
	case callMunmap:
		return "munmap"
	case callDontneed:
		return "madvise(MADV_DONTNEED)"
	case callFree:
		return "madvise(MADV_FREE)"
	case callPageout:
		return "madvise(MADV_PAGEOUT)"
	case callMremap:
		return "mremap"
	}
	return fmt.Sprintf("call(%d)", uint8(k))
}
