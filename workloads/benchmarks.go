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
		Description: "swapping with the flush pending: THREADS threads of one process make uniform accesses over a " +
			"working set larger than memory (default 1.5x) while kswapd (the last CPU) and direct reclaim page it " +
			"out with batched flushes, and every 64 accesses each thread mprotects, MADV_DONTNEEDs or remaps a " +
			"scratch page of its own — each finds reclaim's batches pending in flush_tlb_batched_pending; " +
			"reports accesses per emulated second",
		MinCPUs:  2,
		Rounds:   1,
		Defaults: Params{Threads: 2, Accesses: 50_000, WritePct: 50},
		Setup:    setupSwapBench,
	})
	register(&Workload{
		Name: "mprotect-under-reclaim",
		Description: "Ryan Roberts' side effect: threads work on a hot set of PAGES pages each while reclaim " +
			"pages out the cold part with batched flushes and another thread mprotects a small region now and " +
			"then; reports the hot threads' refills of translations flush_tlb_batched_pending flushed, their " +
			"cycles and share of the hot threads' time (flush_overhead_pct), and the hot miss rate",
		MinCPUs:  2,
		Rounds:   20,
		Defaults: Params{Pages: 32, Accesses: 2000, Victim: "loop"},
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

// swapBenchSyscallEvery is how many accesses a swap-bench thread makes
// between its calls on its scratch page.
const swapBenchSyscallEvery = 64

// setupSwapBench: Threads user threads of one process make Accesses uniform
// accesses each over a working set of Pages pages (default 1.5x memory);
// kswapd runs on the last CPU, woken by the watermark, and the threads
// reclaim directly when memory runs out. Every swapBenchSyscallEvery
// accesses a thread calls, in turn, mprotect(PROT_READ) and back,
// madvise(MADV_DONTNEED), and munmap+mmap on a scratch page of its own:
// each takes a PTL of the process and so runs flush_tlb_batched_pending,
// which finds the reclaimers' batches pending. (Yicong Yang's swap_bench,
// the benchmark of 43b3dfdd0455, is Barry Song's pageout loop:
// pageout-loop.)
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
	var rate atomicFloat
	hz := float64(env.Machine.Config().Cost.ClockMHz) * 1e6
	seed := env.Machine.Config().Sched.Seed
	env.OnFinish(func() { env.SetMetric("accesses_per_sec", rate.Load()) })
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
		scratch, err := t.Mmap(page, mm.ProtRead|mm.ProtWrite, false)
		if err != nil {
			env.Fail("mmap: %v", err)
			return
		}
		r := rand.New(rand.NewPCG(seed, uint64(id)))
		start := c.Counters().Cycles
		total := p.Accesses * int64(env.Rounds)
		for i := int64(0); i < total; i++ {
			va := buf + uint64(r.IntN(p.Pages))*page + uint64(id)*8
			if err := accessMix(t, r, p.WritePct, va, uint64(i)); err != nil {
				env.Fail("access: %v", err)
				return
			}
			if i%swapBenchSyscallEvery == swapBenchSyscallEvery-1 {
				if scratch, err = scratchCall(t, scratch, i/swapBenchSyscallEvery); err != nil {
					env.Fail("scratch page: %v", err)
					return
				}
			}
		}
		rate.Add(float64(total) / (float64(c.Counters().Cycles-start) / hz))
	}, nil
}

// scratchCall makes the n-th call of a swap-bench thread on its scratch
// page (written first, so that there is a PTE to change) and returns where
// the page is now.
func scratchCall(t *mm.Task, va uint64, n int64) (uint64, error) {
	if err := t.Store(va, uint64(n)); err != nil {
		return va, err
	}
	switch n % 3 {
	case 0:
		if err := t.Mprotect(va, page, mm.ProtRead); err != nil {
			return va, err
		}
		return va, t.Mprotect(va, page, mm.ProtRead|mm.ProtWrite)
	case 1:
		return va, t.Madvise(va, page, mm.MadvDontneed)
	}
	if err := t.Munmap(va, page); err != nil {
		return va, err
	}
	return t.Mmap(page, mm.ProtRead|mm.ProtWrite, false)
}
