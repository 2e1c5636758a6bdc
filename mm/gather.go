package mm

import (
	"fmt"

	"github.com/mmubench/mmubench/pagetable"
)

// MMUGather batches the TLB flush and the page frees of one operation that
// clears PTEs (struct mmu_gather): frames are freed only after the flush.
type MMUGather struct {
	t  *Task
	mm *MM
	// Start, End: the operation's range (what the 2017 nested fix flushes).
	Start, End uint64
	// the range of PTEs actually cleared or changed; end == 0: none
	start, end  uint64
	fullMM      bool
	freedTables bool
	pages       []uint64 // folio references to drop after the flush
	tables      []uint64 // page-table frames to free after the flush
}

// tlbGatherMMU starts a gather on mm (tlb_gather_mmu): it counts itself in
// mm->tlb_flush_pending, so concurrent gathers see each other.
func (t *Task) tlbGatherMMU(mm *MM, start, end uint64) *MMUGather {
	mm.tlbFlushPending.Add(1)
	return &MMUGather{t: t, mm: mm, Start: start, End: end}
}

// Task and MM say whose gather this is.
func (g *MMUGather) Task() *Task { return g.t }
func (g *MMUGather) MM() *MM     { return g.mm }

// SetRange makes the gather flush [start, end) (the 2017 nested fix).
func (g *MMUGather) SetRange(start, end uint64) { g.start, g.end = start, end }

// SetFullMM makes the gather flush the whole mm, walk caches included
// (today's nested fix: tlb->fullmm = 1, freed_tables = 1).
func (g *MMUGather) SetFullMM() {
	g.fullMM, g.freedTables = true, true
	g.start, g.end = 0, 0
}

// removeTLBEntry records that the PTE of va was changed and its TLB
// entries must go (tlb_remove_tlb_entry / tlb_flush_pte_range).
func (g *MMUGather) removeTLBEntry(va uint64) {
	if g.end == 0 || va < g.start {
		if g.end == 0 {
			g.end = va + pagetable.PageSize
		}
		g.start = va
	}
	g.end = max(g.end, va+pagetable.PageSize)
}

// removePage drops a folio reference after the flush (tlb_remove_page).
func (g *MMUGather) removePage(pfn uint64) { g.pages = append(g.pages, pfn) }

// removeTable frees the page-table frame that mapped from va after the
// flush (pte_free_tlb → tlb_remove_table). Like tlb_flush_pmd_range it
// widens the flush to va's page, so that the flush — non-last-level, since
// tables were freed — drops the walk-cache entries that lead to the frame
// even when no PTE of the range was cleared (a range already swapped out).
func (g *MMUGather) removeTable(pfn, va uint64) {
	g.tables = append(g.tables, pfn)
	g.freedTables = true
	if !g.fullMM {
		g.removeTLBEntry(va)
	}
}

// flushMMU flushes what the gather recorded, then frees its pages and
// tables (tlb_flush_mmu).
func (g *MMUGather) flushMMU() {
	switch {
	case g.fullMM:
		g.t.FlushTLBMM(g.mm)
	case g.end != 0:
		g.t.FlushTLBRange(g.mm, g.start, g.end, !g.freedTables)
	}
	g.start, g.end = 0, 0
	for _, pfn := range g.pages {
		g.t.k.FolioPut(g.t, pfn)
	}
	for _, pfn := range g.tables {
		g.t.k.phys.FreeTable(pfn)
	}
	g.pages, g.tables = g.pages[:0], g.tables[:0]
}

// tlbFinishMMU ends the gather (tlb_finish_mmu). If another gather on the
// mm is live, this one may have skipped PTEs the other already changed but
// not yet flushed; the nested policy decides what to flush for them.
func (g *MMUGather) tlbFinishMMU() {
	if n := g.mm.tlbFlushPending.Load(); n > 1 { // mm_tlb_flush_nested
		g.t.traceKernel(fmt.Sprintf("tlb_finish_mmu: %d gathers live (nested): %s", n, g.t.k.nested.Name()))
		g.t.k.Stats.NestedFlushes.Add(1)
		g.t.k.nested.FinishNested(g.t, g)
	}
	g.flushMMU()
	g.mm.tlbFlushPending.Add(-1)
}
