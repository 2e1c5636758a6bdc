package policy

import "github.com/mmubench/mmubench/mm"

// deferred is what every batching policy does on arm64 when reclaim unmaps
// a page (arch_tlbbatch_add_pending: __flush_tlb_range_nosync, the TLBI now
// and no DSB) and at the end of the batch (arch_tlbbatch_flush: dsb(ish) on
// the same task — which completes its own TLBIs).
type deferred struct{}

func (deferred) ShouldDefer(*mm.MM) bool { return true }

func (deferred) AddPending(t *mm.Task, m *mm.MM, va uint64) { t.FlushTLBPageNosync(m, va) }

func (deferred) Flush(t *mm.Task) { t.CPU().DSBISH() }

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
func (DSBOnly) FlushPending(t *mm.Task, _ *mm.MM) { t.CPU().DSBISH() }

// FlushMM is Ryan Roberts' fix (4b634918384c): flush_tlb_mm, whose own
// TLBI ASIDE1IS and DSB complete on every CPU — at the price of every CPU's
// every cached translation of the mm.
type FlushMM struct{ deferred }

func (FlushMM) Name() string                      { return "flush-mm" }
func (FlushMM) FlushPending(t *mm.Task, m *mm.MM) { t.FlushTLBMM(m) }

// Range flushes only the pages pending batches cover, with the caller's own
// TLBIs and DSB — correct for the same reason as FlushMM — and falls back to
// flush_tlb_mm from MAX_DVM_OPS pages. The reclaiming task records each page
// in the mm's PendingRange and removes it when its batch completes.
type Range struct{ deferred }

func (Range) Name() string { return "range" }

func (Range) AddPending(t *mm.Task, m *mm.MM, va uint64) {
	t.FlushTLBPageNosync(m, va)
	m.Pending.Add(va)
	t.UBC.Pages = append(t.UBC.Pages, mm.PendingPage{MM: m, VA: va})
}

func (Range) Flush(t *mm.Task) {
	t.CPU().DSBISH()
	for _, p := range t.UBC.Pages {
		p.MM.Pending.Remove(p.VA)
	}
	t.UBC.Pages = t.UBC.Pages[:0]
}

func (Range) FlushPending(t *mm.Task, m *mm.MM) {
	pages, all := m.Pending.Snapshot()
	if all {
		t.FlushTLBMM(m)
		return
	}
	t.FlushTLBPages(m, pages)
}
