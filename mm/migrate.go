package mm

import (
	"fmt"
	"sync/atomic"

	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/sched"
)

// FixSwitchToDSB is the dsb(ish) in arm64's __switch_to()
// (arch/arm64/kernel/process.c): "Complete any pending TLB or cache
// maintenance on this CPU in case the thread migrates to a different
// CPU." A DSB completes only its own CPU's TLBIs, so a reclaiming task that
// issued its batch's TLBIs (arch_tlbbatch_add_pending) and then migrated
// would otherwise end the batch (arch_tlbbatch_flush, a bare dsb(ish)) on
// a CPU whose DSB waits for none of them. Reverted, a context switch does
// no DSB.
const FixSwitchToDSB Fix = "switch-to-dsb"

// A task that can migrate runs on a goroutine of its own (a sched.Task),
// hosted by one CPU at a time: NewMovableTask makes it, every CPU it may
// run on calls Host, and Migrate — or a migration asked for with
// MigrateAtPreemption, at the task's next PreemptionPoint — moves it.

// movable is the migration state of a task made by NewMovableTask.
type movable struct {
	st      *sched.Task
	pending atomic.Pointer[mmu.CPU] // MigrateAtPreemption's destination
}

// NewMovableTask is NewTask for a task that can migrate between CPUs: body
// runs as the task, first on cpu, then on each CPU it migrates to. Every
// CPU the task may run on must call Host until it reports the task
// finished. Call it before the machine runs.
func (k *Kernel) NewMovableTask(cpu *mmu.CPU, mm *MM, name string, body func(t *Task) error) *Task {
	t := k.NewTask(cpu, mm, name)
	t.mv = &movable{}
	t.mv.st = k.m.Scheduler().NewTask(cpu.Thread(), name, func(*sched.Task) error { return body(t) })
	return t
}

// Host runs t on cpu, from cpu's goroutine: it waits until t is to run on
// cpu (its first CPU, or one it migrates to) or has finished, and runs it
// until it migrates away (finished false) or its body returns (finished
// true, with the body's error if it returned here).
func (t *Task) Host(cpu *mmu.CPU) (finished bool, err error) {
	if t.mv == nil {
		return true, fmt.Errorf("mm: task %s cannot migrate (not made by NewMovableTask)", t.name)
	}
	return cpu.Thread().Host(t.mv.st)
}

// Migrate moves t, now, from its CPU to dst — as the scheduler does when
// the load balancer or an affinity change moves a running task: schedule()
// on the old CPU switches to another task, and its __switch_to() executes
// dsb(ish), which completes every TLBI that CPU issued (unless
// FixSwitchToDSB is reverted); dst's scheduler then switches to t
// (switch_mm to t's mm; a kernel thread keeps the mm dst had, lazily). Each
// CPU is charged a context switch. Call it on t's goroutine, holding no
// lock (a spinlock would have disabled preemption; the emulated locks are
// owned by CPUs).
func (t *Task) Migrate(dst *mmu.CPU) error {
	if err := t.canMigrate(dst); err != nil {
		return err
	}
	if dst == t.cpu {
		return nil
	}
	src := t.cpu
	t.traceKernel(fmt.Sprintf("schedule: %s leaves cpu%d for cpu%d; __switch_to", t.name, src.ID(), dst.ID()))
	t.switchTo()
	t.mv.st.MigrateTo(dst.Thread())
	t.k.mu.Lock() // the oracle reads which task runs where
	t.cpu, t.th = dst, dst.Thread()
	t.k.mu.Unlock()
	if t.mm != nil {
		dst.SetTTBR0(t.mm.asid, t.mm.tables.Root())
	}
	dst.Charge(t.k.cost.ContextSwitch)
	t.k.Stats.Migrations.Add(1)
	t.traceKernel(fmt.Sprintf("schedule: %s runs on cpu%d, migrated from cpu%d", t.name, dst.ID(), src.ID()))
	return nil
}

// switchTo is the part of a context switch on t's CPU that matters here:
// its cost and __switch_to()'s dsb(ish), which completes the CPU's
// outstanding TLB maintenance before anything else runs on it or the task
// runs elsewhere.
func (t *Task) switchTo() {
	if !t.k.Reverted(FixSwitchToDSB) {
		t.switchSync() // dsb(ish); x86-invlpgb: tlbsync()
	}
	t.cpu.Charge(t.k.cost.ContextSwitch)
}

// canMigrate says why t cannot move to dst, if it cannot.
func (t *Task) canMigrate(dst *mmu.CPU) error {
	switch {
	case t.mv == nil:
		return fmt.Errorf("mm: task %s cannot migrate (not made by NewMovableTask)", t.name)
	case dst == nil || dst.Machine() != t.k.m:
		return fmt.Errorf("mm: task %s: migration to a CPU of another machine", t.name)
	}
	return nil
}

// MigrateAtPreemption asks for t to move to dst at its next
// PreemptionPoint, as set_cpus_allowed_ptr() does for a running task (the
// stopper preempts it and moves it). Any task may ask it for t.
func (t *Task) MigrateAtPreemption(dst *mmu.CPU) error {
	if err := t.canMigrate(dst); err != nil {
		return err
	}
	t.mv.pending.Store(dst)
	return nil
}

// PreemptionPoint is a point where t may be preempted, holding no lock
// (CONFIG_PREEMPT: preemption enabled, need_resched set by the stopper):
// a migration asked for with MigrateAtPreemption happens here. Otherwise
// it does nothing, and costs nothing.
func (t *Task) PreemptionPoint() {
	if t.mv == nil {
		return
	}
	if dst := t.mv.pending.Swap(nil); dst != nil {
		t.Migrate(dst) // checked when asked for: it cannot fail
	}
}
