package mmu

import (
	"fmt"
	"math/bits"

	"github.com/mmubench/mmubench/pagetable"
)

// CPUMask is a set of CPUs (a cpumask: Linux's mm_cpumask, the x86 tlbbatch
// mask), one bit per CPU up to MaxCPUs.
type CPUMask [CPUMaskWords]uint64

// CPUMaskWords is the length of a CPUMask.
const CPUMaskWords = (MaxCPUs + 63) / 64

// Set adds CPU i.
func (m *CPUMask) Set(i int) { m[i>>6] |= 1 << (i & 63) }

// Has reports whether CPU i is in the set.
func (m *CPUMask) Has(i int) bool { return m[i>>6]&(1<<(i&63)) != 0 }

// Or adds every CPU of o.
func (m *CPUMask) Or(o *CPUMask) {
	for i := range m {
		m[i] |= o[i]
	}
}

// Count is the number of CPUs in the set.
func (m *CPUMask) Count() int {
	n := 0
	for _, w := range m {
		n += bits.OnesCount64(w)
	}
	return n
}

// FlushTLBMulti is x86's synchronous TLB shootdown (flush_tlb_multi): each
// CPU of mask other than this one is sent an IPI whose handler
// (flush_tlb_func) runs the local flush kind — INVLPG per page for VAE1,
// RVALE1 (pages from va), a PCID flush for ASIDE1, everything for VMALLE1 —
// on its own TLB and acknowledges; this CPU flushes itself if it is in
// mask, then waits until every target has acknowledged. When it returns the
// flush is complete everywhere: nothing is left in flight. A broadcast kind
// is taken as its local form. Costs: CostModel.IPISend per target and one
// IPIRoundTrip on this CPU, IPIHandler on each target when it runs the
// handler; the wait counts as a DSB (Counters.DSBs, DSBWaitCycles).
func (c *CPU) FlushTLBMulti(mask *CPUMask, kind TLBIKind, asid uint16, va, pages uint64) {
	if kind.Broadcast() {
		kind += VALE1 - VALE1IS
	}
	c.yieldVisible()
	c.ctr.TLBI[kind]++
	inv := inval{kind: kind, asid: asid, va: va &^ (pagetable.PageSize - 1), pages: min(pages, MaxRangePages), issuer: c, marked: c.markFlush, ipi: true}
	c.traceInval(EvTLBI, inv)
	targets := c.targets[:0]
	self := false
	for _, t := range c.m.cpus {
		switch {
		case !mask.Has(t.id) || t.offline.Load():
		case t == c:
			self = true
		default:
			targets = append(targets, t)
		}
	}
	c.targets = targets
	wait := c.cost.DSB
	if self {
		wait += c.cost.LocalTLBI
		c.countApplied(c.invalidate(inv))
	}
	if n := uint64(len(targets)); n > 0 {
		c.ipis += n
		wait += c.cost.IPISend*n + c.cost.IPIRoundTrip
		c.outstanding.Add(int64(n))
		for _, t := range targets {
			t.post(inv)
		}
	}
	c.ctr.DSBs++
	c.ctr.DSBWaitCycles += wait
	c.ctr.Cycles += wait
	if c.outstanding.Load() != 0 {
		c.inDSB.Store(true) // a held invalidation is due now (deliverHold)
		c.thread.BlockCharged(c.dsbWhat, c.complete)
		c.inDSB.Store(false)
	}
	if c.m.tracer != nil {
		c.Trace(EvDSBDone, 0, 0, fmt.Sprintf("flush_tlb_multi: %d CPUs acknowledged", len(targets)))
	}
}

// dropPagesWalks removes the entries of pages [va, va+pages*4K) of asid at
// every level, walk cache included: what INVLPG does per page.
func (c *CPU) dropPagesWalks(asid uint16, va, pages uint64) int {
	n := 0
	for i := uint64(0); i < pages; i++ {
		n += c.dropVA(asid, va+i<<pagetable.PageShift, true)
	}
	return n
}

// SyncPending reports whether this CPU has issued broadcast invalidations
// that no completion barrier has waited for yet (x86's need_tlbsync).
func (c *CPU) SyncPending() bool { return c.sinceDSBBcast > 0 || c.outstanding.Load() != 0 }

// IPIs is the number of shootdown IPIs the machine's CPUs sent (x86-ipi);
// call it when the CPUs are not running. (Not a Counters field: Counters
// are every flavour's, and their layout is part of the golden tests.)
func (m *Machine) IPIs() uint64 {
	var n uint64
	for _, c := range m.cpus {
		n += c.ipis
	}
	return n
}
