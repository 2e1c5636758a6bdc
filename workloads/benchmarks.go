package workloads

import (
	"math/rand/v2"
	"sync/atomic"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
)

func init() {
	register(&Workload{
		Name: "pageout-loop",
		Description: "Barry Song's benchmark (and Yicong Yang's swap_bench): a 1 MiB MAP_SHARED|MAP_ANONYMOUS " +
			"(shmem) buffer, then ROUNDS x (read a word per page; MADV_PAGEOUT) on CPU 0, the others idle; " +
			"reports emulated cycles per iteration and ptep_clear_flush's share of them",
		MinCPUs:  1,
		Rounds:   50,
		Defaults: Params{Pages: 256},
		Setup:    setupPageoutLoop,
	})
	register(&Workload{
		Name: "swap-bench",
		Description: "memory pressure: THREADS threads over a working set larger than memory " +
			"(default 1.5x), kswapd busy on the last CPU",
		MinCPUs:  2,
		Rounds:   1,
		Defaults: Params{Threads: 2, Accesses: 50_000, WritePct: 50},
		Setup:    setupSwapBench,
	})
	register(&Workload{
		Name: "mprotect-under-reclaim",
		Description: "Ryan Roberts' side effect: threads work on a hot set while reclaim pages out the cold " +
			"part with batched flushes and another thread mprotects a small region now and then; reports " +
			"the hot set's miss rate after each flush_tlb_batched_pending and overall",
		MinCPUs:  2,
		Rounds:   20,
		Defaults: Params{Pages: 32, Accesses: 2000},
		Setup:    setupMprotectUnderReclaim,
	})
}

// setupPageoutLoop: CPU 0 maps a shared anonymous buffer of Pages pages,
// writes every page, then Rounds times reads a word of every page and
// MADV_PAGEOUTs the buffer, as Barry Song's benchmark for 43b3dfdd0455.
func setupPageoutLoop(env *Env) (func(*mmu.CPU), error) {
	k := env.Kernel
	space, err := k.NewMM()
	if err != nil {
		return nil, err
	}
	t := k.NewTask(env.Machine.CPU(0), space, "pageout")
	pages := uint64(env.Params.Pages)
	return func(c *mmu.CPU) {
		if c.ID() != 0 {
			return
		}
		buf, err := t.Mmap(pages*page, mm.ProtRead|mm.ProtWrite, true)
		if err != nil {
			env.Fail("mmap: %v", err)
			return
		}
		for i := uint64(0); i < pages; i++ { // memset
			if err := t.Store(buf+i*page, i); err != nil {
				env.Fail("memset: %v", err)
				return
			}
		}
		start := c.Counters().Cycles
		st := &k.Stats
		pcf0, dsb0 := st.PtepClearFlushCycles.Load(), st.PtepClearFlushDSBCycles.Load()
		for r := 0; r < env.Rounds; r++ {
			for i := uint64(0); i < pages; i++ {
				if _, err := t.Load(buf + i*page); err != nil {
					env.Fail("read: %v", err)
					return
				}
			}
			if err := t.Madvise(buf, pages*page, mm.MadvPageout); err != nil {
				env.Fail("madvise: %v", err)
				return
			}
		}
		cycles := c.Counters().Cycles - start
		env.SetMetric("cycles_per_iter", float64(cycles)/float64(env.Rounds))
		// Barry Song's profile: ptep_clear_flush's share of all cycles, and
		// its final DSB's share of ptep_clear_flush.
		pcf, dsb := st.PtepClearFlushCycles.Load()-pcf0, st.PtepClearFlushDSBCycles.Load()-dsb0
		env.SetMetric("ptep_clear_flush_pct", 100*float64(pcf)/float64(cycles))
		if pcf > 0 {
			env.SetMetric("ptep_clear_flush_dsb_pct", 100*float64(dsb)/float64(pcf))
		}
	}, nil
}

// setupSwapBench: Threads user threads make Accesses uniform accesses each
// over a working set of Pages pages (default 1.5x memory); kswapd runs on
// the last CPU, woken by the watermark, and stops when the threads finish.
func setupSwapBench(env *Env) (func(*mmu.CPU), error) {
	k := env.Kernel
	p := env.Params
	n := env.Machine.NumCPUs()
	if p.Threads >= n {
		p.Threads = n - 1 // the last CPU is kswapd's
	}
	if p.Pages == 0 {
		p.Pages = env.Machine.Phys().Frames() * 3 / 2
	}
	env.Params = p
	space, err := k.NewMM()
	if err != nil {
		return nil, err
	}
	tasks := make([]*mm.Task, p.Threads)
	for i := range tasks {
		tasks[i] = k.NewTask(env.Machine.CPU(i), space, "user")
	}
	kswapd := k.NewTask(env.Machine.CPU(n-1), nil, "kswapd")
	var mapped latch
	var buf uint64
	var running atomic.Int32
	running.Store(int32(p.Threads))
	seed := env.Machine.Config().Sched.Seed
	return func(c *mmu.CPU) {
		id := c.ID()
		switch {
		case id == n-1:
			env.Reclaim.Kswapd(kswapd)
			return
		case id >= p.Threads:
			return
		}
		t := tasks[id]
		defer func() {
			if running.Add(-1) == 0 {
				env.Reclaim.Stop()
			}
		}()
		if err := mapOrWait(env, t, id, p.Pages, &mapped, &buf); err != nil {
			env.Fail("mmap: %v", err)
			return
		}
		r := rand.New(rand.NewPCG(seed, uint64(id)))
		for i := int64(0); i < p.Accesses*int64(env.Rounds); i++ {
			va := buf + uint64(r.IntN(p.Pages))*page + uint64(id)*8
			if err := accessMix(t, r, p.WritePct, va, uint64(i)); err != nil {
				env.Fail("access: %v", err)
				return
			}
		}
	}, nil
}
