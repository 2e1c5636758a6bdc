package workloads

import (
	"fmt"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
)

func init() {
	register(&Workload{
		Name: "mthp-split-race",
		Description: "383c4613c67c's race: MADV_FREE over part of a large folio drops the PTL to split it " +
			"while reclaim unmaps a page of the table with a deferred flush; re-taking the PTL without " +
			"flush_tlb_batched_pending, it drops that page's swap entry and returns with the writer's " +
			"stale writable TLB entry, and the write through it is lost",
		MinCPUs:  3,
		Rounds:   4,
		Defaults: Params{Pages: 16},
		Variants: []Variant{
			{Name: "fixed", Description: "flush_tlb_batched_pending after re-taking the PTL (383c4613c67c)"},
			{Name: "unfixed", Description: "the PTL re-taken without flush_tlb_batched_pending",
				Revert: []mm.Fix{mm.FixMadviseRelockFlush}},
		},
		Setup: setupMTHPSplitRace,
	})
}

// mthpUnit is the pages of one round's part of the buffer: a large folio
// at its start, the page reclaim takes right after it, and a page the
// writer spins on. Sixteen units fill a leaf table, so a unit never
// straddles two.
const mthpUnit = 32

// mthpOrder turns --pages (the large folio's size: 4, 8 or 16 pages) into
// a folio order.
func mthpOrder(pages int) (int, error) {
	switch pages {
	case 4:
		return 2, nil
	case 8:
		return 3, nil
	case 16:
		return 4, nil
	}
	return 0, fmt.Errorf("--pages %d (the large folio's pages: 4, 8 or 16)", pages)
}

// setupMTHPSplitRace is the race 383c4613c67c closed, one trial per round,
// each in a unit of its own: a large anonymous folio L of --pages pages
// (MADV_HUGEPAGE, mapped by PTEs), the small page Q after it, and a spin
// page, all in one leaf table. CPU0 (the writer) writes every page of L
// and Q — its TLB caches them writable — and then spins on its spin page.
// CPU1 calls madvise(MADV_FREE) over L's last page and Q: the range covers
// L only in part, so madvise_free_pte_range drops the PTL to split L. CPU2
// (kswapd) reclaims Q with TTU_BATCH_FLUSH once L's split has begun (L is
// locked), so its unmap lands in the dropped-PTL window: Q's PTE becomes a
// swap entry, its flush deferred. Without the fix the walker re-takes the
// PTL, finds Q's swap entry, drops it and returns without flushing: the
// writer's writable entry for Q may still be there (stale_tlb at the
// return), its store to Q after the madvise returned then goes to the
// frame reclaim is freeing, and its load of Q after reclaim reads a zero
// page (lost write). With the fix, flush_tlb_batched_pending after
// re-taking the PTL removes the entry first.
func setupMTHPSplitRace(env *Env) (func(c *mmu.CPU), error) {
	k := env.Kernel
	nr := env.Params.Pages
	order, err := mthpOrder(nr)
	if err != nil {
		return nil, err
	}
	if err := k.SetAnonMTHPOrder(order); err != nil {
		return nil, err
	}
	space, err := k.NewMM()
	if err != nil {
		return nil, err
	}
	rounds := env.Rounds
	writer := k.NewTask(env.Machine.CPU(0), space, "writer")
	madv := k.NewTask(env.Machine.CPU(1), space, "madvise")
	kswapd := k.NewTask(env.Machine.CPU(2), nil, "kswapd")
	var buf uint64
	var mapped latch
	ready, freed, reclaimed := latches(rounds), latches(rounds), latches(rounds)
	unit := func(r int) uint64 { return buf + uint64(r)*mthpUnit*page }
	large := func(r int) uint64 { return unit(r) }                    // L: the large folio
	victim := func(r int) uint64 { return unit(r) + uint64(nr)*page } // Q: what reclaim takes
	spin := func(r int) uint64 { return unit(r) + (mthpUnit-1)*page } // the writer's spin page
	pfnOf := func(va uint64) (uint64, bool) {
		pte, ok := space.Tables().Lookup(va)
		return pte.PFN(), ok
	}
	return func(c *mmu.CPU) {
		switch c.ID() {
		case 0:
			length := uint64(rounds) * mthpUnit * page
			var err error
			if buf, err = writer.Mmap(length, mm.ProtRead|mm.ProtWrite, false); err != nil {
				env.Fail("mmap: %v", err)
				return
			}
			for r := 0; r < rounds; r++ {
				if err := writer.Madvise(large(r), uint64(nr)*page, mm.MadvHugepage); err != nil {
					env.Fail("madvise(MADV_HUGEPAGE): %v", err)
					return
				}
			}
			mapped.Set()
			for r := 0; r < rounds; r++ {
				for i := 0; i < nr; i++ { // the first store faults in the whole folio
					if err := writer.Store(large(r)+uint64(i)*page, uint64(r)<<32|uint64(i)); err != nil {
						env.Fail("store: %v", err)
					}
				}
				if err := writer.Store(victim(r), uint64(r)<<32|0xb4); err != nil {
					env.Fail("store: %v", err)
				}
				if err := writer.Store(spin(r), 1); err != nil {
					env.Fail("store: %v", err)
				}
				ready[r].Set()
				// Spin on a flag, as a thread does that goes on working
				// while another calls madvise: its TLB keeps what it holds.
				for !freed[r].set.Load() {
					if _, err := writer.Load(spin(r)); err != nil {
						env.Fail("load: %v", err)
						return
					}
				}
				// After MADV_FREE returned: this store must survive.
				if err := writer.Store(victim(r), uint64(r)<<32|0xaf); err != nil {
					env.Fail("store: %v", err)
				}
				reclaimed[r].Wait(writer, "reclaim of the page")
				if _, err := writer.Load(victim(r)); err != nil { // the oracle checks the value
					env.Fail("load: %v", err)
				}
			}
		case 1:
			mapped.Wait(madv, "buffer mapped")
			for r := 0; r < rounds; r++ {
				ready[r].Wait(madv, "pages written")
				if err := madv.Madvise(large(r)+uint64(nr-1)*page, 2*page, mm.MadvFree); err != nil {
					env.Fail("madvise(MADV_FREE): %v", err)
				}
				freed[r].Set()
			}
		case 2:
			mapped.Wait(kswapd, "buffer mapped")
			for r := 0; r < rounds; r++ {
				ready[r].Wait(kswapd, "pages written")
				head, okL := pfnOf(large(r))
				q, okQ := pfnOf(victim(r))
				var pfns []uint64
				if okQ && k.FolioGet(q) { // isolated from the LRU
					pfns = append(pfns, q)
				}
				splitting := func() bool { return okL && k.Folio(head).Flags()&mm.FolioLocked != 0 }
				waitFor(kswapd, "the split of the large folio", func() bool { return splitting() || freed[r].set.Load() })
				env.Reclaim.ReclaimPages(kswapd, pfns)
				reclaimed[r].Set()
			}
		}
	}, nil
}
