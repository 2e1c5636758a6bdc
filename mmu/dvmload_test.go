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

// A CPU that waits for a lock broadcasts nothing meanwhile: its share of the
// machine's DVM load drops to 0 when it blocks, instead of staying at what
// it last measured (which made every other DSB queue behind phantom
// traffic for as long as it waited).
func TestBlockedCPUBroadcastsNothing(t *testing.T) {
	m := newMachine(t, 3, sched.Det, 1, func(c *Config) { c.Sched.Quantum = 1000 })
	var mu sched.Mutex
	var busy, whileBlocked float64
	held, measured := false, false
	err := m.Run(func(c *CPU) {
		switch c.ID() {
		case 0: // the observer
			for c.ctr.Cycles < 4*dvmWindow {
				c.Charge(100)
				c.Yield()
			}
			whileBlocked = m.DVMLoad()
			measured = true
		case 1: // broadcasts for three windows, then waits for the lock
			for !held {
				c.Yield()
			}
			for c.ctr.Cycles < 3*dvmWindow {
				c.TLBIVALE1IS(2, testBase)
				c.DSBISH()
				c.Charge(2000)
				c.Yield()
			}
			busy = m.DVMLoad()
			mu.Lock(c.Thread())
			mu.Unlock(c.Thread())
		case 2: // holds the lock until the observer has measured
			mu.Lock(c.Thread())
			held = true
			for !measured {
				c.Charge(100)
				c.Yield()
			}
			mu.Unlock(c.Thread())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if busy == 0 {
		t.Fatal("the broadcaster published no load before it blocked")
	}
	if whileBlocked != 0 {
		t.Fatalf("DVM load %.3f while the only broadcaster waits for a lock (it was %.3f)", whileBlocked, busy)
	}
}
