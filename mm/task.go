package mm

import (
	"fmt"

	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/pagetable"
	"github.com/mmubench/mmubench/sched"
)

// TLBFlushUnmapBatch is a task's batch of deferred reclaim flushes (struct
// tlbflush_unmap_batch, current->tlb_ubc). On arm64 the architecture part is
// just the TLBIs already issued.
type TLBFlushUnmapBatch struct {
	FlushRequired bool // TLBIs were issued and not yet completed by a DSB
	Writable      bool // a dirty (so possibly writable) PTE was among them
	// Pages is what the batch covers, for policies that track it per mm
	// (the range policy); the policy empties it when the batch completes.
	Pages []PendingPage
	// CPUMask is x86-ipi's arch batch: the CPUs arch_tlbbatch_flush must
	// shoot down (the union of the mm_cpumasks of what was unmapped).
	CPUMask mmu.CPUMask
}

// PendingPage is one page a reclaim batch unmapped with a deferred flush.
type PendingPage struct {
	MM *MM
	VA uint64
}

// Task is a thread running on one CPU: a user thread of an mm, or a kernel
// thread (kswapd) with a nil mm. A task made by NewMovableTask can migrate
// to another CPU (migrate.go); cpu and th change then, on the task's own
// goroutine and under Kernel.mu.
type Task struct {
	k    *Kernel
	cpu  *mmu.CPU
	th   *sched.Thread
	mm   *MM
	name string
	UBC  TLBFlushUnmapBatch

	call  *sysCall   // the checked system call in progress (syscall.go)
	calls []*sysCall // the last few that returned, oldest first

	locked   uint64 // the first VA of the table whose PTL flush_tlb_batched_pending runs under
	lockedOK bool

	mv *movable // NewMovableTask's: the task can migrate (migrate.go); nil otherwise
}

// LockedTable is the VA range [lo, hi) of the level-3 table whose PTL t
// holds while its flush_tlb_batched_pending runs (ok false otherwise): what
// a policy that flushes only the caller's table would flush.
func (t *Task) LockedTable() (lo, hi uint64, ok bool) {
	return t.locked, t.locked + 1<<pagetable.LevelShift(pagetable.Levels-2), t.lockedOK
}

// NewTask binds a task to cpu, switching the CPU to mm's address space (mm
// may be nil for a kernel thread). Call it before the machine runs or on
// the CPU's own goroutine.
func (k *Kernel) NewTask(cpu *mmu.CPU, mm *MM, name string) *Task {
	t := &Task{k: k, cpu: cpu, th: cpu.Thread(), mm: mm, name: name}
	if mm != nil {
		t.loadMM(mm)
	}
	k.mu.Lock()
	k.tasks = append(k.tasks, t)
	k.mu.Unlock()
	return t
}

// CPU is the CPU the task runs on (call it on the task's goroutine: a
// movable task's changes when it migrates).
func (t *Task) CPU() *mmu.CPU { return t.cpu }

// MM is the task's address space (nil for a kernel thread).
func (t *Task) MM() *MM { return t.mm }

// Name is the task's name, for reports.
func (t *Task) Name() string { return t.name }

// Kernel returns the kernel the task runs on.
func (t *Task) Kernel() *Kernel { return t.k }

// Thread returns the scheduler thread of the task's CPU.
func (t *Task) Thread() *sched.Thread { return t.th }

// SegvError is a fault the kernel delivers to the program (SIGSEGV).
type SegvError struct {
	VA     uint64
	Write  bool
	Reason string
}

func (e *SegvError) Error() string {
	kind := "read"
	if e.Write {
		kind = "write"
	}
	return fmt.Sprintf("SIGSEGV: %s at %#x: %s", kind, e.VA, e.Reason)
}

// maxFaultRetries bounds how often one access may fault and be retried
// before the kernel gives up (a livelock is a bug worth reporting).
const maxFaultRetries = 1000

// Load is a user load (LDR at EL0) of the word at va; faults are handled
// as the kernel does and the result is checked by the oracle.
func (t *Task) Load(va uint64) (uint64, error) {
	for i := 0; i < maxFaultRetries; i++ {
		start := t.k.accessStamp()
		v, f := t.cpu.Load(va)
		if f == mmu.FaultNone {
			t.k.oracle.load(t, va, v, start)
			return v, nil
		}
		if err := t.handleFault(va, false, f); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("mm: load at %#x still faulting after %d retries", va, maxFaultRetries)
}

// Store is a user store (STR at EL0) of val to the word at va.
func (t *Task) Store(va, val uint64) error {
	for i := 0; i < maxFaultRetries; i++ {
		start := t.k.accessStamp()
		f := t.cpu.Store(va, val)
		if f == mmu.FaultNone {
			t.k.oracle.store(t, va, val, start)
			return nil
		}
		if err := t.handleFault(va, true, f); err != nil {
			return err
		}
	}
	return fmt.Errorf("mm: store at %#x still faulting after %d retries", va, maxFaultRetries)
}

// ReplayUnchecked makes the word accesses of ops (mmu.CPU.Replay's ops:
// a word's VA, with mmu.OpStore set for a store of val) in order, as Load
// and Store would one by one but without the oracle's check — for a replay
// that nothing can race (one task, no system calls or reclaim while it
// runs: lackey:PATH), where the oracle has nothing to find and its
// bookkeeping would cost more than the emulated access — handling faults
// as the kernel does. On an error it returns how many ops were made before the
// one that failed.
func (t *Task) ReplayUnchecked(ops []uint64, val uint64) (int, error) {
	done, retries := 0, 0
	for done < len(ops) {
		n, f := t.cpu.Replay(ops[done:], val)
		done += n
		if f == mmu.FaultNone {
			break
		}
		if n > 0 {
			retries = 0
		}
		va, write := ops[done]&^mmu.OpStore, ops[done]&mmu.OpStore != 0
		if err := t.handleFault(va, write, f); err != nil {
			return done, err
		}
		if retries++; retries >= maxFaultRetries { // as Load: the last fault handled, then given up
			kind := "load"
			if write {
				kind = "store"
			}
			return done, fmt.Errorf("mm: %s at %#x still faulting after %d retries", kind, va, maxFaultRetries)
		}
	}
	return len(ops), nil
}

// syscallEnter charges a system call's entry.
func (t *Task) syscallEnter() {
	t.cpu.Charge(t.k.cost.SyscallEntry)
	t.k.Stats.Syscalls.Add(1)
}
