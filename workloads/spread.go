package workloads

import (
	"sync/atomic"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/sched"
)

func init() {
	register(&Workload{
		Name: "reclaim-mprotect-spread",
		Description: "seed 000's race over two page tables: one reclaim batch unmaps a page in each of two 2 MiB regions " +
			"that a reader keeps cached, then another CPU mprotects each PROT_NONE in turn; a flush_tlb_batched_pending " +
			"that flushes only the table it holds leaves the second page's entry behind",
		MinCPUs: 3,
		Rounds:  4,
		Orders:  []string{"reclaim", "mprotect"},
		Setup:   setupReclaimMprotectSpread,
	})
}

// spreadStride puts the two pages in different level-3 tables.
const spreadStride = 512 * page

// setupReclaimMprotectSpread: CPU0 (the reader) keeps loading pages P and Q,
// 2 MiB apart, so its TLB caches both; each round CPU2 (kswapd) reclaims
// both in one batch — clean pages: the batch's flush stays pending until it
// ends — while CPU1 mprotects P and then Q to PROT_NONE, waits for a reader
// pass, and restores them. A load that succeeds after its page's mprotect
// returned is the race; the TLB invariant sees the stale entry at the
// mprotect's return.
func setupReclaimMprotectSpread(env *Env) (func(c *mmu.CPU), error) {
	k := env.Kernel
	space, err := k.NewMM()
	if err != nil {
		return nil, err
	}
	rounds := env.Rounds
	reader := k.NewTask(env.Machine.CPU(0), space, "reader")
	mprot := k.NewTask(env.Machine.CPU(1), space, "mprotect")
	kswapd := k.NewTask(env.Machine.CPU(2), nil, "kswapd")
	var buf uint64
	var mapped, done latch
	var passes atomic.Uint64
	var passQ sched.WaitQueue
	announced, unmapped, changed, restored := latches(rounds), latches(rounds), latches(rounds), latches(rounds)
	vas := func() [2]uint64 { return [2]uint64{buf, buf + spreadStride} }
	present := func(va uint64) bool { return isMapped(space, va) }
	return func(c *mmu.CPU) {
		switch c.ID() {
		case 0:
			var err error
			if buf, err = reader.Mmap(2*spreadStride, mm.ProtRead|mm.ProtWrite, false); err != nil {
				env.Fail("mmap: %v", err)
				return
			}
			mapped.Set()
			for !done.set.Load() {
				for _, va := range vas() {
					if _, err := reader.Load(va); err != nil && !isSegv(err) {
						env.Fail("reader: %v", err)
						return
					}
				}
				passes.Add(1)
				passQ.Notify()
			}
		case 1:
			mapped.Wait(mprot, "buffer mapped")
			for r := 0; r < rounds; r++ {
				announced[r].Wait(mprot, "reclaim of the pages")
				if after(env, "mprotect") {
					waitFor(mprot, "reclaim's unmaps", func() bool {
						return (!present(vas()[0]) && !present(vas()[1])) || unmapped[r].set.Load()
					})
				}
				for _, va := range vas() {
					if err := mprot.Mprotect(va, page, mm.ProtNone); err != nil {
						env.Fail("mprotect: %v", err)
					}
				}
				changed[r].Set()
				seen := passes.Load()
				passQ.Wait(mprot.Thread(), "a reader pass", func() bool { return passes.Load() >= seen+1 })
				for _, va := range vas() {
					if err := mprot.Mprotect(va, page, mm.ProtRead|mm.ProtWrite); err != nil {
						env.Fail("mprotect: %v", err)
					}
				}
				restored[r].Set()
			}
		case 2:
			mapped.Wait(kswapd, "buffer mapped")
			for r := 0; r < rounds; r++ {
				// Both pages faulted in (by the reader's loads) before the batch.
				waitFor(kswapd, "the reader's pass", func() bool { return present(vas()[0]) && present(vas()[1]) })
				var pfns []uint64
				for _, va := range vas() {
					if pte, ok := space.Tables().Lookup(va); ok && k.FolioGet(pte.PFN()) {
						pfns = append(pfns, pte.PFN())
					}
				}
				announced[r].Set()
				if after(env, "reclaim") {
					waitFor(kswapd, "mprotect's change", func() bool { return changed[r].set.Load() || !present(vas()[0]) })
				}
				env.Reclaim.ReclaimPages(kswapd, pfns)
				unmapped[r].Set()
				restored[r].Wait(kswapd, "the pages restored")
			}
			done.Set()
		}
	}, nil
}
