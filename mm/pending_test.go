package mm_test

import (
	"testing"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
)

// The range policy's interval: widened by every deferred unmap, cleared by
// a flusher only if nothing was added since its snapshot, and the line
// transfer reported when another CPU wrote it last.
func TestPendingInterval(t *testing.T) {
	var p mm.PendingInterval
	if _, _, _, ok := p.Snapshot(); ok {
		t.Fatal("a new interval is not empty")
	}
	if !p.Widen(0, 0x5000) {
		t.Error("the first write did not bring the line")
	}
	if p.Widen(0, 0x3123) {
		t.Error("a write by the line's owner counted as a transfer")
	}
	lo, hi, gen, ok := p.Snapshot()
	if !ok || lo != 0x3000 || hi != 0x5000 {
		t.Fatalf("interval %#x-%#x (%v), want 0x3000-0x5000", lo, hi, ok)
	}
	if !p.Widen(1, 0x9000) {
		t.Error("a write from another CPU did not count as a transfer")
	}
	p.Clear(0, gen) // stale snapshot: the page added meanwhile must stay
	if lo, hi, gen2, ok := p.Snapshot(); !ok || lo != 0x3000 || hi != 0x9000 {
		t.Fatalf("after a stale clear: %#x-%#x (%v)", lo, hi, ok)
	} else {
		p.Clear(0, gen2)
	}
	if _, _, _, ok := p.Snapshot(); ok {
		t.Fatal("not empty after a clear with the current generation")
	}
	p.Widen(2, 0x7000)
	if lo, hi, _, ok := p.Snapshot(); !ok || lo != 0x7000 || hi != 0x7000 {
		t.Fatalf("after clearing, a new interval %#x-%#x", lo, hi)
	}
}

// FlushTLBRangeOps issues at most one range TLBI per scale and one single
// page, and flush_tlb_mm from MAX_DVM_OPS pages.
func TestFlushTLBRangeOps(t *testing.T) {
	for _, tc := range []struct {
		pages, ops, rvale, flushMM uint64
	}{
		{1, 1, 0, 0},
		{2, 1, 1, 0},
		{3, 2, 1, 0},
		{100, 2, 2, 0}, // 64 + 36
		{511, 3, 2, 0}, // 448 + 62 in range ops, and one page
		{512, 1, 0, 1}, // flush_tlb_mm
	} {
		g := newRig(t, 1, "range", "fullmm", 1)
		var ctr mmu.Counters
		g.single(t, func(tk *mm.Task) {
			before := *tk.CPU().Counters()
			tk.FlushTLBRangeOps(tk.MM(), 0x10_0000_0000, tc.pages)
			ctr = *tk.CPU().Counters()
			for i := range ctr.TLBI {
				ctr.TLBI[i] -= before.TLBI[i]
			}
		})
		if got := ctr.TLBIs(); got != tc.ops {
			t.Errorf("%d pages: %d TLBIs, want %d", tc.pages, got, tc.ops)
		}
		if got := ctr.TLBI[mmu.RVALE1IS]; got != tc.rvale {
			t.Errorf("%d pages: %d range TLBIs, want %d", tc.pages, got, tc.rvale)
		}
		if got := g.k.Stats.FlushMM.Load(); got != tc.flushMM {
			t.Errorf("%d pages: %d flush_tlb_mm, want %d", tc.pages, got, tc.flushMM)
		}
	}
}
