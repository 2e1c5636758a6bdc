// Package mmu is the hardware: a machine of emulated arm64 CPUs, each with an
// L1 data TLB, a unified L2 TLB and a walk cache, sharing a physical memory of
// frames that hold real data, and the interconnect that carries broadcast TLB
// invalidations between them.
//
// The architectural rules it keeps (Arm ARM, VMSAv8-64; see docs/kernel-model.md §3):
//
//   - Fills come only from valid descriptors. The hardware sets AF in memory
//     on a walk (TCR_EL1.HA), and a store through a cached entry that is
//     read-only but DBM re-checks the descriptor in memory and clears AP[2]
//     with a compare-and-swap (TCR_EL1.HD), faulting if it became invalid. A
//     store through a cached writable entry touches no descriptor.
//
//   - A broadcast TLBI on CPU i posts an invalidation to every CPU, its own
//     included. Each target applies it at a moment of the delivery model's
//     choosing: a scheduler choice in det mode, a latency in target cycles in
//     parallel mode. Until then the target may keep hitting the old entry.
//
//   - A DSB on CPU i waits until every invalidation issued by i has been
//     applied on every target, and does nothing for invalidations issued by
//     other CPUs ("the execution of a DSB by a different observer does not
//     have this effect").
//
//   - No access is in flight when an invalidation is applied: a CPU applies
//     invalidations only at its yield points, between accesses, and an access
//     (lookup, walk, fill, data) runs whole. So an acknowledged invalidation
//     leaves no access that began with the old translation, which is what
//     gem5 waits for before a DSB completes; a walk that read a descriptor
//     before the kernel cleared it can still fill the old translation, and
//     the invalidation that follows removes it.
//
//   - Only the owning CPU mutates its TLBs: the issuer posts to the target's
//     inbox and kicks it; the target applies what is addressed to it at its
//     yield points or, when it is blocked or finished, in its service work.
//
//   - Frames carry a generation that changes on every allocation and free
//     (odd while allocated). A TLB entry remembers the generation it was
//     filled with, so an access through a stale entry into a freed or reused
//     frame is seen (the use-after-free oracle). An L1 hit skips the
//     comparison while no frame has been freed since it last compared all
//     its entries (freeepoch.go): the answer is the same.
//
//   - Machine flavours (Config.Arch, arch.go): on x86-invlpgb the broadcast
//     operations are INVLPGB and DSBISH is TLBSYNC, with the same completion
//     rule and DSB ISHST a no-op; on x86-ipi no broadcast operation exists
//     (issuing one is an error Machine.Run returns) and a remote flush is
//     FlushTLBMulti's shootdown, complete when it returns (ipi.go).
//
//   - A finished CPU goes offline: it applies what is addressed to it, empties
//     its TLBs, and later broadcasts no longer wait for it.
//
// Costs: every event charges the cycles of CostModel to the CPU it happens
// on. A DSB after broadcast TLBIs waits for a round trip acknowledged by
// every CPU and queues behind the other CPUs' DVM traffic, which each CPU
// publishes (dvmload.go): the one place where what one CPU costs depends on
// what the others do.
//
// Ownership: a CPU's TLBs, counters and delivery state are touched only by the
// CPU's goroutine. The inbox (posted to by other CPUs) is guarded by its own
// mutex; the issuer's count of outstanding invalidations is atomic. Descriptor
// words, frame words and generations, and Phys's count of frees, are
// accessed atomically.
//
// Lock order: Phys.mu and CPU.inboxMu are leaf locks; Machine's DVM load is
// atomic.
package mmu
