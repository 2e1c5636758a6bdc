// Package mm is the emulated kernel: address spaces with VMAs and ASIDs, the
// fault handler, mmap/munmap/mprotect/madvise, the mmu_gather, the batched
// unmap state of reclaim (tlb_ubc, tlb_flush_batched), rmap, swap, and the
// oracle that checks what user programs see. Names follow the kernel's, with
// the kernel function in each doc comment.
//
// The kernel touches TLBs only through TLBI/DSB on the CPU it runs on, as
// Linux does; what it flushes, and when, is decided by two policies it
// declares and package policy implements: BatchPolicy (reclaim's deferred
// flush and flush_tlb_batched_pending) and NestedPolicy (what tlb_finish_mmu
// does when gathers on one mm overlap).
//
// Invariants:
//   - Every PTE of a user mapping is changed under the PTL of its level-3
//     table, and flush_tlb_batched_pending runs right after the PTL is taken
//     where Linux calls it (change_pte_range, zap_pte_range, the madvise
//     walkers, again after re-taking a dropped PTL).
//   - A frame is freed only after every TLB entry that could still reach it
//     has been invalidated and the invalidation completed (a DSB by the CPU
//     that issued it) — unless a policy under test is wrong, which is what
//     the oracle then reports as use after free.
//   - The oracle sees every user access and every syscall return through one
//     global clock (Kernel.Now).
//
// Lock order (outermost first):
//
//	MM.mmapLock (sched.RWMutex, the mmap lock)
//	  MM.rmapLock (sched.RWMutex, the anon_vma lock: rmap walks read, freeing page tables writes)
//	    PTL (sched.Mutex per level-3 table, split page-table locks)
//	      Folio.mu, MM.Pending.mu, MM.ptlMu, swapDevice.mu, shadow.mu (leaf locks)
//
// Reclaim takes the rmap lock and a PTL without the mmap lock, so it never
// waits for the mmap lock while holding either.
package mm
