package mmu

import (
	"math/rand/v2"
	"testing"

	"github.com/mmubench/mmubench/pagetable"
	"github.com/mmubench/mmubench/sched"
)

// TestWalkMatchesPagetable holds the access path's walk (walkFrom) to
// pagetable.WalkFrom over memory full of every kind of descriptor: empty,
// invalid with stray bits, tables (to frames in and beyond memory), pages,
// blocks at every level (reserved at levels 0 and 3), random words.
func TestWalkMatchesPagetable(t *testing.T) {
	const frames = 48
	m := newMachine(t, 1, sched.Det, 1, func(c *Config) { c.Frames = frames })
	c := m.CPU(0)
	r := rand.New(rand.NewPCG(12, 2))
	pfn := func() uint64 { return r.Uint64N(frames + 8) } // some beyond memory
	attrs := func() uint64 { return r.Uint64() &^ uint64(pagetable.AddrMask|3) }
	for f := uint64(0); f < frames; f++ {
		w := m.Phys().Words(f)
		for i := range w {
			var d uint64
			switch r.IntN(8) {
			case 0:
			case 1:
				d = r.Uint64() &^ 1 // invalid, other bits set
			case 2, 3:
				d = pfn()<<pagetable.PageShift | 3 // table (or page at level 3)
			case 4:
				d = pfn()<<pagetable.PageShift | 3 | attrs()
			case 5:
				d = r.Uint64()&uint64(pagetable.AddrMask) | 1 | attrs() // block (reserved at 0 and 3)
			default:
				d = r.Uint64()
			}
			w[i] = d
		}
	}
	var ok [pagetable.Levels]int
	missing, reads := 0, [pagetable.Levels + 1]int{}
	for n := 0; n < 200000; n++ {
		va := r.Uint64() & (pagetable.MaxVA - 1)
		if n%7 == 0 {
			va = r.Uint64() // at or beyond 2^48 too
		}
		table, level := r.Uint64N(frames+2), r.IntN(6)-1 // levels -1..4 too
		want := pagetable.WalkFrom(m.Phys(), table, level, va)
		var got tableWalk
		c.walkFrom(&got, table, level, va)
		if got.pte != want.PTE || got.level != want.Level || got.reads != want.Reads || got.ok != want.OK ||
			got.desc != want.Slot.Addr || got.tables != want.Tables {
			t.Fatalf("walk of %#x from frame %d level %d:\n got %+v\nwant %+v", va, table, level, got, want)
		}
		if got.ok {
			ok[got.level]++
		}
		if got.reads > 0 && got.desc == 0 {
			missing++
		}
		reads[got.reads]++
	}
	// Every outcome must have been compared: leaves at levels 1-3, walks
	// through a missing table frame, walks of every length.
	if ok[1] == 0 || ok[2] == 0 || ok[3] == 0 || missing == 0 || reads[4] == 0 {
		t.Fatalf("degenerate memory: leaves by level %v, %d missing frames, walks by reads %v", ok, missing, reads)
	}
	t.Logf("leaves by level %v, %d missing frames, walks by reads %v", ok, missing, reads)
}
