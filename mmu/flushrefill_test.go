package mmu

import (
	"testing"

	"github.com/mmubench/mmubench/pagetable"
	"github.com/mmubench/mmubench/sched"
)

// A walk that refills a good translation a marked flush removed is a
// flush refill; an unmarked flush's, or one the flush removed after its
// PTE changed, is not.
func TestFlushRefills(t *testing.T) {
	for _, tc := range []struct {
		name    string
		marked  bool
		remap   bool // the PTE of page 0 changes before the flush
		refills uint64
	}{
		{"marked", true, false, 8},
		{"unmarked", false, false, 0},
		{"marked-stale", true, true, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMachine(t, 2, sched.Det, 1, nil)
			sp := mapPages(t, m, 1, testBase, 9, userRW)
			var cached, flushed flag
			var got, lost uint64
			err := m.Run(func(c *CPU) {
				sp.enter(c)
				switch c.ID() {
				case 0:
					for i := 0; i < 8; i++ {
						if _, f := c.Load(sp.va(i)); f != FaultNone {
							t.Errorf("load %d: %v", i, f)
						}
					}
					cached.Set()
					flushed.Wait(c, "flushed")
					for i := 0; i < 8; i++ {
						c.Load(sp.va(i))
					}
					got, lost = c.ctr.FlushRefills, c.ctr.FlushLostCycles
				case 1:
					cached.Wait(c, "cached")
					if tc.remap { // page 0 now maps the ninth frame
						sp.tables.Unmap(sp.va(0))
						sp.tables.Map(sp.va(0), pagetable.NewPage(sp.frames[8], userRW))
					}
					c.MarkPendingFlush(tc.marked)
					c.TLBIASIDE1IS(sp.asid)
					c.DSBISH()
					c.MarkPendingFlush(false)
					flushed.Set()
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.refills {
				t.Fatalf("%d flush refills, want %d", got, tc.refills)
			}
			if (got == 0) != (lost == 0) {
				t.Fatalf("%d refills cost %d cycles", got, lost)
			}
		})
	}
}
