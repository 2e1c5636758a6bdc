package bench

import "github.com/mmubench/mmubench/workloads"

// PatchDiscussionSweep is the built-in sweep `mmubench sweep` runs with no
// arguments: the questions of both seed threads, small enough for a few
// minutes on two cores.
//   - the reclaim-vs-mprotect race under every batched-unmap policy;
//   - the MADV_FREE and MADV_DONTNEED races under every nested policy;
//   - Barry Song's pageout loop under every batched-unmap policy (what Will
//     Deacon asked him to re-run);
//   - Ryan Roberts' side effect: what flush_tlb_batched_pending's flushes
//     cost the hot threads (flush_overhead_pct) under dsb-only, flush-mm,
//     range and range-ideal, in emulated time (the clocked scheduler);
//   - swap-bench under memory pressure.
func PatchDiscussionSweep() *Sweep {
	all := []string{"no-batch", "dsb-only", "flush-mm", "range", "range-ideal"}
	return &Sweep{
		Sched: "det",
		Seeds: 30,
		Groups: []Group{
			{Workloads: []string{"reclaim-mprotect"}, Policies: all},
			{Workloads: []string{"madvfree-race", "dontneed-race"}, Nested: []string{"none", "range", "fullmm"}},
			{Workloads: []string{"pageout-loop"}, Policies: all, CPUs: []int{8}, Rounds: 50},
			{Workloads: []string{"mprotect-under-reclaim"}, Policies: []string{"dsb-only", "flush-mm", "range", "range-ideal"},
				CPUs: []int{4}, Rounds: 2, Quantum: 1 << 16, Seeds: 5,
				Params: workloads.Params{Pages: 256, Compute: 3, Gap: 100_000}},
			{Workloads: []string{"swap-bench"}, Policies: all, CPUs: []int{3}, MemMiB: 4,
				Params: workloads.Params{Accesses: 10_000}},
		},
	}
}
