package bench

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/sched"
	"github.com/mmubench/mmubench/workloads"
)

func config(workload, pol, nested string, mode sched.Mode, seed uint64) Config {
	c := DefaultConfig()
	c.Workload, c.Policy, c.Nested = workload, pol, nested
	c.Machine.Sched.Mode = mode
	c.Machine.Sched.Seed = seed
	c.Params.Order = raceOrder[workload]
	return c
}

// raceOrder is each race workload's own order of its racers: the one in
// which the race can happen (the tests of the other order say so).
var raceOrder = map[string]string{"reclaim-mprotect": "reclaim", "madvfree-race": "helper", "dontneed-race": "helper"}

// seedsWithViolations runs seeds 1..n and counts those with violations.
func seedsWithViolations(t *testing.T, workload, pol, nested string, mode sched.Mode, n int) int {
	t.Helper()
	bad, _ := seedsWithViolationsIn(t, config(workload, pol, nested, mode, 0), n)
	return bad
}

// seedsWithViolationsIn runs c with seeds 1..n and counts those with
// violations, and those with stale_tlb ones.
func seedsWithViolationsIn(t *testing.T, c Config, n int) (bad, stale int) {
	t.Helper()
	forEachSeed(t, c, n, func(_ int, r *Result) bool {
		if r.ViolationCount() > 0 {
			bad++
		}
		if r.Violations[mm.StaleTLB] > 0 {
			stale++
		}
		return true
	})
	return bad, stale
}

// forEachSeed runs c with seeds 1..n, failing the test on a run that could
// not be carried out, and hands each result to visit until it returns
// false.
func forEachSeed(t *testing.T, c Config, n int, visit func(seed int, r *Result) bool) {
	t.Helper()
	for s := 1; s <= n; s++ {
		c.Machine.Sched.Seed = uint64(s)
		r, err := Run(c)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Errors) > 0 {
			t.Fatalf("seed %d: %v", s, r.Errors)
		}
		if !visit(s, r) {
			return
		}
	}
}

// The TLB invariant sees the races in either order of the racers, also
// where no racing access lands (the benign order of dontneed-race and
// reclaim-mprotect breaks nothing, and it is quiet there), and never under
// the fixes.
func TestStaleTLBInvariant(t *testing.T) {
	for _, tc := range []struct {
		workload, policy, nested, order string
		wantStale                       bool
	}{
		{"reclaim-mprotect", "dsb-only", "fullmm", "reclaim", true},
		{"reclaim-mprotect", "dsb-only", "fullmm", "mprotect", false},
		{"reclaim-mprotect", "flush-mm", "fullmm", "reclaim", false},
		{"reclaim-mprotect", "range", "fullmm", "reclaim", false},
		{"madvfree-race", "flush-mm", "none", "helper", true},
		{"madvfree-race", "flush-mm", "none", "writer", true}, // no write is lost in this order, yet the helper's call returns with the writer's entries writable
		{"madvfree-race", "flush-mm", "fullmm", "writer", false},
		{"madvfree-race", "flush-mm", "range", "helper", false},
		{"dontneed-race", "flush-mm", "none", "helper", true},
		{"dontneed-race", "flush-mm", "fullmm", "helper", false},
	} {
		t.Run(tc.workload+"/"+tc.policy+"/"+tc.nested+"/"+tc.order, func(t *testing.T) {
			c := config(tc.workload, tc.policy, tc.nested, sched.Det, 0)
			c.Params.Order = tc.order
			const seeds = 20
			bad, stale := seedsWithViolationsIn(t, c, seeds)
			if tc.wantStale && 2*stale < seeds {
				t.Fatalf("stale_tlb in %d of %d seeds, want most", stale, seeds)
			}
			if !tc.wantStale && stale > 0 {
				t.Fatalf("stale_tlb in %d of %d seeds (violations in %d)", stale, seeds, bad)
			}
		})
	}
}

// The races of both seed threads happen under the old policies and never
// under the fixes (the full-size checks are in results/; these are small).
func TestRaces(t *testing.T) {
	for _, tc := range []struct {
		workload, policy, nested string
		mode                     sched.Mode
		seeds                    int
		wantRace                 bool
	}{
		{"reclaim-mprotect", "dsb-only", "fullmm", sched.Det, 20, true},
		{"reclaim-mprotect", "flush-mm", "fullmm", sched.Det, 60, false},
		{"reclaim-mprotect", "range", "fullmm", sched.Det, 60, false},
		{"reclaim-mprotect", "range-ideal", "fullmm", sched.Det, 60, false},
		{"reclaim-mprotect", "range", "fullmm", sched.Parallel, 30, false},
		{"reclaim-mprotect", "no-batch", "fullmm", sched.Det, 60, false},
		{"reclaim-mprotect", "dsb-only", "fullmm", sched.Parallel, 20, true},
		{"reclaim-mprotect", "flush-mm", "fullmm", sched.Parallel, 30, false},
		{"madvfree-race", "flush-mm", "none", sched.Det, 20, true},
		{"madvfree-race", "flush-mm", "range", sched.Det, 60, false},
		{"madvfree-race", "flush-mm", "fullmm", sched.Det, 60, false},
		{"dontneed-race", "flush-mm", "none", sched.Det, 20, true},
		{"dontneed-race", "flush-mm", "range", sched.Det, 60, false},
		{"dontneed-race", "flush-mm", "fullmm", sched.Det, 60, false},
	} {
		name := tc.workload + "/" + tc.policy + "/" + tc.nested + "/" + tc.mode.String()
		t.Run(name, func(t *testing.T) {
			bad := seedsWithViolations(t, tc.workload, tc.policy, tc.nested, tc.mode, tc.seeds)
			if tc.wantRace && bad == 0 {
				t.Fatalf("no violation in %d seeds", tc.seeds)
			}
			if !tc.wantRace && bad > 0 {
				t.Fatalf("violations in %d of %d seeds under a correct policy", bad, tc.seeds)
			}
		})
	}
}

// The cost side of seed 000: flush-mm empties the writer's TLB (a higher
// miss rate than range), and no-batch pays a DSB per unmapped page.
func TestReclaimMprotectCost(t *testing.T) {
	const seeds = 8
	missRate := map[string][]float64{}
	dsbs := map[string][]uint64{}
	for _, p := range []string{"no-batch", "dsb-only", "flush-mm", "range"} {
		for s := uint64(1); s <= seeds; s++ {
			r, err := Run(config("reclaim-mprotect", p, "fullmm", sched.Det, s))
			if err != nil {
				t.Fatal(err)
			}
			missRate[p] = append(missRate[p], r.MissRate())
			dsbs[p] = append(dsbs[p], r.Total.DSBs)
		}
	}
	med := func(v []float64) float64 { v = slices.Clone(v); slices.Sort(v); return v[len(v)/2] }
	medU := func(v []uint64) uint64 { v = slices.Clone(v); slices.Sort(v); return v[len(v)/2] }
	if med(missRate["flush-mm"]) <= med(missRate["range"]) {
		t.Errorf("median miss rate flush-mm %.3f <= range %.3f", med(missRate["flush-mm"]), med(missRate["range"]))
	}
	for _, p := range []string{"dsb-only", "flush-mm", "range"} {
		if medU(dsbs["no-batch"]) <= medU(dsbs[p]) {
			t.Errorf("median DSBs no-batch %d <= %s %d", medU(dsbs["no-batch"]), p, medU(dsbs[p]))
		}
	}
	t.Logf("median miss rate: flush-mm %.3f range %.3f; median DSBs: no-batch %d dsb-only %d flush-mm %d range %d",
		med(missRate["flush-mm"]), med(missRate["range"]), medU(dsbs["no-batch"]), medU(dsbs["dsb-only"]), medU(dsbs["flush-mm"]), medU(dsbs["range"]))
}

// A violation found in det mode replays: the same seed gives the same
// first event and the same counters.
func TestDetReplaysFirstViolation(t *testing.T) {
	for _, c := range []Config{
		config("reclaim-mprotect", "dsb-only", "fullmm", sched.Det, 7),
		config("madvfree-race", "flush-mm", "none", sched.Det, 2),
		config("dontneed-race", "flush-mm", "none", sched.Det, 3),
	} {
		a, err := Run(c)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := Run(c)
		if a.First == nil {
			t.Fatalf("%s seed %d: no violation to replay", c.Workload, c.Machine.Sched.Seed)
		}
		if !reflect.DeepEqual(a.First, b.First) || a.Total != b.Total || a.Violations != b.Violations {
			t.Fatalf("%s: two runs of one seed differ:\n%v\n%v", c.Workload, a.First, b.First)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Workload = "x" }, "unknown workload"},
		{func(c *Config) { c.Policy = "x" }, "unknown policy"},
		{func(c *Config) { c.Nested = "x" }, "unknown nested policy"},
		{func(c *Config) { c.Machine.CPUs = 2 }, "needs at least 3 CPUs"},
		{func(c *Config) { c.Rounds = -1 }, "-1 rounds"},
	} {
		c := DefaultConfig()
		tc.mod(&c)
		if _, err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want %q", err, tc.want)
		}
	}
}

// The synthetic patterns over threads and processes run clean in both
// schedulers: every access made, nothing for the oracle to report.
func TestSyntheticWorkloads(t *testing.T) {
	for _, w := range []string{"seq", "stride", "uniform", "zipf"} {
		for _, tc := range []struct {
			mode           sched.Mode
			threads, procs int
		}{{sched.Det, 1, 1}, {sched.Det, 4, 2}, {sched.Parallel, 4, 4}} {
			c := config(w, "flush-mm", "fullmm", tc.mode, 3)
			c.Params.Threads, c.Params.Procs = tc.threads, tc.procs
			c.Params.Pages, c.Params.Accesses = 300, 5000
			r, err := Run(c)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Errors) > 0 || r.ViolationCount() > 0 || r.Total.Accesses < uint64(tc.threads*5000) {
				t.Errorf("%s %v %d threads %d procs: errors %v, violations %v, %d accesses",
					w, tc.mode, tc.threads, tc.procs, r.Errors, r.Violations, r.Total.Accesses)
			}
		}
	}
}

// The shell benchmark and the swap benchmark run clean, with reclaim
// leaving flushes pending in the processes (flush_tlb_batched_pending
// finds them), and exit gives everything back.
func TestProcessWorkloads(t *testing.T) {
	for _, tc := range []struct {
		workload string
		cpus     int
		memMiB   int
		params   workloads.Params
	}{
		{"unixbench-shell1", 6, 3, workloads.Params{Accesses: 400, Compute: 10}},
		{"swap-bench", 3, 4, workloads.Params{Accesses: 3000}},
	} {
		for _, pol := range []string{"no-batch", "flush-mm", "range"} {
			t.Run(tc.workload+"/"+pol, func(t *testing.T) {
				c := config(tc.workload, pol, "fullmm", sched.Det, 2)
				c.Machine.CPUs, c.Machine.Frames = tc.cpus, tc.memMiB<<8
				c.Machine.Sched.Quantum = 1 << 14
				c.Params = tc.params
				r, err := Run(c)
				if err != nil {
					t.Fatal(err)
				}
				if len(r.Errors) > 0 || r.ViolationCount() > 0 {
					t.Fatalf("errors %v, violations %v: %v", r.Errors, r.Violations, r.First)
				}
				if r.Kernel["written_back"] == 0 {
					t.Fatal("nothing was reclaimed: no memory pressure")
				}
				if bp := r.Kernel["batched_pending"]; (pol == "no-batch") != (bp == 0) {
					t.Fatalf("%d flush_tlb_batched_pending flushes under %s", bp, pol)
				}
				if tc.workload == "unixbench-shell1" {
					if r.Metrics["loops"] != float64(5*r.Rounds) || r.Metrics["index"] <= 0 {
						t.Fatalf("metrics %v", r.Metrics)
					}
					// Each fork's copy and each exec'd image exit, and so
					// does each shell's first, empty address space.
					copies := uint64(r.Params.Threads)
					if r.Kernel["exits"] != 2*r.Kernel["forks"]+copies {
						t.Fatalf("%d exits for %d forks", r.Kernel["exits"], r.Kernel["forks"])
					}
				}
			})
		}
	}
}

// Ryan Roberts' side effect, measured: under flush-mm the hot threads
// refill their whole hot set after each flush_tlb_batched_pending, so what
// the flushes cost grows with the hot set while the TLBs hold it; range
// leaves the hot set alone.
func TestFlushSideEffect(t *testing.T) {
	lost := func(pol string, pages int) (uint64, float64) {
		c := config("mprotect-under-reclaim", pol, "fullmm", sched.Det, 1)
		c.Machine.CPUs = 4
		c.Params.Pages = pages
		r, err := Run(c)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Errors) > 0 || r.ViolationCount() > 0 {
			t.Fatalf("%s: errors %v, violations %v", pol, r.Errors, r.Violations)
		}
		return r.Total.FlushLostCycles, r.FlushOverheadPct()
	}
	small, _ := lost("flush-mm", 32)
	big, overhead := lost("flush-mm", 256)
	ranged, rangeOverhead := lost("range", 256)
	ideal, _ := lost("range-ideal", 256)
	t.Logf("flush-mm: %d lost cycles at 32 pages, %d at 256 (%.1f%% of the hot threads' time); range %d (%.2f%%), range-ideal %d",
		small, big, overhead, ranged, rangeOverhead, ideal)
	if big < 4*small {
		t.Errorf("flush-mm's lost cycles grew from %d to only %d with an 8 times larger hot set", small, big)
	}
	if ranged*10 >= big {
		t.Errorf("range lost %d cycles, not under a tenth of flush-mm's %d", ranged, big)
	}
	if ideal > ranged {
		t.Errorf("range-ideal lost more (%d) than range (%d)", ideal, ranged)
	}
	if dsb, _ := lost("dsb-only", 256); dsb != 0 {
		t.Errorf("dsb-only flushes nothing, yet %d cycles were lost to its flushes", dsb)
	}
}

// testSeeds is how many seeds a check over n seeds runs: n when it looks
// for a race (that is never cut); for a "clean over n seeds" check n, or a
// fifth of it (at least 5) under the race detector, which runs the
// emulator ten times slower and looks for data races, which a handful of
// schedules exercise as well as a hundred.
func testSeeds(n int, lookingForRace bool) int {
	if raceEnabled && !lookingForRace {
		return max(n/5, min(n, 5))
	}
	return n
}
