package bench

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"

	"github.com/mmubench/mmubench/explore"
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/sched"
)

// ExploreConfig is cfg as the explorer runs it: det mode, its choices in
// place of a seed, every invalidation one choice (mmu.DeliverHold), the
// schedule recorded.
func ExploreConfig(cfg Config, ch sched.Chooser) Config {
	cfg.Machine.Sched = sched.Config{Mode: sched.Det, Chooser: ch, Record: true}
	cfg.Machine.DetDelivery = mmu.DeliverHold
	return cfg
}

// ExploreRunner runs cfg under the explorer's choices. A run that could not
// finish (a deadlock, a workload error) is an outcome too: the schedule
// that led there is worth a look.
func ExploreRunner(cfg Config) explore.Runner {
	return func(ch sched.Chooser) (explore.Outcome, error) {
		c := ExploreConfig(cfg, ch)
		r, err := Run(c)
		if err != nil {
			return explore.Outcome{}, err
		}
		out := explore.Outcome{Trace: r.Trace, State: fingerprint(r)}
		switch {
		case r.First != nil:
			out.Violation = r.First.String()
		case len(r.Errors) > 0:
			out.Violation = "the run failed: " + strings.Join(r.Errors, "; ")
		}
		if out.Trace != nil {
			c.Machine.Sched = sched.Config{Mode: sched.Det}
			out.Trace.Config = c.TraceConfig()
		}
		return out, nil
	}
}

// fingerprint hashes what a run ended with: the violations, the kernel's
// events and the hardware's counters but its cycles (time differs between
// interleavings that end alike).
func fingerprint(r *Result) uint64 {
	h := fnv.New64a()
	t := r.Total
	t.Cycles, t.DSBWaitCycles, t.FlushLostCycles = 0, 0, 0
	fmt.Fprint(h, r.Violations, t, len(r.Errors))
	for _, k := range slices.Sorted(maps.Keys(r.Kernel)) {
		fmt.Fprint(h, k, r.Kernel[k])
	}
	if r.First != nil {
		fmt.Fprint(h, r.First.Kind, r.First.CPU, r.First.VA)
	}
	return h.Sum64()
}

// TraceConfig is the configuration as a trace carries it (sched.Trace.Config).
func (c Config) TraceConfig() string {
	c.Machine.Sched.Replay, c.Machine.Sched.Chooser, c.Machine.Sched.Record = nil, nil, false
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // a Config always marshals
	}
	return string(b)
}

// ConfigFromTrace is the configuration a trace carries, set to replay it.
func ConfigFromTrace(tr *sched.Trace) (Config, error) {
	var c Config
	if err := json.Unmarshal([]byte(tr.Config), &c); err != nil {
		return c, fmt.Errorf("the trace's config line: %w", err)
	}
	c.Machine.Sched.Mode = sched.Det
	c.Machine.Sched.Seed = tr.Seed
	c.Machine.Sched.Replay = tr
	return c, nil
}

// Explain runs cfg — a replay of a schedule, typically — with every event
// recorded (explore.Story picks the ones that explain its first violation).
func Explain(cfg Config) (*Result, []mmu.TraceEvent, error) {
	rec := &explore.Recorder{}
	cfg.Machine.Tracer = rec
	r, err := Run(cfg)
	return r, rec.Events, err
}
