package bench

import (
	"testing"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/sched"
)

// The race catalogue's "mm_tlb_flush_pending and PROT_NONE" (20841405940e):
// a NUMA hinting fault migrates a page that change_prot_numa made PROT_NONE
// but has not flushed yet. Before the fix the writer's stale entry writes
// the old frame (lost writes, use after free); after it, nothing. In the
// benign order (the hinting fault after task_numa_work returned) neither
// form breaks. The full counts are in results/catalogue-numa.csv.
func TestCatalogueNumaMigrate(t *testing.T) {
	for _, tc := range []struct {
		variant, order string
		mode           sched.Mode
		seeds          int
		wantRace       bool
	}{
		{"unfixed", "migrate", sched.Det, 20, true},
		{"fixed", "migrate", sched.Det, 100, false},
		{"unfixed", "scan", sched.Det, 20, false},
		{"fixed", "scan", sched.Det, 20, false},
		{"fixed", "random", sched.Det, 40, false},
		{"fixed", "migrate", sched.Parallel, 20, false},
	} {
		t.Run(tc.variant+"/"+tc.order+"/"+tc.mode.String(), func(t *testing.T) {
			c := config("numa-migrate-race", "flush-mm", "fullmm", tc.mode, 0)
			c.Params.Variant, c.Params.Order = tc.variant, tc.order
			bad := 0
			var kinds [mm.NumViolationKinds]uint64
			seeds := testSeeds(tc.seeds, tc.wantRace)
			forEachSeed(t, c, seeds, func(_ int, r *Result) bool {
				if r.ViolationCount() > 0 {
					bad++
				}
				for k, n := range r.Violations {
					kinds[k] += n
				}
				return true
			})
			t.Logf("violations in %d of %d seeds (%v)", bad, seeds, kinds)
			switch {
			case tc.wantRace && bad == 0:
				t.Fatalf("no violation in %d seeds", tc.seeds)
			case tc.wantRace && kinds[mm.LostWrite]+kinds[mm.UseAfterFree] == 0:
				t.Fatalf("violations %v, want lost writes or use after free", kinds)
			case !tc.wantRace && bad > 0:
				t.Fatalf("violations in %d of %d seeds: %v", bad, seeds, kinds)
			}
		})
	}
}
