package mmu

import (
	"testing"

	"github.com/mmubench/mmubench/sched"
)

// dsbWait runs one TLBI of kind on CPU 0 of a machine with cpus CPUs and
// returns what the DSB after it waited.
func dsbWait(t *testing.T, cpus int, kind TLBIKind) uint64 {
	t.Helper()
	m := newMachine(t, cpus, sched.Det, 1, nil)
	var wait uint64
	if err := m.Run(func(c *CPU) {
		if c.ID() != 0 {
			return
		}
		c.tlbi(kind, 1, testBase, 1)
		before := c.ctr.DSBWaitCycles
		c.DSBISH()
		wait = c.ctr.DSBWaitCycles - before
	}); err != nil {
		t.Fatal(err)
	}
	return wait
}

// The DSB after broadcast TLBIs costs a round trip acknowledged by every CPU
// plus the operation; after a local TLBI only the local work.
func TestDSBCost(t *testing.T) {
	c := DefaultCost()
	for _, tc := range []struct {
		name string
		cpus int
		kind TLBIKind
		want uint64
	}{
		{"local", 8, VALE1, c.DSB + c.LocalTLBI},
		{"va-1cpu", 1, VALE1IS, c.DSB + c.DVMRoundTrip + c.DVMAckPerCPU + c.DVMOp},
		{"va-8cpus", 8, VALE1IS, c.DSB + c.DVMRoundTrip + 8*c.DVMAckPerCPU + c.DVMOp},
		{"va-96cpus", 96, VALE1IS, c.DSB + c.DVMRoundTrip + 96*c.DVMAckPerCPU + c.DVMOp},
		{"asid-96cpus", 96, ASIDE1IS, c.DSB + c.DVMRoundTrip + 96*c.DVMAckPerCPU + c.DVMOpASID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dsbWait(t, tc.cpus, tc.kind); got != tc.want {
				t.Fatalf("DSB waited %d cycles, want %d", got, tc.want)
			}
		})
	}
}

// A DSB queues behind the broadcast traffic of the whole machine: the more
// CPUs broadcast, the longer it waits (and it is deterministic in clocked
// det mode).
func TestDSBQueuesBehindBroadcasters(t *testing.T) {
	run := func(broadcasters int) (wait uint64, load float64) {
		m := newMachine(t, 9, sched.Det, 1, func(c *Config) { c.Sched.Quantum = 1000 })
		err := m.Run(func(c *CPU) {
			switch {
			case c.ID() == 0:
				for c.ctr.Cycles < 4*dvmWindow { // let the others' traffic be published
					c.Charge(100)
					c.Yield()
				}
				load = m.DVMLoad()
				c.TLBIVALE1IS(1, testBase)
				before := c.ctr.DSBWaitCycles
				c.DSBISH()
				wait = c.ctr.DSBWaitCycles - before
			case c.ID() <= broadcasters:
				for c.ctr.Cycles < 5*dvmWindow {
					c.TLBIVALE1IS(2, testBase)
					c.DSBISH()
					c.Charge(2000)
					c.Yield()
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		return wait, load
	}
	base, load0 := run(0)
	if load0 != 0 {
		t.Fatalf("load %v with nobody broadcasting", load0)
	}
	prev := base
	for _, k := range []int{1, 2, 4, 8} {
		w, load := run(k)
		t.Logf("%d broadcasting CPUs: load %.3f, DSB waits %d cycles (%d alone)", k, load, w, base)
		if w <= prev {
			t.Fatalf("%d broadcasters: DSB waited %d, not more than with fewer (%d)", k, w, prev)
		}
		if again, _ := run(k); again != w {
			t.Fatalf("not deterministic: %d then %d", w, again)
		}
		prev = w
	}
}
