package mmu

import "sync/atomic"

// The interconnect's DVM service is shared by every CPU's broadcast TLBIs.
// Each CPU measures its own broadcast traffic over windows of its own
// cycles and publishes it; a DSB waiting on broadcast TLBIs queues behind
// the machine's total (CostModel gives the formula). Rates are per CPU and
// in the CPU's own time, so the estimate does not depend on how the
// scheduler interleaves CPUs whose clocks differ.

// dvmWindow is the length, in a CPU's own cycles, of the window over which it
// measures its broadcast traffic.
const dvmWindow = 1 << 16

// dvmLoadOne is a utilisation of 1 in the fixed-point loads CPUs publish.
const dvmLoadOne = 1 << 16

// dvmMaxLoad caps the utilisation the queueing formula sees (1 − U ≥ 1/32):
// past saturation the emulated machine would wait forever.
const dvmMaxLoad = dvmLoadOne * 31 / 32

// dvmCost is the DVM service time of one broadcast operation of kind k.
func (c *CPU) dvmCost(k TLBIKind) uint64 {
	if k == ASIDE1IS || k == VMALLE1IS {
		return c.cost.DVMOpASID
	}
	return c.cost.DVMOp
}

// dvmTick publishes this CPU's broadcast traffic once its window is over;
// it runs at yield points (see nextDue).
func (c *CPU) dvmTick() {
	if c.ctr.Cycles < c.dvmWinEnd {
		return
	}
	span := c.ctr.Cycles - c.dvmWinEnd + dvmWindow
	load := min(c.dvmBusy*dvmLoadOne/span, dvmLoadOne)
	c.dvmPublish(int64(load))
	c.dvmBusy = 0
	c.dvmWinEnd = c.ctr.Cycles + dvmWindow
}

// dvmPublish replaces this CPU's share of the machine's DVM load.
func (c *CPU) dvmPublish(load int64) {
	if d := load - c.dvmLoad; d != 0 {
		c.m.dvmLoad.Add(d)
		c.dvmLoad = load
	}
}

// dvmQueueWait is the mean wait of a broadcast TLBI queued behind the
// machine's broadcast traffic: DVMOp·U/(1−U).
func (c *CPU) dvmQueueWait() uint64 {
	u := uint64(max(c.m.dvmLoad.Load(), 0))
	u = min(u, dvmMaxLoad)
	return c.cost.DVMOp * u / (dvmLoadOne - u)
}

// DVMLoad is the machine's published broadcast utilisation (1 = the DVM
// service busy all the time).
func (m *Machine) DVMLoad() float64 { return float64(m.dvmLoad.Load()) / dvmLoadOne }

// machineDVM is the machine-wide part of the load model.
type machineDVM struct {
	dvmLoad atomic.Int64 // Σ CPUs' published loads, fixed point (dvmLoadOne = 1)
}
