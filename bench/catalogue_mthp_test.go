package bench

import (
	"fmt"
	"testing"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/sched"
)

// The race 383c4613c67c closed (mthp-split-race): before the fix the
// madvise walker returns with a stale TLB entry, and a write after it is
// lost, within a few hundred det seeds; with the fix (the default
// variant) under flush-mm nothing is found. Also with order-2 folios.
func TestCatalogueMTHPSplitRace(t *testing.T) {
	for _, tc := range []struct {
		variant  string
		pages    int // the large folio's pages (0: the default, 16)
		seeds    int
		wantRace bool
	}{
		{"unfixed", 0, 300, true},
		{"unfixed", 4, 300, true},
		{"fixed", 0, 100, false},
		{"", 0, 20, false}, // the default is the fixed form
		{"fixed", 4, 30, false},
	} {
		t.Run(fmt.Sprintf("%s/pages=%d", tc.variant, tc.pages), func(t *testing.T) {
			c := config("mthp-split-race", "flush-mm", "fullmm", sched.Det, 0)
			c.Params.Variant, c.Params.Pages = tc.variant, tc.pages
			var stale, lost int
			forEachSeed(t, c, testSeeds(tc.seeds, tc.wantRace), func(s int, r *Result) bool {
				if !tc.wantRace && r.ViolationCount() > 0 {
					t.Fatalf("seed %d: %v", s, r.First)
				}
				if r.Violations[mm.StaleTLB] > 0 {
					stale++
				}
				if r.Violations[mm.LostWrite] > 0 {
					lost++
				}
				return !(tc.wantRace && stale > 0 && lost > 0)
			})
			if tc.wantRace && (stale == 0 || lost == 0) {
				t.Fatalf("in %d seeds: stale_tlb in %d, lost writes in %d; want both", tc.seeds, stale, lost)
			}
		})
	}
}
