package mm

import (
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/pagetable"
)

// The TLB flush primitives, run on the task's CPU. On arm64 they are
// arch/arm64/include/asm/tlbflush.h's: every one issues TLBIs from this CPU
// and, where the kernel's does, completes them with this CPU's own DSB. On
// x86-invlpgb they are arch/x86/mm/tlb.c's broadcast_tlb_flush (INVLPGB
// from this CPU, completed by its own TLBSYNC); on x86-ipi its
// flush_tlb_multi (a shootdown IPI to every CPU of mm_cpumask, waited for).
// Both x86 flavours flush the whole mm above tlb_single_page_flush_ceiling
// (X86FlushCeiling) pages, arm64 from MAX_DVM_OPS (MaxDVMOps).

// TLBIUser issues one TLBI of kind for user addresses of mm (va and pages
// as the kind takes them), as the kernel's flush helpers do: __tlbi, then
// with KPTI __tlbi_user — the same operation again for the user ASID of
// mm's pair, the one its user code runs with (mm.asid; kptiKernelASID is
// the other). Without KPTI the two are one ASID and it is issued once.
func (t *Task) TLBIUser(kind mmu.TLBIKind, mm *MM, va, pages uint64) {
	if t.k.kpti {
		t.cpu.TLBI(kind, kptiKernelASID(mm.asid), va, pages)
	}
	t.cpu.TLBI(kind, mm.asid, va, pages)
}

// FlushTLBMM flushes every translation of mm on every CPU (flush_tlb_mm):
// DSB ISHST; TLBI ASIDE1IS; DSB ISH (x86-invlpgb: INVLPGB of the PCID;
// TLBSYNC. x86-ipi: a PCID flush on every CPU of mm_cpumask).
func (t *Task) FlushTLBMM(mm *MM) {
	t.k.Stats.FlushMM.Add(1)
	if t.k.arch == mmu.ArchX86IPI {
		t.flushTLBMultiMM(mm, mmu.ASIDE1, 0, 0)
		return
	}
	t.cpu.DSBISHST()
	t.TLBIUser(mmu.ASIDE1IS, mm, 0, 0)
	t.cpu.DSBISH()
}

// FlushTLBPageNosync issues the TLBI for one page without waiting for it
// (__flush_tlb_page_nosync): DSB ISHST; TLBI VALE1IS. Nothing is complete
// until this CPU executes a DSB ISH. On x86 it is the batch's
// ArchTLBBatchAddPending (x86-ipi has nothing to issue: it records
// mm_cpumask).
func (t *Task) FlushTLBPageNosync(mm *MM, va uint64) {
	if t.k.arch.X86() {
		t.ArchTLBBatchAddPending(mm, va)
		return
	}
	t.cpu.DSBISHST()
	t.TLBIUser(mmu.VALE1IS, mm, va, 1)
}

// FlushTLBPage flushes one page and waits (flush_tlb_page):
// DSB ISHST; TLBI VALE1IS; DSB ISH.
func (t *Task) FlushTLBPage(mm *MM, va uint64) {
	if t.k.arch == mmu.ArchX86IPI {
		t.flushTLBMultiMM(mm, mmu.VAE1, va, 1)
		return
	}
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
	if t.k.arch.X86() {
		t.x86FlushRange(mm, start, pages, lastLevel)
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
			t.TLBIUser(mmu.VALE1IS, mm, va, 1)
		} else {
			t.TLBIUser(mmu.VAE1IS, mm, va, 1)
		}
	}
	t.cpu.DSBISH()
}

// x86FlushRange is flush_tlb_mm_range on x86: the whole mm above
// tlb_single_page_flush_ceiling pages; else, with INVLPGB, one INVLPGB per
// invlpgb_count_max pages (per page where tables were freed, so that the
// paging-structure caches go too) and TLBSYNC (broadcast_tlb_flush); with
// IPIs, a shootdown whose handler INVLPGs each page.
func (t *Task) x86FlushRange(mm *MM, start, pages uint64, lastLevel bool) {
	if pages > X86FlushCeiling {
		t.k.Stats.RangeFallbacks.Add(1)
		t.FlushTLBMM(mm)
		return
	}
	t.k.Stats.RangeFlushes.Add(1)
	if t.k.arch == mmu.ArchX86IPI {
		t.flushTLBMultiMM(mm, mmu.RVALE1, start, pages)
		return
	}
	for pages > 0 {
		n := uint64(1)
		switch {
		case !lastLevel:
			t.TLBIUser(mmu.VAE1IS, mm, start, 1)
		case pages == 1:
			t.TLBIUser(mmu.VALE1IS, mm, start, 1)
		default:
			n = min(pages, InvlpgbCountMax)
			t.TLBIUser(mmu.RVALE1IS, mm, start, n)
		}
		start += n << pagetable.PageShift
		pages -= n
	}
	t.cpu.DSBISH()
}

// FlushTLBPages flushes a set of pages of mm with one DSB at the end, or
// the whole mm from MaxDVMOps pages on. On x86, which has no such call, it
// flushes the pages' span as one range (the whole mm above the ceiling).
func (t *Task) FlushTLBPages(mm *MM, pages []uint64) {
	if len(pages) == 0 {
		return
	}
	if t.k.arch.X86() {
		lo, hi := pages[0], pages[0]
		for _, va := range pages {
			lo, hi = min(lo, va), max(hi, va)
		}
		t.x86FlushRange(mm, lo, (hi-lo)>>pagetable.PageShift+1, true)
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
		t.TLBIUser(mmu.VALE1IS, mm, va, 1)
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
// then DSB ISH; from MaxDVMOps pages on, flush_tlb_mm instead. On x86 it
// is flush_tlb_mm_range of the pages (x86FlushRange).
func (t *Task) FlushTLBRangeOps(mm *MM, start, pages uint64) {
	if pages == 0 {
		return
	}
	if t.k.arch.X86() {
		t.x86FlushRange(mm, start&^(pagetable.PageSize-1), pages, true)
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
			t.TLBIUser(mmu.VALE1IS, mm, start, 1)
			break
		}
		unit := uint64(1) << (5*scale + 1)
		if num := min(pages/unit, maxTLBIRangeNum+1); num > 0 {
			t.TLBIUser(mmu.RVALE1IS, mm, start, num*unit)
			start += num * unit << pagetable.PageShift
			pages -= num * unit
			continue
		}
		scale--
	}
	t.cpu.DSBISH()
}
