package explore

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/pagetable"
)

// Explanations of one run (`mmubench explain`): the run replays a schedule
// with a Recorder as its mmu.Tracer, and Story keeps the events that tell
// how its first violation came about.

// Recorder collects the events of a traced run.
type Recorder struct {
	mu     sync.Mutex
	Events []mmu.TraceEvent
}

// Trace implements mmu.Tracer.
func (r *Recorder) Trace(e mmu.TraceEvent) {
	r.mu.Lock()
	r.Events = append(r.Events, e)
	r.mu.Unlock()
}

// FirstViolation is the index of the first violation event, or -1.
func FirstViolation(events []mmu.TraceEvent) int {
	for i, e := range events {
		if e.Kind == mm.TraceViolation {
			return i
		}
	}
	return -1
}

// Story returns the events up to the first violation that concern its page:
// the system calls whose range holds it, its PTE changes, the fills of its
// translation, every invalidation that covers it (issued, held, applied),
// the DSBs of the CPUs that issued one, and the kernel's flush decisions on
// the CPUs involved. Without a violation it is nil.
func Story(events []mmu.TraceEvent) []mmu.TraceEvent {
	v := FirstViolation(events)
	if v < 0 {
		return nil
	}
	bad := events[v]
	page := bad.VA &^ (pagetable.PageSize - 1)
	involved := map[int]bool{bad.CPU: true}
	covers := func(e mmu.TraceEvent) bool {
		switch {
		case e.Kind == mm.TraceSyscall || e.Kind == mm.TraceReturn:
			lo, hi, ok := callRange(e.Text)
			return ok && page >= lo && page < hi
		case e.Kind == mmu.EvTLBI || e.Kind == mmu.EvApply || e.Kind == mmu.EvHold:
			return invalCovers(e, page, bad.ASID)
		case e.Kind == mm.TracePTE || e.Kind == mmu.EvFill:
			return e.VA&^(pagetable.PageSize-1) == page
		}
		return false
	}
	// Who took part: the CPUs whose calls, PTE changes or invalidations
	// touched the page.
	for _, e := range events[:v] {
		if covers(e) {
			involved[e.CPU] = true
			if e.Issuer >= 0 {
				involved[e.Issuer] = true
			}
		}
	}
	var story []mmu.TraceEvent
	for _, e := range events[:v+1] {
		switch {
		case covers(e), e.Kind == mm.TraceViolation:
			story = append(story, e)
		case (e.Kind == mmu.EvDSB || e.Kind == mmu.EvDSBDone || e.Kind == mm.TraceKernel) && involved[e.CPU]:
			story = append(story, e)
		}
	}
	return story
}

// callRange parses the "[lo, hi)" of a syscall event's text.
func callRange(text string) (lo, hi uint64, ok bool) {
	i := strings.Index(text, "[")
	if i < 0 {
		return 0, 0, false
	}
	if _, err := fmt.Sscanf(text[i:], "[%v, %v)", &lo, &hi); err != nil {
		return 0, 0, false
	}
	return lo, hi, true
}

// invalCovers reports whether an invalidation event's operation removes
// the translation of page in asid.
func invalCovers(e mmu.TraceEvent, page uint64, asid uint16) bool {
	op := strings.Fields(e.Text)
	if len(op) == 0 {
		return false
	}
	switch op[0] {
	case "VMALLE1IS", "VMALLE1":
		return true
	case "ASIDE1IS", "ASIDE1":
		return e.ASID == asid
	case "RVALE1IS", "RVALE1":
		var pages uint64 = 1
		if len(op) > 1 {
			fmt.Sscanf(op[1], "%d", &pages)
		}
		return e.ASID == asid && page >= e.VA && page < e.VA+pages<<pagetable.PageShift
	}
	return e.ASID == asid && e.VA == page
}

// Unapplied lists, for each invalidation issued before the first violation
// that covers its page, the CPUs that had not applied it by then: the TLBs
// the violation's translation was left in.
func Unapplied(events []mmu.TraceEvent, cpus int) []string {
	v := FirstViolation(events)
	if v < 0 {
		return nil
	}
	bad := events[v]
	page := bad.VA &^ (pagetable.PageSize - 1)
	type key struct {
		issuer int
		text   string
		va     uint64
	}
	applied := map[key]map[int]bool{}
	var order []key
	for _, e := range events[:v] {
		if !invalCovers(e, page, bad.ASID) {
			continue
		}
		switch e.Kind {
		case mmu.EvTLBI:
			k := key{e.CPU, e.Text, e.VA}
			if applied[k] == nil {
				order = append(order, k)
			}
			applied[k] = map[int]bool{}
		case mmu.EvApply:
			if m := applied[key{e.Issuer, e.Text, e.VA}]; m != nil {
				m[e.CPU] = true
			}
		}
	}
	var out []string
	for _, k := range order {
		var missing []string
		for c := 0; c < cpus; c++ {
			if !applied[k][c] {
				missing = append(missing, fmt.Sprintf("cpu%d", c))
			}
		}
		if len(missing) > 0 {
			out = append(out, fmt.Sprintf("cpu%d's %s va %#x: not yet applied on %s", k.issuer, instr(k.text), k.va, strings.Join(missing, ", ")))
		}
	}
	return out
}

// WriteStory prints events one per line: step, CPU, cycle, what, where.
func WriteStory(w io.Writer, events []mmu.TraceEvent) error {
	_, err := fmt.Fprintf(w, "%6s  %-5s %9s  %-9s %s\n", "step", "cpu", "cycle", "event", "what (where in the model)")
	for _, e := range events {
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%6d  cpu%-2d %9d  %-9s %s  (%s)\n", e.Step, e.CPU, e.Cycle, e.Kind, Describe(e), e.Source)
	}
	return err
}

// Describe says what one event was.
func Describe(e mmu.TraceEvent) string {
	switch e.Kind {
	case mmu.EvTLBI:
		return fmt.Sprintf("%s va %#x asid %d issued", instr(e.Text), e.VA, e.ASID)
	case mmu.EvApply:
		return fmt.Sprintf("applies cpu%d's %s va %#x asid %d", e.Issuer, instr(e.Text), e.VA, e.ASID)
	case mmu.EvHold:
		sync := "DSB"
		if isX86(e.Text) {
			sync = "TLBSYNC"
		}
		return fmt.Sprintf("holds cpu%d's %s va %#x until cpu%d's %s", e.Issuer, instr(e.Text), e.VA, e.Issuer, sync)
	case mmu.EvFill:
		return fmt.Sprintf("fills va %#x -> pfn %#x (%s) asid %d", e.VA, e.PFN, e.Text, e.ASID)
	case mm.TracePTE:
		return fmt.Sprintf("PTE of va %#x: %s", e.VA, e.Text)
	}
	return e.Text
}

// isX86 reports whether an invalidation's text names an x86 instruction
// (mmu.Machine.KindName on an x86 machine) rather than an arm64 TLBI
// operation.
func isX86(text string) bool {
	return strings.HasPrefix(text, "INV") || strings.HasPrefix(text, "IPI") || strings.HasPrefix(text, "flush_tlb")
}

// instr names an invalidation: "TLBI VALE1IS" on arm64, the x86
// instruction as the machine named it.
func instr(text string) string {
	if isX86(text) {
		return text
	}
	return "TLBI " + text
}
