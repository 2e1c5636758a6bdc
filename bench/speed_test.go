package bench

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/mmubench/mmubench/explore"
	"github.com/mmubench/mmubench/mmu"

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

// BenchmarkLackeyReplay replays a real program's trace — the checked-in
// xz trace (results/traces), written five times over into one file of 5 M
// accesses — through one CPU with a 64-entry 4-way L1 and no L2 or walk
// cache, as the cachegrind comparison of results/performance.md does. Each
// iteration reads a fresh name of the file, so it scans and streams it as a
// first replay does. Reports ns per access and MB/s of trace text.
func BenchmarkLackeyReplay(b *testing.B) {
	dir := b.TempDir()
	path := filepath.Join(dir, "xz5.trace")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	for range 5 {
		src, err := os.Open("../results/traces/xz.trace.gz")
		if err != nil {
			b.Fatal(err)
		}
		zr, err := gzip.NewReader(src)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(f, zr); err != nil {
			b.Fatal(err)
		}
		src.Close()
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(path)
	c := DefaultConfig()
	c.Machine.CPUs = 1
	c.Machine.L1 = mmu.TLBGeometry{Entries: 64, Ways: 4}
	c.Machine.L2, c.Machine.WalkCache = mmu.TLBGeometry{}, mmu.TLBGeometry{}
	var accesses uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := filepath.Join(dir, fmt.Sprintf("xz5-%d.trace", i))
		if err := os.Link(path, name); err != nil {
			b.Fatal(err)
		}
		c.Workload = "lackey:" + name
		r, err := Run(c)
		if err != nil || len(r.Errors) > 0 {
			b.Fatal(err, r.Errors)
		}
		accesses = r.Total.Accesses
	}
	if accesses < 5_000_000 {
		b.Fatalf("%d accesses, want at least 5 M", accesses)
	}
	perRun := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(perRun*1e9/float64(accesses), "ns/access")
	b.ReportMetric(float64(fi.Size())/1e6/perRun, "MB/s")
}

// BenchmarkExploreSchedules: how many det schedules per second the
// explorer runs on the small race workloads (what bounds how deep an
// exploration can go).
func BenchmarkExploreSchedules(b *testing.B) {
	for _, w := range []string{"reclaim-mprotect", "madvfree-race", "dontneed-race"} {
		b.Run("workload="+w, func(b *testing.B) {
			c := DefaultConfig()
			c.Workload, c.Nested, c.Rounds = w, "fullmm", 1
			c.Params.Small, c.Params.Order = true, "free"
			c.Machine.Frames = 256
			if c.Machine.CPUs = 2; w == "reclaim-mprotect" {
				c.Machine.CPUs = 3
			}
			schedules := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rep, err := explore.Explore(context.Background(), ExploreRunner(c), explore.Options{Bound: 2, MaxSchedules: 400})
				if err != nil {
					b.Fatal(err)
				}
				schedules += rep.Schedules
			}
			b.ReportMetric(float64(schedules)/b.Elapsed().Seconds(), "schedules/s")
		})
	}
}
