package sched

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// EventKind is the kind of a recorded Det-mode choice.
type EventKind uint8

const (
	// EvSwitch: at a yield point the running thread was preempted by Thread.
	EvSwitch EventKind = iota
	// EvHandoff: a thread that could not run (blocked, finished, or the
	// start of the run) handed the turn to Thread (possibly itself, to do
	// service work).
	EvHandoff
	// EvChance: a Chance call of Thread came out true.
	EvChance
)

var kindNames = [...]string{"switch", "handoff", "chance"}

func (k EventKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind%d", k)
}

// Event is one recorded choice: at yield step Step, Kind happened to Thread.
// A thread may draw several Chances at one step (one per pending
// invalidation): Call says which of them came out true.
type Event struct {
	Step   uint64
	Kind   EventKind
	Thread int
	Call   int
}

func (e Event) String() string {
	if e.Kind == EvChance {
		return fmt.Sprintf("%d %v %d %d", e.Step, e.Kind, e.Thread, e.Call)
	}
	return fmt.Sprintf("%d %v %d", e.Step, e.Kind, e.Thread)
}

// Trace is the sequence of choices of one Det-mode run; replaying it
// reproduces the run's interleaving without the seed.
type Trace struct {
	Seed   uint64
	Events []Event
	// Config, if set, is what ran (one line of JSON, the caller's): a
	// trace that carries it replays without being told the configuration.
	Config string
}

// WriteTo writes the trace as text: a "seed N" line, a "config JSON" line if
// it carries its configuration, then one "STEP KIND THREAD" line per event
// ("STEP chance THREAD CALL" for a Chance).
func (tr *Trace) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriter(w)
	var n int64
	c, _ := fmt.Fprintf(bw, "seed %d\n", tr.Seed)
	n += int64(c)
	if tr.Config != "" {
		c, _ = fmt.Fprintf(bw, "config %s\n", tr.Config)
		n += int64(c)
	}
	for _, e := range tr.Events {
		c, _ = fmt.Fprintf(bw, "%v\n", e)
		n += int64(c)
	}
	return n, bw.Flush()
}

// ReadTrace parses the text form written by WriteTo. Blank lines and lines
// starting with '#' are skipped; a malformed line is an error naming it.
func ReadTrace(r io.Reader) (*Trace, error) {
	tr := &Trace{}
	sawSeed := false
	sc := bufio.NewScanner(r)
	for ln := 1; sc.Scan(); ln++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if f[0] == "config" {
			if tr.Config != "" {
				return nil, fmt.Errorf("trace line %d: a second config line", ln)
			}
			tr.Config = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "config"))
			continue
		}
		if f[0] == "seed" && len(f) == 2 {
			v, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("trace line %d: bad seed %q", ln, f[1])
			}
			tr.Seed, sawSeed = v, true
			continue
		}
		if len(f) != 3 && len(f) != 4 {
			return nil, fmt.Errorf("trace line %d: want \"STEP KIND THREAD [CALL]\", got %q", ln, sc.Text())
		}
		step, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("trace line %d: bad step %q", ln, f[0])
		}
		kind := -1
		for k, name := range kindNames {
			if name == f[1] {
				kind = k
			}
		}
		if kind < 0 {
			return nil, fmt.Errorf("trace line %d: unknown event %q (valid: switch, handoff, chance)", ln, f[1])
		}
		th, err := strconv.Atoi(f[2])
		if err != nil || th < 0 || th >= MaxThreads {
			return nil, fmt.Errorf("trace line %d: bad thread %q", ln, f[2])
		}
		if n := len(tr.Events); n > 0 && tr.Events[n-1].Step > step {
			return nil, fmt.Errorf("trace line %d: step %d goes backwards", ln, step)
		}
		call := 0
		if (len(f) == 4) != (EventKind(kind) == EvChance) {
			return nil, fmt.Errorf("trace line %d: a chance event has a call number, a %s none: %q", ln, f[1], sc.Text())
		}
		if len(f) == 4 {
			if call, err = strconv.Atoi(f[3]); err != nil || call < 0 {
				return nil, fmt.Errorf("trace line %d: bad call number %q", ln, f[3])
			}
		}
		tr.Events = append(tr.Events, Event{Step: step, Kind: EventKind(kind), Thread: th, Call: call})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !sawSeed {
		return nil, fmt.Errorf("no \"seed N\" line: not a schedule (an empty file?)")
	}
	return tr, nil
}
