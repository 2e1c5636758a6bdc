package sched

import (
	"fmt"
	"math/rand/v2"
	"runtime"
)

// detState is the deterministic scheduler: PCT (Burckhardt et al., "A
// randomized scheduler with probabilistic guarantees of finding bugs") with
// an open-ended run length. Every thread gets a random distinct priority; the
// highest-priority eligible thread runs; at random change points the running
// thread drops below every other. Change points are spaced uniformly in
// [1, 2*ChangeEvery] yield points, so a yield point that is not a change point
// costs an increment and a compare.
//
// With Config.Quantum the choice is by emulated time instead (clocked): the
// eligible thread with the smallest clock runs until its clock passes the
// next one's by the quantum, so that threads advance together in emulated
// time. Ties go to the lowest thread id. A thread eligible only for service
// work (applying invalidations, which takes no emulated time) goes first. A
// thread that was blocked resumes no earlier than the threads that ran
// meanwhile: its clock moves up to the earliest of theirs — unless the
// caller charged the wait's time itself (BlockCharged), and a lock's waiter
// also catches up to the holder's release.
//
// All fields are touched only by the goroutine holding the turn.
type detState struct {
	s          *Scheduler
	rng        *rand.Rand
	step       uint64
	nextChange uint64
	changes    int64
	resched    bool // an eligibility may have changed: re-pick at next yield
	cur        *Thread
	clocked    bool   // Config.Quantum: choose by emulated time
	limit      uint64 // clocked: the running thread's clock may reach this

	record bool
	trace  []Event
	replay []Event
	ri     int

	// Chance calls so far by thread chanceThread at step chanceStep.
	chanceStep   uint64
	chanceThread int
	chanceCalls  int

	chooser     Chooser // Config.Chooser: every choice is its
	eligibleBuf []int
}

func (d *detState) init(s *Scheduler) {
	d.s = s
	d.rng = rand.New(rand.NewPCG(s.cfg.Seed, 0x6d6d7562656e6368)) // "mmubench"
	n := len(s.threads)
	for i, p := range d.rng.Perm(n) {
		s.threads[i].prio = int64(n + p) // every initial priority is above every demoted one
	}
	d.record = s.cfg.Record
	switch {
	case s.cfg.Replay != nil:
		d.replay = s.cfg.Replay.Events
		d.nextChange = d.nextReplayStep()
	case s.cfg.Chooser != nil:
		d.chooser = s.cfg.Chooser
		d.nextChange = 0 // every yield point is a choice
	case s.cfg.Quantum > 0:
		d.clocked = true
		d.nextChange = ^uint64(0)
	default:
		d.nextChange = d.gap()
	}
}

func (d *detState) gap() uint64 { return 1 + d.rng.Uint64N(2*d.s.cfg.ChangeEvery) }

func (d *detState) replaying() bool { return d.replay != nil }

func (d *detState) nextReplayStep() uint64 {
	if d.ri < len(d.replay) {
		return d.replay[d.ri].Step
	}
	return ^uint64(0)
}

// start hands the first turn out; called by Run's goroutine.
func (d *detState) start() {
	next := d.choose(nil, EvHandoff)
	if next == nil {
		return // already ended (replay mismatch)
	}
	d.cur = next
	next.turn <- struct{}{}
}

// eligible reports whether t could take the turn now.
func (d *detState) eligible(t *Thread) bool {
	switch t.state {
	case runnable:
		return true
	case blocked:
		return t.kicked.Load() || t.ready()
	default: // finished: only for service work
		return t.kicked.Load()
	}
}

// pick returns the highest-priority eligible thread (clocked: the earliest),
// or nil.
func (d *detState) pick() *Thread {
	if d.clocked {
		return d.pickClocked()
	}
	var best *Thread
	for _, t := range d.s.threads {
		if d.eligible(t) && (best == nil || t.prio > best.prio) {
			best = t
		}
	}
	return best
}

// pickClocked returns the eligible thread to run by emulated time and sets
// the clock it may run to.
func (d *detState) pickClocked() *Thread {
	var best *Thread
	for _, t := range d.s.threads {
		if !d.eligible(t) {
			continue
		}
		if t.state == finished || (t.state == blocked && !t.ready()) {
			return t // kicked for service work only: it takes no emulated time
		}
		if best == nil || t.now() < best.now() {
			best = t
		}
	}
	if best == nil {
		return nil
	}
	// Only threads that would run count: one kicked for service work only
	// is picked first anyway, whatever its clock.
	d.limit = ^uint64(0)
	for _, t := range d.s.threads {
		if t != best && (t.state == runnable || (t.state == blocked && t.ready())) {
			d.limit = min(d.limit, t.now()+d.s.cfg.Quantum)
		}
	}
	return best
}

// choose decides who takes the turn from cur (nil at the start): from the
// replayed trace, or by priority. A preemption at a yield point (EvSwitch) is
// recorded only when the turn moves; a hand-off by a thread that cannot run
// (EvHandoff) is always recorded, so replay knows which of the two it is.
func (d *detState) choose(cur *Thread, kind EventKind) *Thread {
	var next *Thread
	if d.replaying() {
		ev, ok := d.take(kind, -1)
		if !ok {
			return nil
		}
		next = d.s.threads[ev.Thread]
		if !d.eligible(next) {
			d.fail(fmt.Sprintf("cpu%d is not eligible", ev.Thread))
			return nil
		}
	} else if d.chooser != nil {
		next = d.pickChooser(cur)
	} else {
		next = d.pick()
	}
	if next != nil && (next != cur || kind == EvHandoff) && d.record {
		d.trace = append(d.trace, Event{Step: d.step, Kind: kind, Thread: next.id})
	}
	return next
}

// take consumes the next replayed event, which must be of kind at the
// current step (and thread, unless thread < 0).
func (d *detState) take(kind EventKind, thread int) (Event, bool) {
	if d.ri >= len(d.replay) {
		// The recorded run ended here only if nobody could run.
		if kind != EvHandoff || d.pick() != nil {
			d.fail("the trace ended")
		}
		return Event{}, false
	}
	ev := d.replay[d.ri]
	if ev.Step != d.step || ev.Kind != kind || (thread >= 0 && ev.Thread != thread) || ev.Thread >= len(d.s.threads) {
		d.fail(fmt.Sprintf("expected %v, trace has %v", Event{Step: d.step, Kind: kind, Thread: max(thread, 0)}, ev))
		return Event{}, false
	}
	d.ri++
	d.nextChange = d.nextReplayStep()
	return ev, true
}

// fail ends a replay that does not fit the run.
func (d *detState) fail(why string) {
	d.s.end(&ReplayError{Step: d.step, Why: why})
}

// reschedule runs at a yield point that is a change point or follows a
// possible eligibility change.
func (d *detState) reschedule(t *Thread) {
	if d.s.ended.Load() {
		return // deferred calls of an aborted thread
	}
	if d.replaying() {
		if ev := d.nextReplayStep(); ev == d.step && d.replay[d.ri].Kind == EvSwitch {
			if next := d.choose(t, EvSwitch); next != nil && next != t {
				d.switchTo(t, next)
			}
		}
		d.checkEnded()
		return
	}
	if !d.clocked && d.chooser == nil && d.step >= d.nextChange {
		d.changes++
		t.prio = -d.changes
		d.nextChange = d.step + d.gap()
	}
	d.resched = false
	if next := d.choose(t, EvSwitch); next != t {
		d.switchTo(t, next)
	}
}

// switchTo hands the turn from cur to next and waits for it to come back.
func (d *detState) switchTo(cur, next *Thread) {
	d.cur = next
	next.turn <- struct{}{}
	select {
	case <-cur.turn:
	case <-d.s.abort:
	}
	d.checkEnded()
}

// checkEnded leaves the goroutine of a thread whose run was aborted, or that
// was finished when the run ended.
func (d *detState) checkEnded() {
	if d.s.ended.Load() {
		runtime.Goexit()
	}
}

// chance draws a recorded coin flip for t. Only true outcomes are
// recorded, each with its ordinal among t's draws at this step.
func (d *detState) chance(t *Thread, num, den uint32) bool {
	if d.step != d.chanceStep || t.id != d.chanceThread {
		d.chanceStep, d.chanceThread, d.chanceCalls = d.step, t.id, 0
	}
	call := d.chanceCalls
	d.chanceCalls++
	if d.replaying() {
		if d.ri < len(d.replay) {
			if ev := d.replay[d.ri]; ev.Step == d.step && ev.Kind == EvChance && ev.Thread == t.id && ev.Call == call {
				d.take(EvChance, t.id)
				return true
			}
		}
		return false
	}
	if d.chooser != nil {
		if !d.chooser.Chance(d.step, t.id, call, num, den) {
			return false
		}
	} else if d.rng.Uint32N(den) >= num {
		return false
	}
	if d.record {
		d.trace = append(d.trace, Event{Step: d.step, Kind: EvChance, Thread: t.id, Call: call})
	}
	return true
}

// block waits, handing the turn on, until ready() holds; it serves kicks
// when the scheduler hands it the turn for them.
// A thread that gets the turn back because ready() came true returns without
// serving: its pending work stays for the caller's own delivery choices
// (serving on every wake-up would make every blocked CPU apply its
// invalidations the moment it resumes, hiding exactly the races we look for).
func (d *detState) block(t *Thread, what string, ready func() bool, resync bool) {
	for !ready() {
		t.state, t.what, t.ready = blocked, what, ready
		d.handOff(t)
		t.state = runnable
		if !ready() {
			t.serve()
		}
	}
	if resync && t.clocked() {
		// Time passed while it waited: it resumes no earlier than the
		// threads that ran meanwhile (the earliest of them: all are within
		// a quantum of each other). A wait whose time its caller charged
		// (BlockCharged: a DSB's completion) skips this: the earliest
		// thread may be up to a quantum past the wait's end.
		if now, ok := d.earliestRunnable(t); ok {
			*t.clock = max(*t.clock, now)
		}
	}
}

// earliestRunnable is the smallest clock of the runnable threads but t.
func (d *detState) earliestRunnable(t *Thread) (uint64, bool) {
	var now uint64
	found := false
	for _, o := range d.s.threads {
		if o != t && o.state == runnable && (!found || o.now() < now) {
			now, found = o.now(), true
		}
	}
	return now, found
}

// exit is Block-forever for a thread whose body returned.
func (d *detState) exit(t *Thread) {
	t.state, t.what, t.ready = finished, "", nil
	for {
		t.serve()
		d.handOff(t)
	}
}

// handOff gives the turn away from a thread that cannot run (blocked or
// finished), ending the run if nobody can.
func (d *detState) handOff(t *Thread) {
	next := d.choose(t, EvHandoff)
	switch {
	case d.s.ended.Load():
		runtime.Goexit()
	case next == t: // eligible itself: kicked for service work
		return
	case next == nil:
		d.s.end(d.endState())
		runtime.Goexit()
	}
	d.switchTo(t, next)
}

// endState is nil if every thread finished, else the deadlock.
func (d *detState) endState() error {
	for _, t := range d.s.threads {
		if t.state != finished {
			return d.s.deadlock()
		}
	}
	return nil
}

// ReplayError reports a replayed trace that does not fit the run.
type ReplayError struct {
	Step uint64
	Why  string
}

func (e *ReplayError) Error() string {
	return fmt.Sprintf("replay diverged at step %d: %s", e.Step, e.Why)
}
