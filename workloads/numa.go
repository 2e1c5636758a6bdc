package workloads

import (
	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/pagetable"
)

func init() {
	register(&Workload{
		Name: "numa-migrate-race",
		Description: "NUMA balancing makes a page PROT_NONE, flushing only at the end of its range; meanwhile a hinting " +
			"fault on another node migrates the page and a third CPU writes the old frame through its stale entry",
		MinCPUs: 3,
		Rounds:  4,
		Orders:  []string{"migrate", "scan"},
		Variants: []Variant{
			{Name: "fixed", Description: "migration flushes a PROT_NONE PTE while mm_tlb_flush_pending (20841405940e)"},
			{Name: "unfixed", Description: "before 20841405940e: pte_accessible is pte_valid, migration does not flush a PROT_NONE PTE",
				Revert: []mm.Fix{mm.FixMigrateTLBFlushPending}},
		},
		Setup: setupNumaMigrateRace,
	})
}

// numaFillers is how many pages past the racing page, in the next page
// table, the scanner's range covers: what it changes after the racing page
// and before its flush.
const numaFillers = 16

// numaRacePages bounds the distinct racing pages (one per round, reused
// after): a page migrated to node 1 is no longer misplaced for the
// migrator, so a reused one races only if it never moved.
const numaRacePages = 256

// setupNumaMigrateRace is the race 20841405940e closed, one trial per
// round. CPU0 (the writer, node 0) writes the round's page P over and over
// through its cached writable translation. CPU1 (a thread of the same
// process, node 0) runs task_numa_work over P and the filler pages behind
// it, in the next page table: change_prot_numa makes them PROT_NONE and
// flushes only at the end. CPU2 (node 1) touches P once it finds P's PTE
// PROT_NONE: a NUMA hinting fault that migrates P to node 1 — copying it,
// freeing the old frame — while the scanner's flush is still to come.
// The writer then reads P back. A write into the old frame after the copy
// is lost (and after the free a use after free). With the fix the
// migration flushes the writer's entry before copying.
//
// Orders: "migrate" (the race's) lets the hinting fault come as soon as
// P's PTE is PROT_NONE; "scan" makes it wait until task_numa_work
// returned, its flush done.
func setupNumaMigrateRace(env *Env) (func(c *mmu.CPU), error) {
	k := env.Kernel
	space, err := k.NewMM()
	if err != nil {
		return nil, err
	}
	if err := k.SetCPUNode(2, 1); err != nil {
		return nil, err
	}
	rounds := env.Rounds
	writer := k.NewTask(env.Machine.CPU(0), space, "writer")
	scanner := k.NewTask(env.Machine.CPU(1), space, "numa-scan")
	migrator := k.NewTask(env.Machine.CPU(2), space, "migrator")
	fillers := uint64(numaFillers)
	if env.Params.Small {
		fillers = 1
	}
	const table = 2 << 20 // the VA a level-3 table maps
	length := table + fillers*page
	var buf uint64
	var mapped, filled latch
	written, scanned, migrated := latches(rounds), latches(rounds), latches(rounds)
	// The racing pages sit at the top of the first table, the round's
	// first: the scan changes P, leaves P's table and changes the fillers
	// before it flushes.
	pageOf := func(r int) uint64 { return buf + table - uint64(r%numaRacePages+1)*page }
	pteOf := func(va uint64) pagetable.PTE { // the PTE as the kernel sees it, valid or not
		if s, ok := space.Tables().SlotOf(va); ok {
			return s.Load()
		}
		return 0
	}
	protNone := func(va uint64) bool { return mm.IsProtNone(pteOf(va)) }
	return func(c *mmu.CPU) {
		switch c.ID() {
		case 0:
			var err error
			if buf, err = writer.Mmap(length, mm.ProtRead|mm.ProtWrite, false); err != nil {
				env.Fail("mmap: %v", err)
				return
			}
			mapped.Set()
			filled.Wait(writer, "filler pages populated")
			for r := 0; r < rounds; r++ {
				p := pageOf(r)
				if err := writer.Store(p, uint64(r)); err != nil { // a writable, dirty entry in the TLB
					env.Fail("store: %v", err)
					return
				}
				written[r].Set()
				done := func() bool { return scanned[r].set.Load() && migrated[r].set.Load() }
				for n := uint64(1); !done(); n++ {
					if err := writer.Store(p, n<<16|uint64(r)); err != nil {
						env.Fail("writer: %v", err)
						return
					}
					// One store per state of P's PTE: the others run until
					// it changes, so that the writer does not hold the det
					// scheduler's turn between them.
					last := pteOf(p)
					waitFor(writer, "P's PTE to change", func() bool { return pteOf(p) != last || done() })
				}
				if _, err := writer.Load(p); err != nil { // the oracle wants the last store
					env.Fail("load: %v", err)
				}
			}
		case 1:
			mapped.Wait(scanner, "buffer mapped")
			for i := uint64(0); i < fillers; i++ {
				if err := scanner.Store(buf+table+i*page, i); err != nil {
					env.Fail("populate: %v", err)
				}
			}
			filled.Set()
			for r := 0; r < rounds; r++ {
				written[r].Wait(scanner, "the writer's store")
				for i := uint64(0); i < fillers; i++ { // back from the last scan (hinting faults on node 0: no migration)
					if _, err := scanner.Load(buf + table + i*page); err != nil {
						env.Fail("filler: %v", err)
					}
				}
				if _, err := scanner.TaskNumaWork(pageOf(r), buf+length); err != nil {
					env.Fail("task_numa_work: %v", err)
				}
				scanned[r].Set()
				migrated[r].Wait(scanner, "the hinting fault")
			}
		case 2:
			mapped.Wait(migrator, "buffer mapped")
			for r := 0; r < rounds; r++ {
				p := pageOf(r)
				written[r].Wait(migrator, "the writer's store")
				if env.Params.Order != OrderFree {
					waitFor(migrator, "P made PROT_NONE", func() bool {
						return (env.Params.Order == "migrate" && protNone(p)) || scanned[r].set.Load()
					})
				}
				if _, err := migrator.Load(p); err != nil { // the hinting fault, if P is PROT_NONE
					env.Fail("load: %v", err)
				}
				migrated[r].Set()
			}
		}
	}, nil
}
