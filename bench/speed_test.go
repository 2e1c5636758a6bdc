package bench

import (
	"testing"

	"github.com/mmubench/mmubench/sched"
)

// BenchmarkSeq10M: the seq workload, 10 M accesses on 1 CPU in parallel
// mode, through the kernel and the oracle (goal: under 1 s a run).
func BenchmarkSeq10M(b *testing.B) {
	c := config("seq", "flush-mm", "fullmm", sched.Parallel, 1)
	c.Machine.CPUs = 1
	c.Params.Accesses = 10_000_000
	for i := 0; i < b.N; i++ {
		r, err := Run(c)
		if err != nil {
			b.Fatal(err)
		}
		if r.Total.Accesses < 10_000_000 {
			b.Fatalf("%d accesses", r.Total.Accesses)
		}
		b.ReportMetric(float64(r.WallNs)/float64(r.Total.Accesses), "ns/access")
	}
}
