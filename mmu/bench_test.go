package mmu

import (
	"bufio"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mmubench/mmubench/pagetable"
	"github.com/mmubench/mmubench/sched"
)

// stream returns n word addresses: for a hot set, random words of the
// pages; otherwise one word per page, sweeping them in order (so an LRU TLB
// smaller than the page count misses every time).
func stream(sp *space, pages, n int, random bool) []uint64 {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]uint64, n)
	for i := range out {
		if random {
			out[i] = sp.va(r.IntN(pages)) + 8*uint64(r.IntN(FrameWords))
		} else {
			out[i] = sp.va(i%pages) + 8*uint64(i%FrameWords)
		}
	}
	return out
}

// nativeNs times a plain Go loop over the same addresses in a slice of the
// same size: what the emulated loads cost without the emulation.
func nativeNs(addrs []uint64, pages, n int) float64 {
	mem := make([]uint64, pages*FrameWords)
	idx := make([]uint32, len(addrs))
	for i, a := range addrs {
		idx[i] = uint32((a-testBase)>>pagetable.PageShift)*FrameWords + uint32(a&0xfff)>>3
	}
	mask := len(idx) - 1
	var sum uint64
	start := time.Now()
	for i := 0; i < n; i++ {
		sum += mem[idx[i&mask]]
	}
	el := time.Since(start)
	if sum == 1 {
		println() // keep the loop
	}
	return float64(el.Nanoseconds()) / float64(n)
}

// BenchmarkAccess measures one emulated load on each path of the hardware:
// one Load call per access, as the workloads make them, and (-replay) the
// same L1 hits through Replay, a batch at a time, as the trace replay makes
// them. It also times a native loop over the same address stream in the
// same run and reports the ratio as "slowdown". The CLI is built with
// cmd/mmubench/default.pgo, a profile of its own work; go test
// -pgo=$PWD/cmd/mmubench/default.pgo -bench Access ./mmu measures the
// access path with it (results/performance.md).
func BenchmarkAccess(b *testing.B) {
	for _, tc := range []struct {
		name   string
		mode   sched.Mode
		pages  int
		random bool
	}{
		{"path=l1-hit", sched.Parallel, 32, true},   // fits the 48-entry L1
		{"path=l2-hit", sched.Parallel, 512, false}, // sweeps past L1, fits the 1280-entry L2
		{"path=walk", sched.Parallel, 16384, false}, // sweeps past L2: every access walks
		{"path=l1-hit-det", sched.Det, 32, true},    // det mode: yield points that rarely switch
		{"path=l1-hit-replay", sched.Parallel, 32, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m := newMachine(b, 1, tc.mode, 1, func(c *Config) { c.Frames = tc.pages + 64 })
			sp := mapPages(b, m, 1, testBase, tc.pages, userRW)
			addrs := stream(sp, tc.pages, 1<<16, tc.random)
			mask := len(addrs) - 1
			var emu time.Duration
			err := m.Run(func(c *CPU) {
				sp.enter(c)
				for _, a := range addrs { // warm the TLBs
					c.Load(a)
				}
				// Only the loop below is ns/op: building the machine,
				// mapping, warming and the native loop are not. (The body
				// runs on the CPU's goroutine while b's waits in Run.)
				b.ResetTimer()
				start := time.Now()
				if strings.HasSuffix(tc.name, "-replay") {
					// The same loads through Replay, as a trace replay makes
					// them: a batch of the stream at a time.
					for i := 0; i < b.N; {
						j := i & mask
						n := min(b.N-i, len(addrs)-j)
						if _, f := c.Replay(addrs[j:j+n], 0); f != FaultNone {
							b.Errorf("replay: %v", f)
							break
						}
						i += n
					}
				} else {
					for i := 0; i < b.N; i++ {
						c.Load(addrs[i&mask])
					}
				}
				emu = time.Since(start)
				b.StopTimer()
			})
			if err != nil {
				b.Fatal(err)
			}
			emuNs := float64(emu.Nanoseconds()) / float64(b.N)
			b.ReportMetric(1e3/emuNs, "Macc/s")
			b.ReportMetric(emuNs/nativeNs(addrs, tc.pages, b.N), "slowdown")
			ctr := m.Counters()
			b.ReportMetric(float64(ctr.Walks)/float64(ctr.Accesses), "walks/access")
		})
	}
}

// BenchmarkParallelSpeedup runs the L1-hit path on 1 and then 2 emulated
// CPUs side by side and reports the throughput ratio (goal on a 2-core
// host: >= 1.6).
func BenchmarkParallelSpeedup(b *testing.B) {
	run := func(cpus int) time.Duration {
		m := newMachine(b, cpus, sched.Parallel, 1, func(c *Config) { c.Frames = 256 })
		spaces := make([]*space, cpus)
		for i := range spaces {
			spaces[i] = mapPages(b, m, uint16(i+1), testBase, 32, userRW)
		}
		addrs := stream(spaces[0], 32, 1<<16, true)
		mask := len(addrs) - 1
		start := time.Now()
		if err := m.Run(func(c *CPU) {
			spaces[c.ID()].enter(c)
			for i := 0; i < b.N; i++ {
				c.Load(addrs[i&mask])
			}
		}); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	t1 := run(1)
	t2 := run(2)
	one := float64(b.N) / t1.Seconds()
	two := 2 * float64(b.N) / t2.Seconds()
	b.ReportMetric(one/1e6, "Macc/s-1cpu")
	b.ReportMetric(two/1e6, "Macc/s-2cpu")
	b.ReportMetric(two/one, "speedup")
}

// BenchmarkMemory1GiB: 8 CPUs with 1 GiB of emulated memory, every frame
// mapped and written. Reports the host's resident memory (goal < 1.3 GiB).
func BenchmarkMemory1GiB(b *testing.B) {
	for i := 0; i < b.N; i++ {
		const frames = 1 << 30 >> pagetable.PageShift
		m := newMachine(b, 8, sched.Parallel, 1, func(c *Config) { c.Frames = frames })
		// Leave room for the page tables (one level-3 table per 512 pages).
		pages := frames - frames/512 - 16
		sp := mapPages(b, m, 1, testBase, pages, userRW)
		if err := m.Run(func(c *CPU) {
			sp.enter(c)
			for p := c.ID(); p < pages; p += 8 {
				for w := 0; w < FrameWords; w += 64 {
					c.Store(sp.va(p)+8*uint64(w), uint64(p))
				}
			}
		}); err != nil {
			b.Fatal(err)
		}
		if free := m.Phys().FreeFrames(); free > 32 {
			b.Fatalf("%d frames never used", free)
		}
		b.ReportMetric(float64(procStatus("VmHWM:"))/1024, "host-MiB")
	}
}

// procStatus reads a kB field of /proc/self/status (0 if unavailable).
func procStatus(field string) int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			v, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return v
		}
	}
	return 0
}
