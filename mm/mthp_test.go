package mm_test

import (
	"testing"

	"github.com/mmubench/mmubench/mm"
)

// mthpRig is a one-CPU rig with large anonymous folios of 2^order pages.
func mthpRig(t *testing.T, order int) *rig {
	t.Helper()
	g := newRig(t, 1, "flush-mm", "fullmm", 1)
	must(t, g.k.SetAnonMTHPOrder(order))
	return g
}

// checkFolio checks that the pages [va, va+nr pages) are mapped by
// consecutive frames of one folio of want pages (want 1: each its own).
func checkFolio(t *testing.T, g *rig, tk *mm.Task, va uint64, nr, want int) {
	t.Helper()
	base := pfnOf(t, tk, va)
	for i := 0; i < nr; i++ {
		pfn := pfnOf(t, tk, va+uint64(i)*page)
		if pfn != base+uint64(i) {
			t.Errorf("page %d maps pfn %#x, want %#x", i, pfn, base+uint64(i))
		}
		if n := g.k.FolioNrPages(pfn); n != want {
			t.Errorf("page %d: folio of %d pages, want %d", i, n, want)
		}
		head := base
		if want == 1 {
			head = pfn
		}
		if h := g.k.FolioHead(pfn); h != head {
			t.Errorf("page %d: head %#x, want %#x", i, h, head)
		}
		if m := g.k.Folio(pfn).Mapcount(); m != 1 {
			t.Errorf("page %d: mapcount %d, want 1", i, m)
		}
	}
}

// An anonymous fault maps a whole large folio where the VMA asked for one
// and the aligned block fits; elsewhere a small one.
func TestMTHPFault(t *testing.T) {
	for _, tc := range []struct {
		name     string
		order    int
		huge     bool // MADV_HUGEPAGE over the block
		pages    int  // mapping length
		wantSize int  // pages of the first page's folio
	}{
		{"order2", 2, true, 4, 4},
		{"order3", 3, true, 16, 8},
		{"order4", 4, true, 16, 16},
		{"no-madvise", 4, false, 16, 1},
		{"block-past-vma", 4, true, 8, 1},
		{"disabled", 0, true, 16, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := mthpRig(t, tc.order)
			g.single(t, func(tk *mm.Task) {
				va, err := tk.Mmap(uint64(tc.pages)*page, mm.ProtRead|mm.ProtWrite, false)
				must(t, err)
				if tc.huge {
					must(t, tk.Madvise(va, uint64(tc.pages)*page, mm.MadvHugepage))
				}
				must(t, tk.Store(va, 7))
				if tc.wantSize == 1 {
					if _, ok := tk.MM().Tables().Lookup(va + page); ok {
						t.Errorf("a small fault mapped the next page too")
					}
					checkFolio(t, g, tk, va, 1, 1)
					return
				}
				checkFolio(t, g, tk, va, tc.wantSize, tc.wantSize)
				for i := 1; i < tc.wantSize; i++ {
					if v, err := tk.Load(va + uint64(i)*page); err != nil || v != 0 {
						t.Errorf("page %d reads %d, %v; want 0", i, v, err)
					}
				}
			})
			wantAllocs := uint64(0)
			if tc.wantSize > 1 {
				wantAllocs = 1
			}
			if n := g.k.Stats.MTHPAllocs.Load(); n != wantAllocs {
				t.Errorf("%d mTHP allocations, want %d", n, wantAllocs)
			}
			if n := g.k.Oracle().Total(); n != 0 {
				t.Errorf("violation: %v", g.k.Oracle().FirstAny())
			}
		})
	}
}

// MADV_FREE and MADV_PAGEOUT over part of a large folio split it (the PTEs
// still map the same frames, the data stays); over the whole folio they
// leave it whole (MADV_FREE) or split it in reclaim (MADV_PAGEOUT). What
// the program stored survives either way, unless MADV_FREE let reclaim
// drop it.
func TestMTHPSplitByMadvise(t *testing.T) {
	const nr = 16
	for _, tc := range []struct {
		name       string
		advice     mm.Advice
		lo, hi     int // the madvise range, in pages of the folio
		wantSplits uint64
		lazy       bool // the range's pages become lazy-free
	}{
		{"free-part", mm.MadvFree, 8, 12, 1, true},
		{"free-tail-page", mm.MadvFree, nr - 1, nr, 1, true},
		{"free-whole", mm.MadvFree, 0, nr, 0, true},
		{"pageout-part", mm.MadvPageout, 4, 8, 1, false},
		{"pageout-whole", mm.MadvPageout, 0, nr, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := mthpRig(t, 4)
			g.single(t, func(tk *mm.Task) {
				va, err := tk.Mmap(nr*page, mm.ProtRead|mm.ProtWrite, false)
				must(t, err)
				must(t, tk.Madvise(va, nr*page, mm.MadvHugepage))
				for i := 0; i < nr; i++ {
					must(t, tk.Store(va+uint64(i)*page, uint64(100+i)))
				}
				base := pfnOf(t, tk, va)
				must(t, tk.Madvise(va+uint64(tc.lo)*page, uint64(tc.hi-tc.lo)*page, tc.advice))
				if tc.advice == mm.MadvFree {
					want := 1
					if tc.wantSplits == 0 {
						want = nr
					}
					checkFolio(t, g, tk, va, nr, want)
					for i := 0; i < nr; i++ {
						f := g.k.Folio(base + uint64(i))
						inRange := i >= tc.lo && i < tc.hi
						if lazy := f.Flags()&mm.FolioSwapBacked == 0; lazy != (inRange && tc.lazy) {
							t.Errorf("page %d: lazy-free %v, want %v", i, lazy, inRange)
						}
					}
				}
				for i := 0; i < nr; i++ {
					if v, err := tk.Load(va + uint64(i)*page); err != nil || v != uint64(100+i) {
						t.Errorf("page %d reads %d, %v; want %d", i, v, err, 100+i)
					}
				}
			})
			if n := g.k.Stats.FolioSplits.Load(); n != tc.wantSplits {
				t.Errorf("%d splits, want %d", n, tc.wantSplits)
			}
			if tc.advice == mm.MadvPageout {
				if n := g.k.Stats.WrittenBack.Load(); n != uint64(tc.hi-tc.lo) {
					t.Errorf("%d pages written back, want %d", n, tc.hi-tc.lo)
				}
			}
			if n := g.k.Oracle().Total(); n != 0 {
				t.Errorf("violation: %v", g.k.Oracle().FirstAny())
			}
		})
	}
}

// Unmapping part of a large folio frees those frames (the folio is split
// first); unmapping the rest frees everything.
func TestMTHPPartialUnmap(t *testing.T) {
	const nr = 4
	g := mthpRig(t, 2)
	g.single(t, func(tk *mm.Task) {
		va, err := tk.Mmap(nr*page, mm.ProtRead|mm.ProtWrite, false)
		must(t, err)
		must(t, tk.Madvise(va, nr*page, mm.MadvHugepage))
		free := g.k.FreeFrames()
		must(t, tk.Store(va, 1))
		base := pfnOf(t, tk, va)
		inUse := free - g.k.FreeFrames() // the folio and its page tables
		must(t, tk.Madvise(va+page, page, mm.MadvDontneed))
		if g.k.FolioTestLarge(base) {
			t.Errorf("a folio with a page freed is still large")
		}
		if got := free - g.k.FreeFrames(); got != inUse-1 {
			t.Errorf("%d frames in use after zapping one page, want %d", got, inUse-1)
		}
		if v, _ := tk.Load(va + page); v != 0 {
			t.Errorf("zapped page reads %d, want 0", v)
		}
		must(t, tk.Munmap(va, nr*page))
		if got := g.k.FreeFrames(); got != free {
			t.Errorf("%d frames free after munmap, want %d", got, free)
		}
	})
}

// The walker that split a folio with the PTL dropped calls
// flush_tlb_batched_pending again after re-taking it (383c4613c67c) — and
// finds the split's own batched unmap pending, as Linux's does — unless
// the fix is reverted. One call finds nothing: the one under the first PTL.
func TestMTHPRelockFlush(t *testing.T) {
	for _, tc := range []struct {
		name        string
		advice      mm.Advice
		revert      bool
		wantPending uint64 // flush_tlb_batched_pending calls that flushed
	}{
		{"free", mm.MadvFree, false, 1},
		{"free-reverted", mm.MadvFree, true, 0},
		{"cold-pageout", mm.MadvPageout, false, 1},
		{"cold-pageout-reverted", mm.MadvPageout, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := mthpRig(t, 2)
			if tc.revert {
				g.k.Revert(mm.FixMadviseRelockFlush)
			}
			var pending uint64
			g.single(t, func(tk *mm.Task) {
				va, err := tk.Mmap(4*page, mm.ProtRead|mm.ProtWrite, false)
				must(t, err)
				must(t, tk.Madvise(va, 4*page, mm.MadvHugepage))
				must(t, tk.Store(va, 1))
				must(t, tk.Madvise(va+2*page, 2*page, tc.advice))
				pending = g.k.Stats.BatchedPending.Load()
			})
			if g.k.Stats.FolioSplits.Load() != 1 {
				t.Fatalf("%d splits, want 1", g.k.Stats.FolioSplits.Load())
			}
			if pending != tc.wantPending {
				t.Errorf("%d flush_tlb_batched_pending calls flushed, want %d", pending, tc.wantPending)
			}
		})
	}
}
