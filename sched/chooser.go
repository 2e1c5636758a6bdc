package sched

// Chooser makes Det mode's choices in place of PCT priorities and the seeded
// coin: a systematic explorer (or a litmus enumerator) implements it to walk
// the tree of schedules one branch at a time. With a Chooser every yield
// point is a choice point, and every Chance asks it; the run is still
// recorded as a Trace (when Config.Record is set), so whatever a Chooser
// found replays with --replay and no Chooser.
//
// Methods are called by the goroutine holding the turn, one at a time.
type Chooser interface {
	// Pick returns who takes the turn: one of eligible (thread ids in
	// increasing order, never empty). cur is the thread at the yield point
	// (it is in eligible), or -1 when the turn is handed off by a thread
	// that cannot run or at the start of the run.
	Pick(step uint64, cur int, eligible []int) int
	// Chance decides a coin flip of thread t (the call-th at this step)
	// that Det mode would have drawn with probability num/den.
	Chance(step uint64, t, call int, num, den uint32) bool
}

// VisibilityChooser is a Chooser that also wants to know whether the
// thread at a yield point is at a visible one (Thread.YieldVisible): an
// explorer preempts only there. If a Chooser implements it, PickAt is
// called instead of Pick.
type VisibilityChooser interface {
	Chooser
	PickAt(step uint64, cur int, visible bool, eligible []int) int
}

// pickChooser asks the Chooser who runs; nil if nobody can.
func (d *detState) pickChooser(cur *Thread) *Thread {
	el := d.eligibleBuf[:0]
	for _, t := range d.s.threads {
		if d.eligible(t) {
			el = append(el, t.id)
		}
	}
	d.eligibleBuf = el
	if len(el) == 0 {
		return nil
	}
	c, visible := -1, false
	if cur != nil && cur.state == runnable {
		c, visible = cur.id, cur.visible
	}
	var id int
	if v, ok := d.chooser.(VisibilityChooser); ok {
		id = v.PickAt(d.step, c, visible, el)
	} else {
		id = d.chooser.Pick(d.step, c, el)
	}
	for _, e := range el {
		if e == id {
			return d.s.threads[id]
		}
	}
	panic("sched: Chooser picked a thread that is not eligible")
}
