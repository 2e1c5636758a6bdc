package mmu

import (
	"testing"

	"github.com/mmubench/mmubench/sched"
)

// A verification while a Free is changing a generation (the count odd)
// must not enable the comparison-free hit: the generation it compared may
// be the old one.
func TestL1VerifyDuringFree(t *testing.T) {
	m := newMachine(t, 1, sched.Det, 1, nil)
	c := m.CPU(0)
	frees := &m.Phys().frees
	frees.Add(1) // a Free between its two increments
	c.l1Verify()
	if c.l1Epoch != l1EpochNone {
		t.Fatalf("verified at odd count %d: epoch %d", frees.Load(), c.l1Epoch)
	}
	frees.Add(1)
	c.l1Verify()
	if c.l1Epoch != frees.Load() {
		t.Fatalf("verified at count %d: epoch %d", frees.Load(), c.l1Epoch)
	}
	if _, err := m.Phys().Alloc(); err != nil {
		t.Fatal(err)
	}
	before := frees.Load()
	f, _ := m.Phys().Alloc()
	if err := m.Phys().Free(f); err != nil {
		t.Fatal(err)
	}
	if got := frees.Load(); got != before+2 || got&1 != 0 {
		t.Fatalf("a Free moved the count from %d to %d, want +2", before, got)
	}
}
