package workloads

import (
	"math/rand/v2"
	"strings"
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
// maintenance thread's MADV_PAGEOUT. With Gap, the maintenance thread also
// mprotects every Gap cycles while kswapd reclaims (so the rate of calls
// that can find batches pending is an axis). The hot threads are the victims: the
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
	var reloaded, reclaimRound atomic.Uint64
	var roundQ sched.WaitQueue
	hotPages := uint64(p.Pages)
	victim, err := newVictim(p, env.Machine.Config().Sched.Seed)
	if err != nil {
		return nil, err
	}
	body := func(c *mmu.CPU) {
		id := c.ID()
		switch {
		case id < hot:
			t := hotTasks[id]
			mapped.Wait(t, "mapped")
			ctr := c.Counters()
			a0, w0, c0, l0 := ctr.Accesses, ctr.Walks, ctr.Cycles, ctr.FlushLostCycles
			if err := victim.run(t, id, hot, hotBuf+uint64(id)*hotPages*page, done.set.Load); err != nil {
				env.Fail("hot: %v", err)
				return
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
			if victim.trace != nil {
				if err := victim.trace.mapInto(t); err != nil {
					env.Fail("%v", err)
					return
				}
			}
			mapped.Set()
			for r := 0; r < env.Rounds; r++ {
				for i := uint64(0); i < coldPages; i++ { // the cold part comes back in, clean
					if _, err := t.Load(coldBuf + i*page); err != nil {
						env.Fail("cold: %v", err)
					}
				}
				va := coldBuf + uint64(r%coldPages)*page
				mprotect := func() {
					if err := t.Mprotect(va, page, mm.ProtRead); err != nil {
						env.Fail("mprotect: %v", err)
					}
					if err := t.Mprotect(va, page, mm.ProtRead|mm.ProtWrite); err != nil {
						env.Fail("mprotect: %v", err)
					}
				}
				switch {
				case withKswapd && p.Gap > 0:
					// mprotect every Gap cycles while kswapd reclaims: each
					// call may find a new batch pending.
					want := uint64(r + 1)
					reloaded.Store(want)
					roundQ.Notify()
					for reclaimRound.Load() < want {
						pause(t.CPU(), uint64(p.Gap))
						mprotect()
					}
				case withKswapd:
					want := uint64(r + 1)
					reloaded.Store(want)
					roundQ.Notify()
					roundQ.Wait(t.Thread(), "a kswapd round", func() bool { return reclaimRound.Load() >= want })
				default:
					if err := t.Madvise(coldBuf, coldPages*page, mm.MadvPageout); err != nil {
						env.Fail("pageout: %v", err)
					}
					pause(t.CPU(), uint64(p.Gap))
				}
				for i := 0; i < int(p.Accesses)/coldPages+1; i++ { // time passes for the hot threads
					t.CPU().Yield()
				}
				mprotect()
			}
			done.Set()
			roundQ.Notify()
		case withKswapd && id == n-1:
			mapped.Wait(kswapd, "mapped")
			for round := uint64(1); ; round++ {
				// Sleep until the cold part is back (kswapd is woken by the
				// watermark; here, by the maintenance thread's round).
				roundQ.Wait(kswapd.Thread(), "the cold part reloaded", func() bool { return reloaded.Load() >= round || done.set.Load() })
				if done.set.Load() {
					return
				}
				var pfns []uint64
				for i := uint64(0); i < coldPages; i++ {
					if pte, ok := space.Tables().Lookup(coldBuf + i*page); ok && k.FolioGet(pte.PFN()) {
						pfns = append(pfns, pte.PFN())
					}
				}
				env.Reclaim.ReclaimPages(kswapd, pfns)
				reclaimRound.Store(round)
				roundQ.Notify()
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

// pause lets cycles of the CPU's time pass, in steps that let the clocked
// scheduler run the others meanwhile.
func pause(c *mmu.CPU, cycles uint64) {
	for cycles > 0 {
		step := min(cycles, 4096)
		c.Charge(step)
		c.Yield()
		cycles -= step
	}
}

// victims are the synthetic things mprotect-under-reclaim's hot threads can
// run (besides lackey:PATH, a real program's trace).
var victims = []string{"loop", "uniform", "zipf"}

// victim is what the hot threads of mprotect-under-reclaim run: a synthetic
// pattern over each thread's own hot set of p.Pages pages (a quarter of the
// accesses stores, p.Compute cycles of computation each), or the replay of
// a lackey trace by every hot thread in the shared address space, each from
// its own point of the trace, over and over (its instruction fetches set
// its pace).
type victim struct {
	pattern string
	pages   uint64
	zipfS   float64
	compute uint64 // cycles of computation per access
	seed    uint64
	trace   *lackeyTrace
}

func newVictim(p Params, seed uint64) (*victim, error) {
	v := &victim{pattern: p.Victim, pages: uint64(p.Pages), zipfS: p.ZipfS, compute: uint64(p.Compute), seed: seed}
	if path, ok := strings.CutPrefix(p.Victim, "lackey:"); ok {
		tr, err := loadLackey(path)
		if err != nil {
			return nil, err
		}
		v.trace = tr
	}
	return v, nil
}

// run is hot thread id's work (of hot) until stop says so; base is its hot
// set.
func (v *victim) run(t *mm.Task, id, hot int, base uint64, stop func() bool) error {
	if v.trace != nil {
		var val uint64
		from := id * v.trace.n / hot
		for !stop() {
			if err := v.trace.replay(t, from, &val, stop); err != nil {
				return err
			}
		}
		return nil
	}
	for i := uint64(0); i < v.pages; i++ { // fault the hot set in
		if err := t.Store(base+i*page, i); err != nil {
			return err
		}
	}
	r := rand.New(rand.NewPCG(v.seed, uint64(id)))
	var z *rand.Zipf
	if v.pattern == "zipf" {
		z = rand.NewZipf(r, max(v.zipfS, 1.1), 1, v.pages-1)
	}
	for n := uint64(0); !stop(); n++ {
		t.CPU().Charge(v.compute)
		pg := n % v.pages
		switch v.pattern {
		case "uniform":
			pg = r.Uint64N(v.pages)
		case "zipf":
			pg = z.Uint64()
		}
		va := base + pg*page + n/v.pages%64*8
		var err error
		if n%4 == 0 {
			err = t.Store(va, n)
		} else {
			_, err = t.Load(va)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
