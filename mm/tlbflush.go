package mm

import "github.com/mmubench/mmubench/pagetable"

// The arm64 TLB flush primitives (arch/arm64/include/asm/tlbflush.h), run on
// the task's CPU. Every one issues TLBIs from this CPU and, where the
// kernel's does, completes them with this CPU's own DSB.

// FlushTLBMM flushes every translation of mm on every CPU (flush_tlb_mm):
// DSB ISHST; TLBI ASIDE1IS; DSB ISH.
func (t *Task) FlushTLBMM(mm *MM) {
	t.k.Stats.FlushMM.Add(1)
	t.cpu.DSBISHST()
	t.cpu.TLBIASIDE1IS(mm.asid)
	t.cpu.DSBISH()
}

// FlushTLBPageNosync issues the TLBI for one page without waiting for it
// (__flush_tlb_page_nosync): DSB ISHST; TLBI VALE1IS. Nothing is complete
// until this CPU executes a DSB ISH.
func (t *Task) FlushTLBPageNosync(mm *MM, va uint64) {
	t.cpu.DSBISHST()
	t.cpu.TLBIVALE1IS(mm.asid, va)
}

// FlushTLBPage flushes one page and waits (flush_tlb_page):
// DSB ISHST; TLBI VALE1IS; DSB ISH.
func (t *Task) FlushTLBPage(mm *MM, va uint64) {
	t.FlushTLBPageNosync(mm, va)
	t.cpu.DSBISH()
}

// FlushTLBRange flushes [start, end) of mm (__flush_tlb_range): a TLBI per
// page, last-level only unless page tables were freed, then DSB ISH; from
// MaxDVMOps pages on, flush_tlb_mm instead.
func (t *Task) FlushTLBRange(mm *MM, start, end uint64, lastLevel bool) {
	start &^= pagetable.PageSize - 1
	pages := (end - start + pagetable.PageSize - 1) >> pagetable.PageShift
	if pages == 0 {
		return
	}
	if pages >= MaxDVMOps {
		t.k.Stats.RangeFallbacks.Add(1)
		t.FlushTLBMM(mm)
		return
	}
	t.k.Stats.RangeFlushes.Add(1)
	t.cpu.DSBISHST()
	for va := start; va < end; va += pagetable.PageSize {
		if lastLevel {
			t.cpu.TLBIVALE1IS(mm.asid, va)
		} else {
			t.cpu.TLBIVAE1IS(mm.asid, va)
		}
	}
	t.cpu.DSBISH()
}

// FlushTLBPages flushes a set of pages of mm with one DSB at the end, or
// the whole mm from MaxDVMOps pages on.
func (t *Task) FlushTLBPages(mm *MM, pages []uint64) {
	if len(pages) == 0 {
		return
	}
	if len(pages) >= MaxDVMOps {
		t.k.Stats.RangeFallbacks.Add(1)
		t.FlushTLBMM(mm)
		return
	}
	t.k.Stats.RangeFlushes.Add(1)
	t.cpu.DSBISHST()
	for _, va := range pages {
		t.cpu.TLBIVALE1IS(mm.asid, va)
	}
	t.cpu.DSBISH()
}

// maxTLBIRangeNum and maxTLBIRangeScale bound one range TLBI (RVALE1IS):
// it covers (NUM+1) << (5*SCALE+1) pages, NUM < 32, SCALE < 4.
const (
	maxTLBIRangeNum   = 31
	maxTLBIRangeScale = 3
)

// FlushTLBRangeOps flushes the pages [start, start+pages*4K) of mm with
// range TLBIs (__flush_tlb_range_op with FEAT_TLBIRANGE: the range split
// into at most one RVALE1IS per scale, a single page left over by VALE1IS),
// then DSB ISH; from MaxDVMOps pages on, flush_tlb_mm instead.
func (t *Task) FlushTLBRangeOps(mm *MM, start, pages uint64) {
	if pages == 0 {
		return
	}
	if pages >= MaxDVMOps {
		t.k.Stats.RangeFallbacks.Add(1)
		t.FlushTLBMM(mm)
		return
	}
	t.k.Stats.RangeFlushes.Add(1)
	t.cpu.DSBISHST()
	start &^= pagetable.PageSize - 1
	for scale := maxTLBIRangeScale; pages > 0; {
		if pages == 1 {
			t.cpu.TLBIVALE1IS(mm.asid, start)
			break
		}
		unit := uint64(1) << (5*scale + 1)
		if num := min(pages/unit, maxTLBIRangeNum+1); num > 0 {
			t.cpu.TLBIRVALE1IS(mm.asid, start, num*unit)
			start += num * unit << pagetable.PageShift
			pages -= num * unit
			continue
		}
		scale--
	}
	t.cpu.DSBISH()
}
