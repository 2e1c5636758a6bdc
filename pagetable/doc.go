// Package pagetable implements VMSAv8-64 translation tables for the 4 KiB
// granule and 48-bit virtual addresses: four levels (0-3) of 512 eight-byte
// descriptors, in the real descriptor format, living in frames of an emulated
// physical Memory. The emulated MMU walks them (WalkFrom) and the emulated
// Linux kernel edits them (Tables). The shape follows gVisor's
// pkg/ring0/pagetables: a PTE type whose methods say what its bits mean, and
// range walkers driven by small visitor types.
//
// # Invariants
//
// Atomic descriptors. Every descriptor word is read and written only through
// sync/atomic (the Slot methods). A walk reads each descriptor exactly once,
// as the hardware's single-copy-atomic 64-bit descriptor fetch does, and acts
// only on the value it read. Updates that depend on the old value use
// CompareAndSwap, so kernel updates and the emulated hardware's Access flag
// and DBM updates race exactly as they do on silicon (Linux: the cmpxchg
// loops of ptep_set_access_flags and __ptep_set_wrprotect).
//
// Lock-free table allocation. Ensure allocates a zeroed frame and publishes
// it with CompareAndSwap(0 -> table descriptor) on the parent descriptor; the
// atomic publication orders the zero fill before any walk that loads the new
// descriptor. A goroutine that loses the race frees its never-published frame
// and descends into the winner's, so each descriptor gets at most one table.
// Linux gets the same result under mm->page_table_lock (__pte_alloc /
// pmd_populate). Ensure never replaces a non-zero descriptor.
//
// Table freeing. Intermediate tables are removed only by FreeEmpty, and never
// the root. The caller of FreeEmpty must exclude, on that range, everything
// that installs or follows tables: Ensure and Map, and kernel walkers holding
// a Slot or LeafTable from the range (Linux's free_pgtables() runs with the
// mmap lock held for write). Emulated hardware walks are not excluded: a CPU
// may be walking an unlinked table until the TLB and walk-cache invalidation,
// which is why FreeEmpty hands each unlinked frame to a callback rather than
// freeing it (Linux: tlb_remove_table, freed after the flush).
//
// Leaf updates. Level-3 descriptors may be loaded and compare-and-swapped by
// anyone at any time; serialising the kernel's own updates to one leaf table
// (the split PTE lock) is the caller's business.
package pagetable
