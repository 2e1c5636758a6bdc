package bench

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/sched"
)

// The race catalogue's task-migration entry: with __switch_to's dsb(ish)
// reverted, a reclaiming task that migrates between its batch's TLBIs and
// arch_tlbbatch_flush loses writes or lets a write into a freed frame —
// under every policy that batches, since the batch flush itself is at
// fault — and with it nothing is found (the full counts are in
// results/catalogue-migrate.csv).
func TestCatalogueMigrate(t *testing.T) {
	for _, tc := range []struct {
		variant, policy string
		mode            sched.Mode
		seeds           int // unfixed: found within this many; fixed: clean over them
		wantRace        bool
	}{
		{"unfixed", "flush-mm", sched.Det, 300, true},
		{"unfixed", "range", sched.Det, 300, true},
		{"unfixed", "flush-mm", sched.Parallel, 20, true},
		{"unfixed", "no-batch", sched.Det, 30, false}, // nothing deferred: each TLBI completes before the task can move
		{"fixed", "flush-mm", sched.Det, 100, false},
		{"fixed", "range", sched.Det, 30, false},
		{"fixed", "flush-mm", sched.Parallel, 10, false},
	} {
		t.Run(tc.variant+"/"+tc.policy+"/"+tc.mode.String(), func(t *testing.T) {
			c := DefaultConfig()
			c.Workload, c.Policy, c.Nested = "migrate-reclaim", tc.policy, "fullmm"
			c.Params.Variant = tc.variant
			c.Machine.Sched.Mode = tc.mode
			found := false
			forEachSeed(t, c, testSeeds(tc.seeds, tc.wantRace), func(s int, r *Result) bool {
				found = r.ViolationCount() > 0
				if found && !tc.wantRace {
					t.Fatalf("seed %d: %d violations (first: %v)", s, r.ViolationCount(), r.First)
				}
				if found && r.Violations[mm.LostWrite]+r.Violations[mm.UseAfterFree] == 0 {
					t.Fatalf("seed %d: violations, but neither a lost write nor a use after free", s)
				}
				return !found
			})
			if tc.wantRace && !found {
				t.Fatalf("no violation in %d seeds", tc.seeds)
			}
		})
	}
}

// results/catalogue-migrate.csv's verdict matrix gives each variant a row
// of its own (its rows regenerate in TestResultsRowsRegenerate).
func TestCatalogueMigrateResults(t *testing.T) {
	data, err := os.ReadFile("../results/catalogue-migrate.csv")
	if err != nil {
		t.Fatal(err)
	}
	tab, err := ReadResults(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	v, err := Verdicts(tab)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := RenderTables(&out, "text", "", v); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"migrate-reclaim fixed |     0/1000", "migrate-reclaim unfixed | 300/300 lu"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("verdicts lack %q:\n%s", want, out.String())
		}
	}
}
