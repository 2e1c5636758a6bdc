package workloads

import (
	"sync/atomic"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/sched"
)

// coldPages is the size of the part of the mm that reclaim pages out.
const coldPages = 256

// setupMprotectUnderReclaim is the workload behind Ryan Roberts' worry about
// 4b634918384c ("subsequent work within the target mm will have no VAs
// cached in the TLB"). Hot threads (every CPU but the last one or two) each
// loop over their own hot set of Pages pages. A maintenance thread reads
// the mm's cold part back in and, Rounds times, mprotects one page of it
// read-only and back — each mprotect's change_pte_range calls
// flush_tlb_batched_pending, which flushes per policy once reclaim has
// batched anything. Reclaim of the cold part runs on kswapd's CPU (the last
// one, with four CPUs or more) with TTU_BATCH_FLUSH, or else through the
// maintenance thread's MADV_PAGEOUT. The hot threads are the victims: the
// run reports their miss rate (hot_miss_rate) and the share of their cycles
// spent refilling translations a flush_tlb_batched_pending flush removed
// (flush_overhead_pct, from the hardware's flush-refill accounting).
func setupMprotectUnderReclaim(env *Env) (func(*mmu.CPU), error) {
	k := env.Kernel
	p := env.Params
	n := env.Machine.NumCPUs()
	withKswapd := n >= 4
	hot := n - 1
	if withKswapd {
		hot = n - 2
	}
	p.Threads = hot
	env.Params = p
	space, err := k.NewMM()
	if err != nil {
		return nil, err
	}
	hotTasks := make([]*mm.Task, hot)
	for i := range hotTasks {
		hotTasks[i] = k.NewTask(env.Machine.CPU(i), space, "hot")
	}
	maint := k.NewTask(env.Machine.CPU(hot), space, "maintenance")
	var kswapd *mm.Task
	if withKswapd {
		kswapd = k.NewTask(env.Machine.CPU(n-1), nil, "kswapd")
	}
	var mapped, done latch
	var hotBuf, coldBuf uint64
	var hotAccesses, hotWalks, hotCycles, hotLost atomic.Uint64
	var reclaimRound atomic.Uint64
	var roundQ sched.WaitQueue
	hotPages := uint64(p.Pages)
	body := func(c *mmu.CPU) {
		id := c.ID()
		switch {
		case id < hot:
			t := hotTasks[id]
			mapped.Wait(t, "mapped")
			base := hotBuf + uint64(id)*hotPages*page
			for i := uint64(0); i < hotPages; i++ { // fault the hot set in
				if err := t.Store(base+i*page, i); err != nil {
					env.Fail("hot: %v", err)
					return
				}
			}
			ctr := c.Counters()
			a0, w0, c0, l0 := ctr.Accesses, ctr.Walks, ctr.Cycles, ctr.FlushLostCycles
			for n := uint64(0); !done.set.Load(); n++ {
				va := base + n%hotPages*page + uint64(n/hotPages%64)*8
				var err error
				if n%4 == 0 {
					err = t.Store(va, n)
				} else {
					_, err = t.Load(va)
				}
				if err != nil {
					env.Fail("hot: %v", err)
					return
				}
			}
			hotAccesses.Add(ctr.Accesses - a0)
			hotWalks.Add(ctr.Walks - w0)
			hotCycles.Add(ctr.Cycles - c0)
			hotLost.Add(ctr.FlushLostCycles - l0)
		case id == hot:
			t := maint
			var err error
			if hotBuf, err = t.Mmap(uint64(hot)*hotPages*page, mm.ProtRead|mm.ProtWrite, false); err != nil {
				env.Fail("mmap: %v", err)
				return
			}
			if coldBuf, err = t.Mmap(coldPages*page, mm.ProtRead|mm.ProtWrite, false); err != nil {
				env.Fail("mmap: %v", err)
				return
			}
			for i := uint64(0); i < coldPages; i++ {
				if err := t.Store(coldBuf+i*page, i); err != nil {
					env.Fail("cold: %v", err)
				}
			}
			mapped.Set()
			for r := 0; r < env.Rounds; r++ {
				for i := uint64(0); i < coldPages; i++ { // the cold part comes back in, clean
					if _, err := t.Load(coldBuf + i*page); err != nil {
						env.Fail("cold: %v", err)
					}
				}
				if withKswapd {
					want := reclaimRound.Load() + 1
					roundQ.Wait(t.Thread(), "a kswapd round", func() bool { return reclaimRound.Load() >= want })
				} else if err := t.Madvise(coldBuf, coldPages*page, mm.MadvPageout); err != nil {
					env.Fail("pageout: %v", err)
				}
				for i := 0; i < int(p.Accesses)/coldPages+1; i++ { // time passes for the hot threads
					t.CPU().Yield()
				}
				va := coldBuf + uint64(r%coldPages)*page
				if err := t.Mprotect(va, page, mm.ProtRead); err != nil {
					env.Fail("mprotect: %v", err)
				}
				if err := t.Mprotect(va, page, mm.ProtRead|mm.ProtWrite); err != nil {
					env.Fail("mprotect: %v", err)
				}
			}
			done.Set()
		case withKswapd && id == n-1:
			mapped.Wait(kswapd, "mapped")
			for !done.set.Load() {
				var pfns []uint64
				for i := uint64(0); i < coldPages; i++ {
					if pte, ok := space.Tables().Lookup(coldBuf + i*page); ok && k.FolioGet(pte.PFN()) {
						pfns = append(pfns, pte.PFN())
					}
				}
				env.Reclaim.ReclaimPages(kswapd, pfns)
				reclaimRound.Add(1)
				roundQ.Notify()
				c.Yield()
			}
		}
	}
	env.OnFinish(func() {
		if a := hotAccesses.Load(); a > 0 {
			env.SetMetric("hot_miss_rate", float64(hotWalks.Load())/float64(a))
		}
		if c := hotCycles.Load(); c > 0 {
			env.SetMetric("flush_overhead_pct", 100*float64(hotLost.Load())/float64(c))
		}
	})
	return body, nil
}
