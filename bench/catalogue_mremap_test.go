package bench

import (
	"cmp"
	"testing"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/sched"
)

// The race catalogue's mremap entry: without move_ptes's
// flush_tlb_batched_pending (3ea277194daa) the race shows within the first
// seeds under today's flush-mm, and with it flush-mm is clean. dsb-only is
// wrong even with the call in place: the call's flush is what the policy
// makes of it. In the other order (mremap moves the present PTE before
// reclaim gets to it) move_ptes flushes what it moved and there is no
// race. The full counts are in results/catalogue-mremap.csv.
func TestCatalogueMremap(t *testing.T) {
	for _, tc := range []struct {
		variant, policy, order string // order "": random, from the seed
		mode                   sched.Mode
		seeds                  int  // seeds 1..seeds; a race is looked for until the first finding
		wantRace               bool // some seed has violations (else: none has)
	}{
		{"unfixed", "flush-mm", "", sched.Det, 300, true},
		{"fixed", "flush-mm", "", sched.Det, 100, false},
		{"fixed", "flush-mm", "", sched.Parallel, 10, false},
		{"unfixed", "flush-mm", "mremap", sched.Det, 20, false},
		{"fixed", "range", "", sched.Det, 20, false},
		{"fixed", "dsb-only", "", sched.Det, 20, true},
	} {
		t.Run(tc.variant+"/"+tc.policy+"/"+cmp.Or(tc.order, "random")+"/"+tc.mode.String(), func(t *testing.T) {
			c := config("mremap-race", tc.policy, "fullmm", tc.mode, 0)
			c.Params.Variant, c.Params.Order = tc.variant, tc.order
			found := false
			forEachSeed(t, c, testSeeds(tc.seeds, tc.wantRace), func(s int, r *Result) bool {
				if found = r.ViolationCount() > 0; !found {
					return true
				}
				if !tc.wantRace {
					t.Fatalf("seed %d: violations %v: %v", s, r.Violations, r.First)
				}
				if r.Violations[mm.StaleTLB] == 0 || r.Violations[mm.LostWrite] == 0 {
					t.Logf("seed %d: violations %v (not both stale_tlb and lost writes)", s, r.Violations)
				}
				t.Logf("first finding: seed %d (order %s): %v", s, r.Params.Order, r.First)
				return false
			})
			if tc.wantRace && !found {
				t.Fatalf("no violation in %d seeds", tc.seeds)
			}
		})
	}
}
