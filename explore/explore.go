// Package explore searches det-mode schedules systematically, within a
// bound, instead of sampling them with PCT seeds.
//
// The search is delay-bounded (Emmi, Qadeer and Rakamarić, "Delay-bounded
// scheduling", POPL 2011) over a deterministic base schedule: round robin,
// each thread running a quantum of yield points before the turn moves on,
// and every broadcast invalidation applied when its target first sees it.
// A deviation is any other choice at a choice point: preempting the running
// thread for another at a visible yield point (before a lock, a descriptor
// update, a TLBI or DSB — sched.Thread.YieldVisible), giving the turn to
// another thread than the base one when a thread blocks, or holding an
// invalidation until its issuer's DSB (mmu.DeliverHold). Bound K explores
// every schedule with at most K deviations, exactly once each.
//
// The reduction is the choice of choice points: a user-mode access between
// two visible points touches only its CPU's own TLB and data memory, so
// moving a preemption from it to the next visible point of the same thread
// changes no PTE, lock or invalidation another thread can observe — only
// the data words racing user threads exchange, which the oracle accepts
// either way. (This is CHESS's argument for preempting at synchronisation
// operations only; data races between user threads are not what it checks.)
//
// The engine is stateless: every schedule runs from the start, replaying its
// deviations and taking the base choice everywhere else, so it needs no
// snapshot of the machine — only a Runner that runs one schedule under a
// sched.Chooser (bench.ExploreRunner). It searches level by level, fewest
// deviations first, so a counterexample is a shortest one, and the schedules
// of a level run in parallel with a result independent of how many run at
// once. There is no state hashing, sleep set or DPOR on top: the bound, the
// choice points and the hold-or-apply delivery keep the small race
// workloads within a minute at bound 2.
//
// The explanation of one run (explain.go, perfetto.go) reads the events of
// the hardware and the kernel (mmu.Tracer) of a replayed schedule.
package explore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/mmubench/mmubench/sched"
)

// Outcome is what one schedule did.
type Outcome struct {
	// Violation is the first violation, or "" for none.
	Violation string
	// State fingerprints the end state (the kernel's and the hardware's
	// counters, what the oracle saw): schedules with equal fingerprints
	// ended alike.
	State uint64
	// Trace is the schedule as the det scheduler recorded it: it replays
	// without the explorer (sched.Config.Replay).
	Trace *sched.Trace
}

// Runner runs one schedule whose choices ch makes.
type Runner func(ch sched.Chooser) (Outcome, error)

// Options bound a search.
type Options struct {
	Bound   int // deviations from the base schedule
	Quantum int // base schedule: yield points a thread runs before the turn moves on (0: DefaultQuantum)
	// MaxSchedules stops the search after this many schedules (0: no limit);
	// the report then says the bound was not exhausted.
	MaxSchedules int
	// All: keep going after the first violation (to count them).
	All bool
	// Jobs is how many schedules run at once (0: GOMAXPROCS).
	Jobs int
	// Progress, if set, is called after each schedule.
	Progress func(schedules, pending int)
}

// DefaultQuantum is the base schedule's time slice, in yield points.
const DefaultQuantum = 32

// Report is what a search found.
type Report struct {
	Schedules  int // schedules run
	States     int // distinct end states
	Violating  int // schedules with a violation
	MaxPoints  int // the most choice points one schedule had
	Exhausted  bool
	Bound      int
	First      *Outcome // the first violating schedule found (fewest deviations, then generation order)
	FirstDepth int      // its deviations
}

// point is one choice point of a run: how many alternatives it had and
// which was taken (0: the base choice).
type point struct{ n, pick int }

// dev is a deviation: at choice point pos, alternative alt (> 0).
type dev struct{ pos, alt int }

// schedule is a schedule to run: its deviations in increasing position;
// every other choice is the base one.
type schedule []dev

// chunk is how many schedules of a level run before the search looks at
// their outcomes, in the order they were generated: the first
// counterexample is then the same whatever the number of jobs.
const chunk = 64

// Explore runs the schedules within opt.Bound, level by level — first the
// base schedule, then every schedule with one deviation, then two — so that
// a counterexample has the fewest deviations possible. Schedules of a level
// run on opt.Jobs goroutines; the result does not depend on how many.
func Explore(ctx context.Context, run Runner, opt Options) (*Report, error) {
	if opt.Bound < 0 {
		return nil, fmt.Errorf("explore: bound %d (must be >= 0)", opt.Bound)
	}
	if opt.Quantum <= 0 {
		opt.Quantum = DefaultQuantum
	}
	if opt.Jobs <= 0 {
		opt.Jobs = runtime.GOMAXPROCS(0)
	}
	rep := &Report{Bound: opt.Bound, Exhausted: true}
	states := map[uint64]bool{}
	level := []schedule{nil}
	for depth := 0; len(level) > 0; depth++ {
		var next []schedule
		for lo := 0; lo < len(level); lo += chunk {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			batch := level[lo:min(lo+chunk, len(level))]
			if opt.MaxSchedules > 0 && rep.Schedules+len(batch) > opt.MaxSchedules {
				batch = batch[:max(opt.MaxSchedules-rep.Schedules, 0)]
				rep.Exhausted = false
			}
			results, err := runAll(run, batch, opt)
			if err != nil {
				return rep, err
			}
			for i, r := range results {
				rep.Schedules++
				rep.MaxPoints = max(rep.MaxPoints, len(r.points))
				states[r.out.State] = true
				if r.out.Violation != "" {
					rep.Violating++
					if rep.First == nil {
						o := r.out
						rep.First, rep.FirstDepth = &o, depth
					}
				}
				if depth < opt.Bound {
					next = appendChildren(next, batch[i], r.points)
				}
			}
			if opt.Progress != nil {
				opt.Progress(rep.Schedules, len(level)-lo-len(batch)+len(next))
			}
			if (rep.First != nil && !opt.All) || !rep.Exhausted {
				rep.Exhausted = rep.Exhausted && rep.First == nil
				rep.States = len(states)
				return rep, nil
			}
		}
		level = next
	}
	rep.States = len(states)
	return rep, nil
}

// appendChildren adds the schedules one deviation deeper than s that its
// run makes possible: a deviation at any choice point after s's last.
func appendChildren(out []schedule, s schedule, points []point) []schedule {
	from := 0
	if len(s) > 0 {
		from = s[len(s)-1].pos + 1
	}
	for i := from; i < len(points); i++ {
		for alt := 1; alt < points[i].n; alt++ {
			c := make(schedule, len(s), len(s)+1)
			copy(c, s)
			out = append(out, append(c, dev{i, alt}))
		}
	}
	return out
}

type result struct {
	out    Outcome
	points []point
}

// runAll runs the schedules on opt.Jobs goroutines, results in order.
func runAll(run Runner, batch []schedule, opt Options) ([]result, error) {
	results := make([]result, len(batch))
	errs := make([]error, len(batch))
	var wg sync.WaitGroup
	work := make(chan int)
	for range min(opt.Jobs, len(batch)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				ch := &chooser{sched: batch[i], quantum: opt.Quantum, last: -1}
				out, err := run(ch)
				if ch.diverged == "" && ch.next < len(ch.sched) {
					ch.diverged = fmt.Sprintf("the run had %d choice points, the schedule deviates at %d", len(ch.points), ch.sched[ch.next].pos)
				}
				if err == nil && ch.diverged != "" {
					err = fmt.Errorf("explore: a schedule did not replay its prefix (%s): the run is not deterministic", ch.diverged)
				}
				results[i], errs[i] = result{out: out, points: ch.points}, err
			}
		}()
	}
	for i := range batch {
		work <- i
	}
	close(work)
	wg.Wait()
	return results, errors.Join(errs...)
}

// chooser makes one schedule's choices: its deviations, else the base ones.
type chooser struct {
	sched    schedule
	next     int // the next deviation of sched
	points   []point
	quantum  int
	last     int // the thread that ran last
	run      int // yield points it has run since it got the turn
	diverged string
}

// choose records a choice point with n alternatives (0 the base one) and
// returns the one to take.
func (c *chooser) choose(n int) int {
	i := len(c.points)
	pick := 0
	if c.next < len(c.sched) && c.sched[c.next].pos == i {
		pick = c.sched[c.next].alt
		c.next++
		if pick >= n {
			c.diverged = fmt.Sprintf("choice %d has %d alternatives, the schedule takes %d", i, n, pick)
			pick = 0
		}
	}
	c.points = append(c.points, point{n: n, pick: pick})
	return pick
}

// base is the round-robin choice among eligible (ids in increasing order).
func (c *chooser) base(cur int, eligible []int) int {
	if cur >= 0 && c.run < c.quantum {
		return cur
	}
	from := c.last
	if cur >= 0 {
		from = cur
	}
	for _, id := range eligible {
		if id > from {
			return id
		}
	}
	return eligible[0]
}

// Pick implements sched.Chooser (PickAt is what sched calls).
func (c *chooser) Pick(step uint64, cur int, eligible []int) int {
	return c.PickAt(step, cur, true, eligible)
}

// PickAt implements sched.VisibilityChooser.
func (c *chooser) PickAt(_ uint64, cur int, visible bool, eligible []int) int {
	b := c.base(cur, eligible)
	next := b
	if len(eligible) > 1 && (cur < 0 || visible) {
		if k := c.choose(len(eligible)); k > 0 {
			// The alternatives: the base choice first, then the others
			// in id order.
			alts := make([]int, 0, len(eligible))
			alts = append(alts, b)
			for _, id := range eligible {
				if id != b {
					alts = append(alts, id)
				}
			}
			next = alts[k]
		}
	}
	if next == c.last {
		c.run++
	} else {
		c.last, c.run = next, 1
	}
	return next
}

// Chance implements sched.Chooser: the base choice is false (with
// mmu.DeliverHold: apply the invalidation now), true is a deviation.
func (c *chooser) Chance(uint64, int, int, uint32, uint32) bool {
	return c.choose(2) == 1
}
