package mmu

import (
	"slices"
	"testing"

	"github.com/mmubench/mmubench/pagetable"
	"github.com/mmubench/mmubench/sched"
)

// keepTurn is the Chooser the hooks are documented for: the current thread
// keeps the turn and no coin comes up, so one goroutine can drive every
// CPU and every invalidation stays pending.
type keepTurn struct{}

func (keepTurn) Pick(_ uint64, cur int, eligible []int) int {
	if cur >= 0 {
		return cur
	}
	return eligible[0]
}
func (keepTurn) Chance(uint64, int, int, uint32, uint32) bool { return false }

func hookMachine(t *testing.T) (*Machine, *space) {
	t.Helper()
	m := newMachine(t, 2, sched.Det, 1, func(c *Config) {
		c.Sched = sched.Config{Mode: sched.Det, Chooser: keepTurn{}}
	})
	sp := mapPages(t, m, 3, testBase, 2, userRW)
	sp.enter(m.CPU(0))
	sp.enter(m.CPU(1))
	return m, sp
}

func TestHookPendingAndDSBComplete(t *testing.T) {
	m, sp := hookMachine(t)
	c0, c1 := m.CPU(0), m.CPU(1)
	if _, f := c1.Load(sp.va(0)); f != FaultNone {
		t.Fatal(f)
	}
	c0.TLBIVALE1IS(sp.asid, sp.va(0))
	want := []Invalidation{{Kind: VALE1IS, ASID: sp.asid, VA: sp.va(0), Pages: 1, Issuer: 0}}
	for _, c := range []*CPU{c0, c1} {
		if got := c.Pending(nil); !slices.Equal(got, want) || c.NumPending() != 1 {
			t.Errorf("cpu%d pending %v, want %v", c.ID(), got, want)
		}
	}
	if c0.DSBComplete() {
		t.Error("DSB complete before cpu1 applied the TLBI")
	}
	if _, hit := c1.Probe(sp.va(0)); !hit {
		t.Error("cpu1 lost its entry before the TLBI was applied")
	}
	if c1.ApplyPending(1) || !c1.ApplyPending(0) || c1.NumPending() != 0 {
		t.Error("ApplyPending")
	}
	if _, hit := c1.Probe(sp.va(0)); hit {
		t.Error("the applied TLBI left cpu1's entry")
	}
	if !c0.DSBComplete() {
		t.Error("DSB not complete once every other target applied the TLBI (its own it applies itself)")
	}
	c0.DSBISH() // must not block: it applies its own and returns
	if c0.NumPending() != 0 || !c0.DSBComplete() {
		t.Error("DSB left its own invalidation pending")
	}
}

func TestHookPrefetch(t *testing.T) {
	m, sp := hookMachine(t)
	c := m.CPU(0)
	slot, _ := sp.tables.SlotOf(sp.va(1))
	slot.Store(slot.Load().MkOld())
	if !c.Prefetch(sp.va(1)) || c.Prefetch(sp.va(1)) {
		t.Fatal("Prefetch should fill once, then find the entry cached")
	}
	if !slot.Load().Young() {
		t.Error("the speculative walk did not set AF")
	}
	if hit, f := hits(c, sp.va(1)); !hit || f != FaultNone {
		t.Errorf("load after Prefetch: hit %v fault %v", hit, f)
	}
	if c.Prefetch(sp.va(0) + 64<<pagetable.PageShift) {
		t.Error("Prefetch of an unmapped page filled")
	}
	var l1 []Cached
	for _, x := range c.AppendCached(nil) {
		if x.Where == 1 {
			l1 = append(l1, x)
		}
	}
	if len(l1) != 1 || l1[0].VA() != sp.va(1) || l1[0].PFN != sp.frames[1] || l1[0].Writable {
		t.Errorf("L1 holds %+v, want the clean entry for page 1", l1)
	}
}

func TestHookSaveRestore(t *testing.T) {
	m, sp := hookMachine(t)
	c0, c1 := m.CPU(0), m.CPU(1)
	for i := range 2 {
		if _, f := c1.Load(sp.va(i)); f != FaultNone {
			t.Fatal(f)
		}
	}
	c0.TLBIVAE1IS(sp.asid, sp.va(1))
	var s0, s1 Snapshot
	c0.Save(&s0)
	c1.Save(&s1)
	before, pend := c1.AppendCached(nil), c1.Pending(nil)
	c1.ApplyPending(0)
	c1.TLBIVMALLE1()
	c1.ApplyPending(0)
	if len(c1.AppendCached(nil)) != 0 {
		t.Fatal("VMALLE1 left entries")
	}
	c0.Restore(&s0)
	c1.Restore(&s1)
	if got := c1.AppendCached(nil); !slices.Equal(got, before) {
		t.Errorf("restored TLB %v, want %v", got, before)
	}
	if got := c1.Pending(nil); !slices.Equal(got, pend) {
		t.Errorf("restored pending %v, want %v", got, pend)
	}
	if c0.DSBComplete() {
		t.Error("restored issuer's outstanding count lost")
	}
	if hit, _ := hits(c1, sp.va(0)); !hit {
		t.Error("restored entry does not hit")
	}
	c1.ApplyPending(0)
	c0.DSBISH()
	if !c0.DSBComplete() {
		t.Error("DSB after restore")
	}
}
