// Package mm is the emulated kernel: address spaces with VMAs and ASIDs,
// processes (fork with copy on write, exec, exit), the fault handler with
// fault-around, mmap/munmap/mprotect/madvise, the mmu_gather, the batched
// unmap state of reclaim (tlb_ubc, tlb_flush_batched), the page cache of
// files and shmem, rmap from a folio to every PTE that maps it, swap, and
// the oracle that checks what user programs see. Names follow the kernel's,
// with the kernel function in each doc comment.
//
// The kernel touches TLBs only through TLBI/DSB on the CPU it runs on, as
// Linux does; what it flushes, and when, is decided by two policies it
// declares and package policy implements: BatchPolicy (reclaim's deferred
// flush and flush_tlb_batched_pending) and NestedPolicy (what tlb_finish_mmu
// does when gathers on one mm overlap). Its work costs the cycles of
// mmu.CostModel's kernel entries, charged to the CPU that does it.
// On the x86 machine flavours the flush primitives are x86's
// (archflush.go, tlbflush.go): INVLPGB and TLBSYNC, or IPI shootdowns over
// mm_cpumask; a policy reaches them through ArchTLBBatchAddPending,
// ArchTLBBatchFlush and the FlushTLB* helpers.
//
// Invariants:
//   - Every PTE of a user mapping is changed under the PTL of its level-3
//     table, and flush_tlb_batched_pending runs right after the PTL is taken
//     where Linux calls it (change_pte_range, zap_pte_range — exit's
//     included — the madvise walkers, again after re-taking a dropped PTL).
//   - A folio's rmap lists exactly the PTEs that map it; its reference count
//     is one per mapping, one for the page cache while it is in it, one per
//     isolation. Reclaim unmaps every mapping, deferring one flush per mm.
//   - A frame is freed only after every TLB entry that could still reach it
//     has been invalidated and the invalidation completed (a DSB by the CPU
//     that issued it) — unless a policy under test is wrong, which is what
//     the oracle then reports as use after free. An ASID is reused only
//     after exit's flush_tlb_mm completed. With KPTI an mm's ASID is the
//     odd one of a pair and every user TLBI goes out for both (TLBIUser).
//   - A swap slot lives while anything refers to it: reclaim until it is
//     done with the folio, each swap PTE (several after fork), a shmem
//     file's entry.
//   - A task runs on one CPU at a time. A movable one (NewMovableTask)
//     migrates only at Migrate or a PreemptionPoint, holding no lock, and
//     the context switch on the CPU it leaves executes __switch_to's
//     dsb(ish), completing that CPU's TLBIs (unless FixSwitchToDSB is
//     reverted: then a batch begun there may end with a DSB elsewhere that
//     completes none of them).
//   - The oracle sees every user access and every syscall return through one
//     global clock (Kernel.Now).
//
// Lock order (outermost first):
//
//	MM.mmapLock (sched.RWMutex, the mmap lock)
//	  MM.rmapLock (sched.RWMutex, the anon_vma/i_mmap lock: rmap walks read, freeing page tables and split_folio write)
//	    PTL (sched.Mutex per level-3 table, split page-table locks)
//	      File.mu (the page cache)
//	        swapDevice.mu
//	          Kernel.splitMu (dissolving a large folio, mthp.go)
//	            Folio.mu
//	      MM.Pending.mu, MM.ptlMu, shadow.mu, Kernel.mu (leaf locks)
//
// Reclaim takes an mm's rmap lock and a PTL without the mmap lock, one
// mapping at a time, so it never waits for the mmap lock while holding
// either; direct reclaim from an allocation runs with no PTL held.
package mm
