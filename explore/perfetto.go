package explore

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
)

// The Chrome trace-event format (the JSON that Perfetto UI and
// chrome://tracing open): one track per CPU, each checked system call a
// slice from entry to return, everything else an instant on its CPU's
// track, the violation flagged. Time is the det scheduler's step, shown as
// microseconds: steps order the run's events globally, which the CPUs'
// own cycle counts (each CPU's emulated time) do not in a PCT schedule.

// TraceEvent is one event of the trace-event format.
type TraceEvent struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat,omitempty"`
	Ph   string         `json:"ph"` // B, E (slice begin, end), i (instant), M (metadata)
	Ts   uint64         `json:"ts"`
	Pid  int            `json:"pid"`
	Tid  int            `json:"tid"`
	S    string         `json:"s,omitempty"` // instant scope: t (thread), g (global)
	Args map[string]any `json:"args,omitempty"`
}

// TraceFile is the whole JSON object.
type TraceFile struct {
	TraceEvents     []TraceEvent `json:"traceEvents"`
	DisplayTimeUnit string       `json:"displayTimeUnit"`
	OtherData       any          `json:"otherData,omitempty"`
}

// Perfetto converts a traced run to the trace-event format; meta goes into
// otherData (what ran, and how to replay it).
func Perfetto(events []mmu.TraceEvent, cpus int, meta map[string]string) TraceFile {
	f := TraceFile{DisplayTimeUnit: "ns", OtherData: meta}
	for i := 0; i < cpus; i++ {
		f.TraceEvents = append(f.TraceEvents, TraceEvent{Name: "thread_name", Ph: "M", Pid: 1, Tid: i,
			Args: map[string]any{"name": fmt.Sprintf("cpu%d", i)}})
	}
	open := map[int]int{} // per CPU: syscall slices begun and not ended
	var last uint64
	for _, e := range events {
		args := map[string]any{"what": Describe(e), "source": e.Source, "cycle": e.Cycle}
		if e.VA != 0 {
			args["va"] = fmt.Sprintf("%#x", e.VA)
		}
		ev := TraceEvent{Name: e.Kind, Cat: category(e.Kind), Ts: e.Step, Pid: 1, Tid: e.CPU, Args: args}
		switch e.Kind {
		case mm.TraceSyscall:
			ev.Ph, ev.Name = "B", e.Text
			open[e.CPU]++
		case mm.TraceReturn:
			if open[e.CPU] == 0 {
				continue // entered before the trace began
			}
			ev.Ph, ev.Name = "E", ""
			open[e.CPU]--
		case mm.TraceViolation:
			ev.Ph, ev.S, ev.Name = "i", "g", "VIOLATION: "+e.Text
		default:
			ev.Ph, ev.S = "i", "t"
			if e.Kind == mmu.EvTLBI || e.Kind == mmu.EvApply || e.Kind == mmu.EvHold {
				ev.Name = e.Kind + " " + e.Text
			}
		}
		f.TraceEvents = append(f.TraceEvents, ev)
		last = max(last, e.Step)
	}
	for cpu, n := range open { // calls the run ended inside (a deadlock, a failure)
		for ; n > 0; n-- {
			f.TraceEvents = append(f.TraceEvents, TraceEvent{Ph: "E", Ts: last, Pid: 1, Tid: cpu})
		}
	}
	return f
}

func category(kind string) string {
	switch kind {
	case mm.TraceSyscall, mm.TraceReturn, mm.TracePTE, mm.TraceKernel:
		return "kernel"
	case mm.TraceViolation:
		return "violation"
	}
	return "hardware"
}

// WritePerfetto writes f as JSON.
func WritePerfetto(w io.Writer, f TraceFile) error {
	enc := json.NewEncoder(w)
	return enc.Encode(f)
}
