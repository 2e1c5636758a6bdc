package mmu

import (
	"fmt"
	"runtime"
	"strings"
)

// Tracing of one run, for `mmubench explain`: the hardware's events that
// make or break a TLB-flush argument — TLBIs issued, each invalidation's
// delivery to each target (or its hold until the issuer's DSB), DSBs
// begun and completed, TLB fills — and, through CPU.Trace, the kernel's
// (system calls, PTE changes, the oracle's verdict). Off unless a Tracer
// is set; then every event costs a stack walk, which only a replay of one
// schedule can afford.

// TraceEvent is one event of a traced run.
type TraceEvent struct {
	Step   uint64 `json:"step"` // the det scheduler's step: the run's global order
	CPU    int    `json:"cpu"`
	Cycle  uint64 `json:"cycle"` // the CPU's emulated cycles
	Kind   string `json:"kind"`
	VA     uint64 `json:"va"`
	PFN    uint64 `json:"pfn"`
	ASID   uint16 `json:"asid"`
	Issuer int    `json:"issuer"` // an invalidation's issuing CPU (apply, hold); -1 otherwise
	Text   string `json:"text"`
	Source string `json:"source"` // where in the model it happened (file:line)
}

// Event kinds the hardware traces.
const (
	EvTLBI    = "tlbi"     // an invalidation issued (Text: its kind)
	EvApply   = "apply"    // an invalidation applied on this CPU
	EvHold    = "hold"     // an invalidation held until its issuer's DSB (mmu.DeliverHold)
	EvDSB     = "dsb"      // a DSB ISH begun
	EvDSBDone = "dsb-done" // the DSB completed: every TLBI this CPU issued is applied everywhere
	EvFill    = "fill"     // a walk filled the TLBs (Text: the permissions)
)

// Tracer receives the events of a traced run, on the CPU goroutine they
// happen on.
type Tracer interface {
	Trace(e TraceEvent)
}

// SetTracer traces the run to t (nil: off). Set it before the run.
func (m *Machine) SetTracer(t Tracer) { m.tracer = t }

// Tracing reports whether the machine is traced.
func (c *CPU) Tracing() bool { return c.m.tracer != nil }

// Trace records an event of kind on c (the kernel's events come through
// here too), if the machine is traced.
func (c *CPU) Trace(kind string, va, pfn uint64, text string) {
	if c.m.tracer != nil {
		c.trace(TraceEvent{Kind: kind, VA: va, PFN: pfn, ASID: c.asid, Issuer: -1, Text: text})
	}
}

func (c *CPU) trace(e TraceEvent) {
	e.Step, e.CPU, e.Cycle = c.m.sched.Steps(), c.id, c.ctr.Cycles
	e.Source = modelSource()
	c.m.tracer.Trace(e)
}

// traceInval records an invalidation's issue, delivery or hold.
func (c *CPU) traceInval(kind string, inv inval) {
	if c.m.tracer == nil {
		return
	}
	text := c.m.KindName(inv.kind)
	if inv.ipi {
		text = "IPI shootdown: " + text
	}
	if inv.pages > 1 {
		text += fmt.Sprintf(" %d pages", inv.pages)
	}
	c.trace(TraceEvent{Kind: kind, VA: inv.va, ASID: inv.asid, Issuer: inv.issuer.id, Text: text})
}

// modelSource is the first caller outside the hardware and the scheduler:
// the kernel or workload code an event comes from.
func modelSource() string {
	var pcs [24]uintptr
	n := runtime.Callers(3, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if !inPackage(f.File, "mmu") && !inPackage(f.File, "sched") && !tracingHelper(f.File) {
			return shortFile(f.File) + fmt.Sprintf(":%d", f.Line)
		}
		if !more {
			return ""
		}
	}
}

// tracingHelper: the kernel's own tracing and reporting helpers and its
// user-access wrappers, which say nothing of where an event came from.
func tracingHelper(file string) bool {
	for _, f := range [...]string{"mm/task.go", "mm/trace.go", "mm/oracle.go", "mm/syscall.go"} {
		if strings.HasSuffix(file, f) {
			return true
		}
	}
	return false
}

func inPackage(file, pkg string) bool { return strings.Contains(file, "/"+pkg+"/") }

// shortFile is file relative to the module root (its last two elements).
func shortFile(file string) string {
	i := strings.LastIndex(file, "/")
	if i <= 0 {
		return file
	}
	if j := strings.LastIndex(file[:i], "/"); j >= 0 {
		return file[j+1:]
	}
	return file
}
