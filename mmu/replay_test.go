package mmu

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mmubench/mmubench/pagetable"
	"github.com/mmubench/mmubench/sched"
)

// TestReplayEqualsLoadStore holds Replay to the same ops made one by one
// with Load and Store: the same faults at the same ops, the same counters
// (so the same hits, misses and LRU victims all the way), the same memory.
// The ops mix a hot set, sweeps past the L1, stores to read-only pages,
// unmapped and misaligned addresses, and a free behind a cached entry, on
// geometries with and without the L1's hit log, in both schedulers.
func TestReplayEqualsLoadStore(t *testing.T) {
	for _, geo := range []struct{ l1, l2 TLBGeometry }{
		{TLBGeometry{48, 48}, TLBGeometry{1280, 5}}, // the default: hit log, fast path
		{TLBGeometry{16, 16}, TLBGeometry{256, 256}},
		{TLBGeometry{64, 4}, TLBGeometry{1024, 4}}, // set associative: no fast path
		{TLBGeometry{1, 1}, TLBGeometry{}},
	} {
		for _, mode := range []sched.Mode{sched.Det, sched.Parallel} {
			t.Run(fmt.Sprintf("l1=%v/l2=%v/%v", geo.l1, geo.l2, mode), func(t *testing.T) {
				one := runReplayCase(t, geo.l1, geo.l2, mode, false)
				batch := runReplayCase(t, geo.l1, geo.l2, mode, true)
				if one != batch {
					t.Errorf("one by one:\n%s\nReplay:\n%s", one, batch)
				}
			})
		}
	}
}

// runReplayCase makes the case's ops and describes what they did.
func runReplayCase(t *testing.T, l1, l2 TLBGeometry, mode sched.Mode, batched bool) string {
	const pages = 96
	m := newMachine(t, 1, mode, 7, func(c *Config) {
		c.Frames = 512
		c.L1, c.L2 = l1, l2
	})
	sp := mapPages(t, m, 1, testBase, pages, userRW&^pagetable.PTERdonly)
	for i := pages; i < pages+4; i++ { // read-only: a store faults
		f, err := m.Phys().AllocZeroed()
		if err != nil {
			t.Fatal(err)
		}
		if err := sp.tables.Map(sp.va(i), pagetable.NewPage(f, pagetable.PTEUser|pagetable.PTENG|pagetable.PTEAF|pagetable.PTERdonly)); err != nil {
			t.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	var ops []uint64
	for len(ops) < 20000 {
		var va uint64
		switch k := r.IntN(100); {
		case k < 70: // a hot set that fits the L1
			va = sp.va(r.IntN(24)) + 8*uint64(r.IntN(FrameWords))
		case k < 90: // anywhere: past the L1
			va = sp.va(r.IntN(pages)) + 8*uint64(r.IntN(FrameWords))
		case k < 92: // read-only
			va = sp.va(pages+r.IntN(4)) + 8*uint64(r.IntN(FrameWords))
		case k < 94: // unmapped
			va = sp.va(pages+8+r.IntN(8)) + 8*uint64(r.IntN(FrameWords))
		case k < 97: // misaligned
			va = sp.va(r.IntN(24)) + 8*uint64(r.IntN(FrameWords)) + 2
		default: // beyond 48 bits
			va = 1<<50 | sp.va(r.IntN(24))
		}
		if r.IntN(3) == 0 {
			va |= OpStore
		}
		ops = append(ops, va)
	}
	var faults []string
	record := func(n int, f Fault) { faults = append(faults, fmt.Sprintf("%d:%v", n, f)) }
	err := m.Run(func(c *CPU) {
		sp.enter(c)
		for chunk := 0; chunk < len(ops); chunk += 5000 {
			part := ops[chunk : chunk+5000]
			val := uint64(chunk + 1)
			if batched {
				for done := 0; done < len(part); {
					n, f := c.Replay(part[done:], val)
					if f == FaultNone {
						break
					}
					record(chunk+done+n, f)
					done += n + 1 // the kernel would fix it and retry; skip it
				}
			} else {
				for i, op := range part {
					var f Fault
					if op&OpStore != 0 {
						f = c.Store(op&^OpStore, val)
					} else {
						_, f = c.Load(op)
					}
					if f != FaultNone {
						record(chunk+i, f)
					}
				}
			}
			// A frame freed behind cached entries between chunks: the
			// epoch check must send the next hits to the slow path.
			f := sp.frames[chunk/5000]
			if err := m.Phys().Free(f); err != nil {
				t.Error(err)
			}
			if g, err := m.Phys().AllocZeroed(); err != nil || g != f {
				t.Errorf("re-allocation: %d, %v (want frame %d)", g, err, f)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for _, f := range sp.frames {
		for w := 0; w < FrameWords; w++ {
			sum = sum*31 + m.Phys().Words(f)[w]
		}
	}
	return fmt.Sprintf("faults %d %v\ncounters %+v\nmemory %x", len(faults), faults[:min(len(faults), 5)], m.Counters(), sum)
}
