package bench

import "github.com/mmubench/mmubench/workloads"

// PatchDiscussionSweep is the built-in sweep `mmubench sweep` runs with no
// arguments: the questions of both seed threads, small enough for a few
// minutes on two cores.
//   - the reclaim-vs-mprotect race under every batched-unmap policy;
//   - the MADV_FREE and MADV_DONTNEED races under every nested policy;
//   - Barry Song's pageout loop under every batched-unmap policy (what Will
//     Deacon asked him to re-run);
//   - Ryan Roberts' side effect: the hot set's miss rate after
//     flush_tlb_batched_pending, for dsb-only, flush-mm and range, on 2, 4
//     and 8 CPUs;
//   - swap-bench under memory pressure.
func PatchDiscussionSweep() *Sweep {
	all := []string{"no-batch", "dsb-only", "flush-mm", "range"}
	return &Sweep{
		Sched: "det",
		Seeds: 30,
		Groups: []Group{
			{Workloads: []string{"reclaim-mprotect"}, Policies: all},
			{Workloads: []string{"madvfree-race", "dontneed-race"}, Nested: []string{"none", "range", "fullmm"}},
			{Workloads: []string{"pageout-loop"}, Policies: all, CPUs: []int{8}, Rounds: 50},
			{Workloads: []string{"mprotect-under-reclaim"}, Policies: []string{"dsb-only", "flush-mm", "range"},
				CPUs: []int{2, 4, 8}, Rounds: 20},
			{Workloads: []string{"swap-bench"}, Policies: all, CPUs: []int{3}, MemMiB: 4,
				Params: workloads.Params{Accesses: 10_000}},
		},
	}
}
