package workloads

import (
	"sync/atomic"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/sched"
)

func init() {
	register(&Workload{
		Name: "mremap-race",
		Description: "3ea277194daa's mremap case: reclaim unmaps a page with a deferred flush while another CPU " +
			"moves it away with mremap(MREMAP_DONTUNMAP) and a third keeps writing the old address through its " +
			"cached translation; the writes land in the moved page and are lost to the old one",
		MinCPUs: 3,
		Rounds:  4,
		Orders:  []string{"reclaim", "mremap"},
		Variants: []Variant{
			{Name: "fixed", Description: "move_ptes calls flush_tlb_batched_pending after taking the PTLs (3ea277194daa)"},
			{Name: "unfixed", Description: "move_ptes without flush_tlb_batched_pending: a PTE reclaim cleared moves as a swap entry, unflushed",
				Revert: []mm.Fix{mm.FixMremapBatchedPending}},
		},
		Setup: setupMremapRace,
	})
}

// mremapRacePages is how many pages the writer keeps dirty; each is one
// trial per round.
const mremapRacePages = 16

// mremapTarget is where the moved page goes, past the writer's buffer and
// its guard gap: one page, unmapped again at the end of every trial.
const mremapTarget = 64 << 20

// mremapFlags is the move of the race: to a fixed address, the old range
// left mapped and empty. Without MREMAP_DONTUNMAP the unmap of the old
// range (zap_pte_range, with its own flush_tlb_batched_pending) would
// flush the stale translation before mremap returns.
const mremapFlags = mm.MremapMaymove | mm.MremapFixed | mm.MremapDontunmap

// setupMremapRace is the mremap form of seed 000's race, one trial per page
// and round. CPU0 (the writer) loops over its buffer, loading each page's
// first word and storing a new value there. For each page P, CPU2 (a
// kernel reclaimer: kswapd having picked P) unmaps P with TTU_BATCH_FLUSH
// while CPU1 moves P to mremapTarget with mremap(MREMAP_DONTUNMAP); CPU1
// then waits for two writer passes, reads the moved page (the data must
// have followed) and unmaps it. The old address reads as zero from
// mremap's return: a store there that went through the old translation
// into the moved page is lost, and shows when the writer reads it back
// after the translation is finally flushed.
func setupMremapRace(env *Env) (func(c *mmu.CPU), error) {
	k := env.Kernel
	space, err := k.NewMM()
	if err != nil {
		return nil, err
	}
	rounds := env.Rounds
	writer := k.NewTask(env.Machine.CPU(0), space, "writer")
	mover := k.NewTask(env.Machine.CPU(1), space, "mremap")
	kswapd := k.NewTask(env.Machine.CPU(2), nil, "kswapd")
	pages := uint64(mremapRacePages)
	if env.Params.Small {
		pages = 2
	}
	trials := rounds * int(pages)
	var buf uint64
	var mapped, done latch
	var passes atomic.Uint64
	var passQ sched.WaitQueue
	announced, finished := latches(trials), latches(trials)
	unmapped, moved := latches(trials), latches(trials) // the racers' calls returned
	present := func(va uint64) bool { return isMapped(space, va) }
	pfnOf := func(va uint64) []uint64 { return mappedFolio(k, space, va) }
	return func(c *mmu.CPU) {
		switch c.ID() {
		case 0:
			var err error
			if buf, err = writer.Mmap(pages*page, mm.ProtRead|mm.ProtWrite, false); err != nil {
				env.Fail("mmap: %v", err)
				return
			}
			for i := uint64(0); i < pages; i++ {
				if err := writer.Store(buf+i*page, i); err != nil {
					env.Fail("populate: %v", err)
				}
			}
			mapped.Set()
			writePasses(env, writer, buf, pages, &done, &passes, &passQ)
		case 1:
			mapped.Wait(mover, "buffer mapped")
			target := buf + mremapTarget
			for n := 0; n < trials; n++ {
				va := buf + uint64(n)%pages*page
				announced[n].Wait(mover, "reclaim of the page")
				if after(env, "mremap") {
					waitFor(mover, "reclaim's unmap", func() bool { return !present(va) || unmapped[n].set.Load() })
				}
				if _, err := mover.Mremap(va, page, page, mremapFlags, target); err != nil {
					env.Fail("mremap: %v", err)
					return
				}
				moved[n].Set()
				// Let the writer store to the old address and read it back.
				seen := passes.Load()
				passQ.Wait(mover.Thread(), "two writer passes", func() bool { return passes.Load() >= seen+2 })
				if _, err := mover.Load(target); err != nil { // the oracle checks that the data followed
					env.Fail("load: %v", err)
				}
				if err := mover.Munmap(target, page); err != nil {
					env.Fail("munmap: %v", err)
				}
				finished[n].Set()
			}
		case 2:
			mapped.Wait(kswapd, "buffer mapped")
			for n := 0; n < trials; n++ {
				va := buf + uint64(n)%pages*page
				pfns := pfnOf(va)
				announced[n].Set()
				if after(env, "reclaim") {
					waitFor(kswapd, "mremap's move", func() bool { return !present(va) || moved[n].set.Load() })
				}
				env.Reclaim.ReclaimPages(kswapd, pfns)
				unmapped[n].Set()
				finished[n].Wait(kswapd, "the moved page unmapped")
			}
			done.Set()
		}
	}, nil
}
