package mmu

import "sync/atomic"

// The interconnect's DVM node serves every CPU's broadcast TLBIs and the
// DVM Sync of every DSB that completes them, one Sync at a time: a Sync
// collects an acknowledgement from every CPU, so while one is in progress
// the next waits (Andrea Arcangeli measured TLBI latency growing almost
// linearly with the number of CPUs broadcasting at once). Each CPU
// measures the DVM node's time its own messages take — CostModel.DVMOp per
// TLBI, a round trip per Sync — over windows of its own cycles and
// publishes it; a DSB queues behind the other CPUs' share (CostModel gives
// the formula). Rates are per CPU and in the CPU's own time, so the
// estimate does not depend on how the scheduler interleaves CPUs whose
// clocks differ.

// dvmWindow is the length, in a CPU's own cycles, of the window over which it
// measures its broadcast traffic.
const dvmWindow = 1 << 16

// dvmLoadOne is a utilisation of 1 in the fixed-point loads CPUs publish.
const dvmLoadOne = 1 << 16

// dvmMaxLoad caps the utilisation the queueing formula sees (1 − U ≥
// 1/256): past saturation the emulated machine would wait forever. Waiting
// lowers the waiters' own rates, so a saturated machine settles below it.
const dvmMaxLoad = dvmLoadOne * 255 / 256

// dvmCost is the DVM service time of one broadcast operation of kind k.
func (c *CPU) dvmCost(k TLBIKind) uint64 {
	if k == ASIDE1IS || k == VMALLE1IS {
		return c.cost.DVMOpASID
	}
	return c.cost.DVMOp
}

// dvmTick publishes this CPU's broadcast traffic when its window is over:
// yieldSlow calls it at the first yield point at or past dvmWinEnd (see
// nextDue).
func (c *CPU) dvmTick() {
	span := c.ctr.Cycles - c.dvmWinEnd + dvmWindow
	load := int64(min(c.dvmBusy*dvmLoadOne/span, dvmLoadOne))
	// Smooth over windows (an exponential average with weight 1/2), so that
	// a burst does not throw every waiter's estimate back and forth.
	c.dvmPublish((c.dvmLoad + load + 1) / 2)
	c.dvmBusy = 0
	c.dvmWinEnd = c.ctr.Cycles + dvmWindow
}

// dvmIdle is the thread's hook for blocking: a CPU waiting for a lock
// broadcasts nothing, so its share of the load is 0 until its next window
// is measured (the busy time of the window it is in still counts then).
func (c *CPU) dvmIdle() { c.dvmPublish(0) }

// dvmPublish replaces this CPU's share of the machine's DVM load.
func (c *CPU) dvmPublish(load int64) {
	if d := load - c.dvmLoad; d != 0 {
		c.m.dvmLoad.Add(d)
		c.dvmLoad = load
	}
}

// dvmRoundTrip is a DVM Sync's round trip: every CPU acknowledges it.
func (c *CPU) dvmRoundTrip() uint64 {
	return c.cost.DVMRoundTrip + c.cost.DVMAckPerCPU*uint64(len(c.m.cpus))
}

// dvmQueueWait is the mean wait of a DSB's Sync queued behind the other
// CPUs' DVM traffic, an M/M/1 queue with the round trip as service time:
// RT·U/(1−U), U the others' utilisation of the DVM node.
func (c *CPU) dvmQueueWait(rt uint64) uint64 {
	u := uint64(max(c.m.dvmLoad.Load()-c.dvmLoad, 0))
	u = min(u, dvmMaxLoad)
	return rt * u / (dvmLoadOne - u)
}

// DVMLoad is the machine's published broadcast utilisation (1 = the DVM
// service busy all the time).
func (m *Machine) DVMLoad() float64 { return float64(m.dvmLoad.Load()) / dvmLoadOne }

// machineDVM is the machine-wide part of the load model.
type machineDVM struct {
	dvmLoad atomic.Int64 // Σ CPUs' published loads, fixed point (dvmLoadOne = 1)
}
