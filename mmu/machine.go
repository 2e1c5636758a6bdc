package mmu

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	gsync "gvisor.dev/gvisor/pkg/sync"

	"github.com/mmubench/mmubench/sched"
)

// Observer receives the hardware events the kernel's oracle wants to see.
// Calls come from the accessing CPU's goroutine, on the slow path only.
type Observer interface {
	// StaleFrame: an access through a TLB entry reached frame pfn, which was
	// freed or reassigned after the entry was filled (or was free when filled).
	StaleFrame(c *CPU, va, pfn uint64, write bool)
	// StaleTable: a walk for va began at the level-level table in frame
	// pfn, reached through a walk-cache entry filled before that frame was
	// freed or reassigned.
	StaleTable(c *CPU, va, pfn uint64, level int)
}

// Machine is a set of CPUs sharing physical memory.
type Machine struct {
	cfg    Config
	phys   *Phys
	sched  *sched.Scheduler
	cpus   []*CPU
	obs    Observer
	tracer Tracer
	fault  archFault // the first instruction issued that this flavour lacks
	machineDVM
}

// NewMachine builds a machine and its scheduler from cfg.
func NewMachine(cfg Config) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sc := cfg.Sched
	sc.Threads = cfg.CPUs
	s, err := sched.New(sc)
	if err != nil {
		return nil, err
	}
	phys, err := NewPhys(cfg.Frames)
	if err != nil {
		return nil, err
	}
	m := &Machine{cfg: cfg, phys: phys, sched: s, tracer: cfg.Tracer}
	for i := 0; i < cfg.CPUs; i++ {
		c, err := newCPU(m, i)
		if err != nil {
			return nil, err
		}
		m.cpus = append(m.cpus, c)
	}
	return m, nil
}

// Config returns the machine's configuration.
func (m *Machine) Config() Config { return m.cfg }

// Phys returns the physical memory.
func (m *Machine) Phys() *Phys { return m.phys }

// Scheduler returns the scheduler the CPUs take turns under.
func (m *Machine) Scheduler() *sched.Scheduler { return m.sched }

// NumCPUs is the number of CPUs.
func (m *Machine) NumCPUs() int { return len(m.cpus) }

// CPU returns CPU i.
func (m *Machine) CPU(i int) *CPU { return m.cpus[i] }

// SetObserver installs the oracle's observer; set it before Run.
func (m *Machine) SetObserver(o Observer) { m.obs = o }

// Run runs body on every CPU and returns when all have finished (see
// sched.Scheduler.Run for the errors).
func (m *Machine) Run(body func(c *CPU)) error {
	err := m.sched.Run(func(t *sched.Thread) {
		c := m.cpus[t.ID()]
		body(c)
		c.dvmPublish(0) // a finished CPU broadcasts nothing
		c.goOffline()
	})
	if err == nil {
		err = m.fault.err
	}
	return err
}

// Counters sums every CPU's counters; call it when the CPUs are not running.
func (m *Machine) Counters() Counters {
	var sum Counters
	for _, c := range m.cpus {
		sum.Add(&c.ctr)
	}
	return sum
}

// CPU is one emulated core. Its methods must be called from its own
// goroutine (inside Machine.Run), except Counters after the run.
type CPU struct {
	_ [64]byte // keep the hot fields off other CPUs' cache lines

	// What an L1 hit reads, in one cache line, and then what it writes
	// (and the yield point reads) in the next: nextDue, inboxN and the
	// first counters.
	l1      *tlb
	data    []uint64
	tagBase uint64         // leafTag(asid, 0): leafTag(asid, va) is tagBase | va>>12 for a va below 2^48
	frees   *atomic.Uint64 // Phys.frees
	l1Epoch uint64         // Phys.frees when the L1 was last verified (freeepoch.go)
	nextDue uint64         // min(deadlines of pending, baseDue()), in own cycles
	inboxN  atomic.Int32   // len(inbox), read on the hot path
	ctr     Counters

	gens       []uint32
	l1VerifyAt uint64 // Accesses from which l1MaybeVerify may verify again

	id      int
	det     bool
	m       *Machine
	thread  *sched.Thread
	l2      *tlb // nil = off
	wc      *tlb // nil = off
	cost    CostModel
	asid    uint16
	root    uint64 // TTBR0: root table frame
	fault   Fault  // the fault permSlow decided on
	dsbWhat string // what a blocked DSB waits on, for deadlock reports

	inboxMu gsync.Mutex
	inbox   []inval

	pending []pendingInval // parallel mode and DeliverHold: taken from the inbox, waiting for their moment
	inDSB   atomic.Bool    // blocked in a DSB waiting for its invalidations
	visible bool           // the coming yield point is a visible one (yieldVisible)
	relaxAt uint64         // when to next let other goroutines run; ^0 if never
	rng     *rand.Rand     // parallel-mode latency draws

	ipis          uint64       // shootdown IPIs sent (x86-ipi: FlushTLBMulti)
	outstanding   atomic.Int64 // invalidations this CPU issued that some target has not applied
	offline       atomic.Bool  // finished, TLBs empty: broadcasts skip it
	targets       []*CPU       // scratch: a broadcast's online targets
	sinceDSBBcast uint64       // broadcast TLBIs issued since the last DSB ISH
	sinceDSBCost  uint64       // their DVM service time (CostModel.DVMOp, DVMOpASID)
	sinceDSBLocal uint64       // local TLBIs issued since the last DSB

	// Flush-caused refills (flushrefill.go).
	markFlush   bool                    // TLBIs issued now are flush_tlb_batched_pending's
	flushed     map[uint64]flushedEntry // leaf tags a marked flush removed
	fills       uint64                  // translations filled by walks
	fillHorizon uint64                  // entries of the largest TLB
	removedBuf  []tlbEntry              // scratch: entries an invalidation removed

	// The broadcast traffic model (dvmload.go).
	dvmBusy   uint64 // DVM service time of the broadcasts issued this window
	dvmWinEnd uint64 // when the window ends, in own cycles
	dvmLoad   int64  // the load last published into Machine.dvmLoad
	_         [64]byte
}

func newCPU(m *Machine, id int) (*CPU, error) {
	cfg := &m.cfg
	seed := cfg.Sched.Seed*0x9e3779b97f4a7c15 + uint64(id)
	c := &CPU{
		id:        id,
		det:       cfg.Sched.Mode == sched.Det,
		m:         m,
		thread:    m.sched.Thread(id),
		data:      m.phys.data,
		gens:      m.phys.gens,
		frees:     &m.phys.frees,
		l1Epoch:   l1EpochNone,
		cost:      cfg.Cost,
		relaxAt:   ^uint64(0),
		tagBase:   leafTag(0, 0),
		dvmWinEnd: dvmWindow,
		rng:       rand.New(rand.NewPCG(seed, 1)),
	}
	var err error
	if c.l1, err = newTLB(cfg.L1, cfg.Replacement, seed^1); err != nil {
		return nil, fmt.Errorf("L1 TLB: %w", err)
	}
	if cfg.L2.Entries != 0 {
		if c.l2, err = newTLB(cfg.L2, cfg.Replacement, seed^2); err != nil {
			return nil, fmt.Errorf("L2 TLB: %w", err)
		}
	}
	if cfg.WalkCache.Entries != 0 {
		if c.wc, err = newTLB(cfg.WalkCache, cfg.Replacement, seed^3); err != nil {
			return nil, fmt.Errorf("walk cache: %w", err)
		}
	}
	c.fillHorizon = uint64(max(cfg.L1.Entries, cfg.L2.Entries))
	if m.sched.Oversubscribed() {
		c.relaxAt = relaxCycles
	}
	c.nextDue = c.baseDue()
	c.thread.SetClock(&c.ctr.Cycles)
	switch cfg.Arch {
	case ArchX86INVLPGB:
		c.dsbWhat = fmt.Sprintf("TLBSYNC (cpu%d's INVLPGBs not yet applied everywhere)", id)
	case ArchX86IPI:
		c.dsbWhat = fmt.Sprintf("flush_tlb_multi (cpu%d's shootdown IPIs not yet acknowledged)", id)
	default:
		c.dsbWhat = fmt.Sprintf("DSB ISH (cpu%d's TLBIs not yet applied everywhere)", id)
	}
	c.thread.SetService(c.applyAll)
	c.thread.SetOnBlock(c.dvmIdle)
	return c, nil
}

// ID is the CPU's index.
func (c *CPU) ID() int { return c.id }

// Machine returns the machine the CPU belongs to.
func (c *CPU) Machine() *Machine { return c.m }

// Thread returns the CPU's scheduler thread (for the kernel's locks).
func (c *CPU) Thread() *sched.Thread { return c.thread }

// Counters returns the CPU's counters.
func (c *CPU) Counters() *Counters { return &c.ctr }

// SetTTBR0 switches the CPU to the address space whose root table is root,
// tagged with asid (an msr ttbr0_el1 with the ASID field).
func (c *CPU) SetTTBR0(asid uint16, root uint64) {
	c.asid, c.root = asid, root
	c.tagBase = leafTag(asid, 0)
}

// ASID is the current ASID.
func (c *CPU) ASID() uint16 { return c.asid }

// Charge adds cycles the kernel spends (fault entry, syscall entry).
func (c *CPU) Charge(cycles uint64) { c.ctr.Cycles += cycles }

// Yield is a yield point outside the access path (the kernel calls it
// before each descriptor update, a program in a spin loop on each turn):
// the scheduler may switch here, and pending invalidations may be applied.
// It costs a cycle: a CPU that only spins still moves its clock, so that
// invalidations due to it after a latency fall due and no DSB waits on it
// forever.
func (c *CPU) Yield() {
	c.ctr.Cycles++
	c.yieldVisible()
}

// yieldVisible is a yield point before something other CPUs can observe (a
// descriptor update, a TLBI, a DSB): where a systematic explorer of det
// schedules considers preempting (sched.Thread.YieldVisible).
func (c *CPU) yieldVisible() {
	if c.det {
		c.visible = true
	}
	c.yieldPoint()
}

// yieldPoint is where the delivery model applies invalidations to this CPU.
// It is on every access, so it is one inlined test: something in the inbox,
// or a parallel-mode deadline (a pending invalidation falling due, or time
// to let other goroutines run) reached. In det mode every yield point is
// taken, which a deadline of 0 (baseDue) says without a test of its own.
func (c *CPU) yieldPoint() {
	if c.inboxN.Load() != 0 || c.ctr.Cycles >= c.nextDue { // det mode: nextDue is 0
		c.yieldSlow()
	}
}

func (c *CPU) yieldSlow() {
	if c.ctr.Cycles >= c.dvmWinEnd { // tested here: det mode comes here on every access
		c.dvmTick()
	}
	if c.det {
		if c.visible {
			c.visible = false
			c.thread.YieldVisible()
		} else {
			c.thread.Yield()
		}
		if c.inboxN.Load() != 0 || len(c.pending) != 0 {
			c.deliverDet()
		}
		return
	}
	if c.ctr.Cycles >= c.relaxAt {
		c.thread.Relax()
		c.relaxAt = c.ctr.Cycles + relaxCycles
	}
	c.deliverParallel()
}

// baseDue is the next parallel-mode deadline that does not come from a
// pending invalidation: letting other goroutines run, or publishing the
// CPU's broadcast traffic. In det mode it is 0: every yield point is taken.
func (c *CPU) baseDue() uint64 {
	if c.det {
		return 0
	}
	return min(c.relaxAt, c.dvmWinEnd)
}

// relaxCycles is how often, in its own cycles, a parallel-mode CPU lets
// other goroutines run when there are more CPUs than host cores (see
// sched.Thread.Relax).
const relaxCycles = 2048
