package mm

import (
	"fmt"

	"github.com/mmubench/mmubench/pagetable"
)

// The kernel's events in a traced run (mmu.Tracer, `mmubench explain`):
// checked system calls entered and returned, PTE changes with what made
// them, the flush decisions of flush_tlb_batched_pending, tlb_finish_mmu
// and the reclaim batch, and the oracle's violations.
const (
	TraceSyscall   = "syscall"
	TraceReturn    = "return"
	TracePTE       = "pte"
	TraceKernel    = "kernel"
	TraceViolation = "violation"
)

// tracePTE records a PTE change (or a PTE a walker looked at and left).
func (t *Task) tracePTE(va uint64, old, new pagetable.PTE, what string) {
	if !t.cpu.Tracing() {
		return
	}
	t.cpu.Trace(TracePTE, va, new.PFN(), fmt.Sprintf("%s: %s -> %s", what, describePTE(old), describePTE(new)))
}

// traceKernel records a kernel decision.
func (t *Task) traceKernel(what string) {
	if t.cpu.Tracing() {
		t.cpu.Trace(TraceKernel, 0, 0, what)
	}
}

// describePTE says what a PTE means, briefly.
func describePTE(p pagetable.PTE) string {
	switch {
	case p == 0:
		return "none"
	case isSwapPTE(p):
		return fmt.Sprintf("swap entry %d", swapSlot(p))
	case isProtNone(p):
		return fmt.Sprintf("PROT_NONE pfn %#x", p.PFN())
	case isMigrationEntry(p):
		return fmt.Sprintf("migration entry for pfn %#x", p.PFN())
	case !p.Valid():
		return fmt.Sprintf("invalid %#x", uint64(p))
	}
	s := fmt.Sprintf("pfn %#x ", p.PFN())
	switch {
	case !p.Rdonly():
		s += "RW dirty"
	case p.DBM():
		s += "RW clean"
	default:
		s += "RO"
	}
	if !p.Young() {
		s += " old"
	}
	return s
}
