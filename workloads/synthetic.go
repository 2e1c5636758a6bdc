package workloads

import (
	"math/rand/v2"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
)

// pattern picks the page of a thread's n-th access.
type pattern func(r *rand.Rand, n int64, p Params, z *rand.Zipf) int

var patterns = []struct {
	name, desc string
	next       pattern
}{
	{"seq", "each thread sweeps the working set page by page, over and over",
		func(_ *rand.Rand, n int64, p Params, _ *rand.Zipf) int { return int(n % int64(p.Pages)) }},
	{"stride", "each thread steps through the working set STRIDE pages at a time",
		func(_ *rand.Rand, n int64, p Params, _ *rand.Zipf) int {
			pages := uint64(p.Pages) // n*stride mod pages, without overflow (pages < 2^32)
			return int(uint64(n) % pages * (uint64(p.Stride) % pages) % pages)
		}},
	{"uniform", "each access goes to a uniformly random page of the working set",
		func(r *rand.Rand, _ int64, p Params, _ *rand.Zipf) int { return r.IntN(p.Pages) }},
	{"zipf", "each access goes to a Zipf-distributed page: a hot set and a long tail",
		func(_ *rand.Rand, _ int64, _ Params, z *rand.Zipf) int { return int(z.Uint64()) }},
}

func init() {
	for _, pt := range patterns {
		next := pt.next
		register(&Workload{
			Name:        pt.name,
			Description: "synthetic: " + pt.desc + " (parameters: pages, accesses, threads, procs, write-pct, stride, zipf)",
			MinCPUs:     1,
			Rounds:      1,
			Defaults:    Params{Pages: 1024, Accesses: 1 << 20, Threads: 1, Procs: 1, WritePct: 30, Stride: 17, ZipfS: 1.1},
			Setup:       func(env *Env) (func(*mmu.CPU), error) { return setupSynthetic(env, next) },
		})
	}
}

// setupSynthetic: Threads user threads on CPUs 0..Threads-1, spread
// round-robin over Procs processes (each its own mm, ASID and working set
// of Pages pages); each thread makes Accesses accesses (times Rounds),
// WritePct of them stores.
func setupSynthetic(env *Env, next pattern) (func(*mmu.CPU), error) {
	k := env.Kernel
	p := env.Params
	type proc struct {
		mapped latch
		buf    uint64
	}
	procs := make([]*proc, p.Procs)
	spaces := make([]*mm.MM, p.Procs)
	for i := range procs {
		procs[i] = &proc{}
		var err error
		if spaces[i], err = k.NewMM(); err != nil {
			return nil, err
		}
	}
	tasks := make([]*mm.Task, p.Threads)
	for i := range tasks {
		tasks[i] = k.NewTask(env.Machine.CPU(i), spaces[i%p.Procs], "user")
	}
	seed := env.Machine.Config().Sched.Seed
	return func(c *mmu.CPU) {
		id := c.ID()
		if id >= p.Threads {
			return
		}
		t := tasks[id]
		pr := procs[id%p.Procs]
		// The process's first thread maps its working set.
		if err := mapOrWait(env, t, id/p.Procs, p.Pages, &pr.mapped, &pr.buf); err != nil {
			env.Fail("mmap: %v", err)
			return
		}
		buf := pr.buf
		r := rand.New(rand.NewPCG(seed, uint64(id)))
		z := rand.NewZipf(r, p.ZipfS, 1, uint64(p.Pages-1))
		total := p.Accesses * int64(env.Rounds)
		for n := int64(0); n < total; n++ {
			pg := next(r, n+int64(id)*7919, p, z)
			// Thread id uses only words id, id+Threads, ...: one writer per
			// word, which is what the oracle's lost-write check assumes.
			word := id + p.Threads*int(n%int64(512/p.Threads))
			va := buf + uint64(pg)*page + uint64(word)*8
			err := accessMix(t, r, p.WritePct, va, uint64(n))
			if err != nil {
				env.Fail("access: %v", err)
				return
			}
		}
	}, nil
}
