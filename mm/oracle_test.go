package mm_test

import (
	"sync/atomic"
	"testing"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/sched"
)

// racingMadvise is a legal race the oracle must not flag: CPU0 calls
// madvise(advice) over the buffer while CPU1, which calls no madvise
// itself, keeps storing (MADV_FREE) or loading (MADV_DONTNEED) its pages
// through its cached translations. A store racing another thread's
// in-flight MADV_FREE may be dropped; a load racing an in-flight
// MADV_DONTNEED may still see the old contents. After the call returned,
// kswapd reclaims the buffer and CPU1 reads it back: what it stored after
// the call returned must be there.
func racingMadvise(t *testing.T, advice mm.Advice, seed uint64) *rig {
	g := newRig(t, 3, "flush-mm", "fullmm", seed)
	space, err := g.k.NewMM()
	must(t, err)
	a := g.k.NewTask(g.m.CPU(0), space, "madvise")
	b := g.k.NewTask(g.m.CPU(1), space, "racer")
	kswapd := g.k.NewTask(g.m.CPU(2), nil, "kswapd")
	const pages = 16
	var va atomic.Uint64
	var advised, raced, reclaimed atomic.Bool
	var q sched.WaitQueue
	notify := func(f *atomic.Bool) { f.Store(true); q.Notify() }
	if err := g.m.Run(func(c *mmu.CPU) {
		switch c.ID() {
		case 0:
			buf, err := a.Mmap(pages*page, mm.ProtRead|mm.ProtWrite, false)
			must(t, err)
			for i := uint64(0); i < pages; i++ {
				must(t, a.Store(buf+i*page, i+1))
			}
			va.Store(buf)
			q.Notify()
			must(t, a.Madvise(buf, pages*page, advice))
			notify(&advised)
		case 1:
			q.Wait(b.Thread(), "mapped", func() bool { return va.Load() != 0 })
			buf := va.Load()
			for n := uint64(1); !advised.Load(); n++ {
				for i := uint64(0); i < pages; i++ {
					if advice == mm.MadvFree {
						must(t, b.Store(buf+i*page, n<<8|i))
					} else if _, err := b.Load(buf + i*page); err != nil {
						t.Error(err)
					}
				}
			}
			notify(&raced)
			q.Wait(b.Thread(), "reclaimed", reclaimed.Load)
			for i := uint64(0); i < pages; i++ {
				if _, err := b.Load(buf + i*page); err != nil {
					t.Error(err)
				}
			}
		case 2:
			q.Wait(kswapd.Thread(), "racer done", raced.Load)
			buf := va.Load()
			var pfns []uint64
			for i := uint64(0); i < pages; i++ {
				if pte, ok := space.Tables().Lookup(buf + i*page); ok && g.k.FolioGet(pte.PFN()) {
					pfns = append(pfns, pte.PFN())
				}
			}
			g.r.ReclaimPages(kswapd, pfns)
			notify(&reclaimed)
		}
	}); err != nil {
		t.Fatal(err)
	}
	return g
}

// The two false positives of an oracle that applied MADV_FREE and
// MADV_DONTNEED at each PTE update rather than at the call's return.
func TestOracleRacingMadviseIsLegal(t *testing.T) {
	for _, tc := range []struct {
		name   string
		advice mm.Advice
	}{
		{"store-racing-madv-free", mm.MadvFree},
		{"load-racing-madv-dontneed", mm.MadvDontneed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seeds := 200
			if testing.Short() {
				seeds = 40
			}
			for seed := uint64(1); seed <= uint64(seeds); seed++ {
				g := racingMadvise(t, tc.advice, seed)
				if o := g.k.Oracle(); o.Total() != 0 {
					t.Fatalf("seed %d: %d violations under flush-mm + fullmm: %v", seed, o.Total(), o.FirstAny())
				}
			}
		})
	}
}

// munmap of a range whose pages are all swapped out clears no present PTE,
// yet frees the page tables another CPU's walk cache still points at: the
// gather must widen its flush to them (pte_free_tlb), or a later walk on
// that CPU starts from a freed frame.
func TestMunmapSwappedOutFlushesWalkCache(t *testing.T) {
	// no-batch: reclaim leaves no pending batch whose flush_tlb_mm in
	// munmap's flush_tlb_batched_pending would hide the missing flush.
	g := newRig(t, 3, "no-batch", "fullmm", 1)
	space, err := g.k.NewMM()
	must(t, err)
	a := g.k.NewTask(g.m.CPU(0), space, "unmapper")
	b := g.k.NewTask(g.m.CPU(1), space, "toucher")
	kswapd := g.k.NewTask(g.m.CPU(2), nil, "kswapd")
	const pages = 4
	var va atomic.Uint64
	var touched, swapped, unmapped atomic.Bool
	var q sched.WaitQueue
	notify := func(f *atomic.Bool) { f.Store(true); q.Notify() }
	if err := g.m.Run(func(c *mmu.CPU) {
		switch c.ID() {
		case 0:
			buf, err := a.Mmap(pages*page, mm.ProtRead|mm.ProtWrite, false)
			must(t, err)
			for i := uint64(0); i < pages; i++ {
				must(t, a.Store(buf+i*page, i+1))
			}
			va.Store(buf)
			q.Notify()
			q.Wait(a.Thread(), "swapped out", swapped.Load)
			must(t, a.Munmap(buf, pages*page))
			notify(&unmapped)
		case 1:
			q.Wait(b.Thread(), "mapped", func() bool { return va.Load() != 0 })
			for i := uint64(0); i < pages; i++ {
				if _, err := b.Load(va.Load() + i*page); err != nil {
					t.Error(err)
				}
			}
			notify(&touched)
			q.Wait(b.Thread(), "unmapped", unmapped.Load)
			if _, err := b.Load(va.Load()); err == nil {
				t.Error("a load after munmap succeeded")
			}
		case 2:
			q.Wait(kswapd.Thread(), "touched", touched.Load)
			var pfns []uint64
			for i := uint64(0); i < pages; i++ {
				if pte, ok := space.Tables().Lookup(va.Load() + i*page); ok && g.k.FolioGet(pte.PFN()) {
					pfns = append(pfns, pte.PFN())
				}
			}
			g.r.ReclaimPages(kswapd, pfns)
			for i := uint64(0); i < pages; i++ {
				if _, ok := space.Tables().Lookup(va.Load() + i*page); ok {
					t.Errorf("page %d still mapped after reclaim", i)
				}
			}
			notify(&swapped)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if n := g.k.Oracle().Count(mm.UseAfterFree); n != 0 {
		t.Fatalf("%d walks through freed tables: %v", n, g.k.Oracle().First(mm.UseAfterFree))
	}
	if n := g.m.Counters().StaleTableWalks; n != 0 {
		t.Fatalf("%d stale table walks", n)
	}
}
