package bench

import (
	"sync"
	"testing"

	"github.com/mmubench/mmubench/sched"
)

// BenchmarkPolicies runs the patch threads' workloads under each policy in
// det mode, one run (seed i) per op, and reports what the policies cost and
// break per run, so that `benchstat -col /policy` compares them:
//
//	go test -bench=Policies -benchtime=10x ./bench | tee new.txt
//	benchstat -col /policy new.txt
func BenchmarkPolicies(b *testing.B) {
	batch := []string{"no-batch", "dsb-only", "flush-mm", "range"}
	type point struct{ workload, policy, nested string }
	var points []point
	for _, w := range []string{"reclaim-mprotect", "pageout-loop", "mprotect-under-reclaim", "swap-bench"} {
		for _, p := range batch {
			points = append(points, point{w, p, ""})
		}
	}
	for _, w := range []string{"madvfree-race", "dontneed-race"} {
		for _, n := range []string{"none", "range", "fullmm"} {
			points = append(points, point{w, "flush-mm", n})
		}
	}
	for _, pt := range points {
		name := "workload=" + pt.workload + "/policy=" + pt.policy
		nested := "fullmm"
		if pt.nested != "" {
			name += "/nested=" + pt.nested
			nested = pt.nested
		}
		b.Run(name, func(b *testing.B) {
			c := config(pt.workload, pt.policy, nested, sched.Det, 1)
			if pt.workload == "swap-bench" {
				c.Machine.CPUs, c.Machine.Frames = 3, 4<<8
				c.Params.Accesses = 10_000
			}
			var sum Result
			seeds := nextSeeds(b.Name(), b.N)
			for i := 0; i < b.N; i++ {
				c.Machine.Sched.Seed = seeds + uint64(i)
				r, err := Run(c)
				if err != nil {
					b.Fatal(err)
				}
				if len(r.Errors) > 0 {
					b.Fatal(r.Errors)
				}
				sum.Total.Add(&r.Total)
				for k, v := range r.Violations {
					sum.Violations[k] += v
				}
			}
			n := float64(b.N)
			t := &sum.Total
			b.ReportMetric(float64(t.L1Misses)/n, "l1-misses/op")
			b.ReportMetric(float64(t.L2Misses)/n, "l2-misses/op")
			b.ReportMetric(float64(t.Walks)/n, "walks/op")
			b.ReportMetric(float64(t.TLBIs())/n, "tlbi/op")
			b.ReportMetric(float64(t.DSBs)/n, "dsb/op")
			b.ReportMetric(float64(t.Cycles)/n, "emu-cycles/op")
			b.ReportMetric(float64(sum.ViolationCount())/n, "violations/op")
		})
	}
}

var (
	seedMu   sync.Mutex
	seedNext = map[string]uint64{}
)

// nextSeeds hands each sub-benchmark fresh seeds on every invocation, so
// that -count=N gives N different schedules (benchstat then has a spread).
func nextSeeds(name string, n int) uint64 {
	seedMu.Lock()
	defer seedMu.Unlock()
	first := seedNext[name] + 1
	seedNext[name] += uint64(n)
	return first
}
