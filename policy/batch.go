package policy

import (
	"errors"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/pagetable"
)

// deferred is what every batching policy does when reclaim unmaps a page
// (arch_tlbbatch_add_pending) and at the end of the batch
// (arch_tlbbatch_flush), as the machine flavour does it (mm/archflush.go):
// on arm64 the TLBI now and no DSB, then dsb(ish) on the same task — which
// completes its own TLBIs; on x86-invlpgb INVLPGB now, then TLBSYNC; on
// x86-ipi the mm's cpumask recorded, then a shootdown IPI to those CPUs.
type deferred struct{}

func (deferred) ShouldDefer(*mm.MM) bool { return true }

func (deferred) AddPending(t *mm.Task, m *mm.MM, va uint64) { t.ArchTLBBatchAddPending(m, va) }

func (deferred) Flush(t *mm.Task) { t.ArchTLBBatchFlush() }

// NoBatch never defers: try_to_unmap_one does ptep_clear_flush.
type NoBatch struct{ deferred }

func (NoBatch) Name() string                      { return "no-batch" }
func (NoBatch) ShouldDefer(*mm.MM) bool           { return false }
func (NoBatch) FlushPending(t *mm.Task, m *mm.MM) { t.FlushTLBMM(m) } // unreachable: nothing is ever pending

// DSBOnly is arm64's arch_flush_tlb_batched_pending from 43b3dfdd0455 until
// 2025: a dsb(ish) on whatever CPU runs flush_tlb_batched_pending. That CPU
// did not issue the pending TLBIs, so its DSB completes none of them.
type DSBOnly struct{ deferred }

func (DSBOnly) Name() string                      { return "dsb-only" }
func (DSBOnly) FlushPending(t *mm.Task, _ *mm.MM) { t.CPU().DSBISH() } // x86-invlpgb: TLBSYNC only

// CheckArch refuses x86-ipi, where a bare completion barrier is no flush
// at all: nothing is ever left in flight for it to complete.
func (DSBOnly) CheckArch(a mmu.Arch) error {
	if a == mmu.ArchX86IPI {
		return errNoBarrierOnly
	}
	return nil
}

// errNoBarrierOnly says why a flush_tlb_batched_pending that is only a
// completion barrier cannot be written for x86-ipi.
var errNoBarrierOnly = errors.New("not expressible: its flush_tlb_batched_pending is only a completion barrier (DSB ISH, TLBSYNC), " +
	"but x86 IPI shootdown has no asynchronous invalidation to complete (arch_tlbbatch_add_pending only records a cpumask, " +
	"arch_tlbbatch_flush's IPIs are waited for); x86 uses flush_tlb_mm there (policy flush-mm)")

// FlushMM is Ryan Roberts' fix (4b634918384c): flush_tlb_mm, whose own
// TLBI ASIDE1IS and DSB complete on every CPU — at the price of every CPU's
// every cached translation of the mm.
type FlushMM struct{ deferred }

func (FlushMM) Name() string                      { return "flush-mm" }
func (FlushMM) FlushPending(t *mm.Task, m *mm.MM) { t.FlushTLBMM(m) }

// Range is a policy a kernel could implement: each deferred unmap widens a
// per-mm interval of pending pages (one compare-and-swap, charged as a
// cache-line transfer when the line comes from another CPU), and
// flush_tlb_batched_pending flushes just that interval with the caller's own
// range TLBIs and DSB — correct for the same reason as FlushMM — or the
// whole mm from MAX_DVM_OPS pages. The interval is consumed by the flush
// (mm.PendingInterval says why it is not cleared when the batches
// complete).
type Range struct{ deferred }

func (Range) Name() string { return "range" }

func (Range) AddPending(t *mm.Task, m *mm.MM, va uint64) {
	t.ArchTLBBatchAddPending(m, va)
	chargeLine(t, m.PendingInterval.Widen(t.CPU().ID(), va))
}

func (Range) FlushPending(t *mm.Task, m *mm.MM) {
	lo, hi, gen, ok := m.PendingInterval.Snapshot()
	if !ok {
		return // a flusher already covered every page added so far
	}
	t.FlushTLBRangeOps(m, lo, (hi-lo)>>pagetable.PageShift+1)
	chargeLine(t, m.PendingInterval.Clear(t.CPU().ID(), gen))
}

// chargeLine charges a write to a shared cache line: a transfer from the
// CPU that wrote it last, or a local atomic.
func chargeLine(t *mm.Task, transfer bool) {
	cost := t.CPU().Machine().Config().Cost
	if transfer {
		t.CPU().Charge(cost.CacheLineTransfer)
	} else {
		t.CPU().Charge(cost.PTEUpdate)
	}
}

// RangeIdeal flushes exactly the pages pending batches cover, with the
// caller's own TLBIs and DSB (the whole mm from MAX_DVM_OPS pages): each
// reclaiming task lists the pages it deferred and takes them out of the
// mm's exact set when its batch completes. No kernel could keep that (a set
// per mm, an unbounded list per task); it is here, at no bookkeeping cost,
// as the lower bound on what flushing only the pending pages could cost.
type RangeIdeal struct{ deferred }

func (RangeIdeal) Name() string { return "range-ideal" }

func (RangeIdeal) AddPending(t *mm.Task, m *mm.MM, va uint64) {
	t.ArchTLBBatchAddPending(m, va)
	m.PendingSet.Add(va)
	t.UBC.Pages = append(t.UBC.Pages, mm.PendingPage{MM: m, VA: va})
}

func (RangeIdeal) Flush(t *mm.Task) {
	t.ArchTLBBatchFlush()
	for _, p := range t.UBC.Pages {
		p.MM.PendingSet.Remove(p.VA)
	}
	t.UBC.Pages = t.UBC.Pages[:0]
}

func (RangeIdeal) FlushPending(t *mm.Task, m *mm.MM) {
	pages, all := m.PendingSet.Snapshot()
	if all {
		t.FlushTLBMM(m)
		return
	}
	t.FlushTLBPages(m, pages)
}
