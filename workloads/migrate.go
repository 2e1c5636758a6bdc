package workloads

import (
	"sync/atomic"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/sched"
)

func init() {
	register(&Workload{
		Name: "migrate-reclaim",
		Description: "reclaim's batch ends on another CPU: kswapd unmaps a page the writer has cached " +
			"writable (the TLBI issued, no DSB), migrates, and ends the batch with a DSB on the new CPU " +
			"before paging the page out; only __switch_to's dsb(ish) on the CPU it left completes the TLBI",
		MinCPUs: 3,
		Rounds:  4,
		Variants: []Variant{
			{Name: "fixed", Description: "__switch_to executes dsb(ish) on the CPU the task leaves"},
			{Name: "unfixed", Description: "no DSB at the context switch", Revert: []mm.Fix{mm.FixSwitchToDSB}},
		},
		Setup: setupMigrateReclaim,
	})
}

// migratePages is the writer's buffer, every page written on every pass.
const migratePages = 8

// setupMigrateReclaim is the task-migration race of arm64's batched
// reclaim flush. CPU0 (the writer) loops over its buffer, loading each
// word (the oracle checks it) and storing a new value, so its TLB holds a
// writable, dirty translation of every page. kswapd, a kernel thread
// that can migrate, starts on CPU1; once per page and round, after a full
// writer pass, it is asked to move to the other of CPU1 and CPU2 (as an
// affinity change would) and reclaims the page (MADV_PAGEOUT's
// reclaim_pages): try_to_unmap_one clears the PTE with TTU_BATCH_FLUSH —
// arch_tlbbatch_add_pending issues TLBI VALE1IS on the CPU it runs on —
// and the task is preempted right after and migrates. The context switch
// on the CPU it leaves runs __switch_to, whose dsb(ish) completes the
// TLBI (the fixed form); without it, try_to_unmap_flush_dirty's
// arch_tlbbatch_flush is a DSB on the new CPU that waits for none of it,
// and the page is written to swap and freed while the writer may still
// store through its cached entry: a lost write (the load after swap-in
// misses it) or a store into a freed frame.
func setupMigrateReclaim(env *Env) (func(c *mmu.CPU), error) {
	k := env.Kernel
	space, err := k.NewMM()
	if err != nil {
		return nil, err
	}
	pages := uint64(migratePages)
	trials := env.Rounds * int(pages)
	writer := k.NewTask(env.Machine.CPU(0), space, "writer")
	var buf uint64
	var mapped, done latch
	var passes atomic.Uint64
	var passQ sched.WaitQueue
	pfnOf := func(va uint64) []uint64 { return mappedFolio(k, space, va) }
	cpu1, cpu2 := env.Machine.CPU(1), env.Machine.CPU(2)
	kswapd := k.NewMovableTask(cpu1, nil, "kswapd", func(t *mm.Task) error {
		defer done.Set()
		mapped.Wait(t, "buffer mapped")
		if done.set.Load() { // the writer could not map its buffer
			return nil
		}
		for n := 0; n < trials; n++ {
			// A full writer pass since the last reclaim: the writer's TLB
			// holds every page writable again.
			seen := passes.Load()
			passQ.Wait(t.Thread(), "a writer pass", func() bool { return passes.Load() >= seen+2 })
			pfns := pfnOf(buf + uint64(n)%pages*page)
			if pfns == nil {
				continue
			}
			to := cpu2
			if t.CPU() == cpu2 {
				to = cpu1
			}
			if err := t.MigrateAtPreemption(to); err != nil {
				return err
			}
			env.Reclaim.ReclaimPages(t, pfns)
		}
		return nil
	})
	return func(c *mmu.CPU) {
		switch c.ID() {
		case 0:
			var err error
			if buf, err = writer.Mmap(pages*page, mm.ProtRead|mm.ProtWrite, false); err != nil {
				env.Fail("mmap: %v", err)
				done.Set()
			}
			mapped.Set()
			// Until kswapd is done: it sets done on its way out, on
			// whichever CPU it returns.
			writePasses(env, writer, buf, pages, &done, &passes, &passQ)
		case 1, 2:
			for {
				finished, err := kswapd.Host(c)
				if err != nil {
					env.Fail("kswapd: %v", err)
				}
				if finished {
					return
				}
			}
		}
	}, nil
}
