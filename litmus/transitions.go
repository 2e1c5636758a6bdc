package litmus

import (
	"slices"

	"github.com/mmubench/mmubench/mmu"
)

// What can happen next, and the reductions that keep the search small.
// Each reduction is exact — it changes no reachable final state — and
// Options.noReduce turns them all off so that the tests can check this
// against the unreduced search, in which every thread's next step, every
// pending invalidation on every CPU, and every fill of every valid, young
// translation on every CPU is a separate choice at every state.
//
// The argument for each is that a choice commutes with every transition
// but a few, so it can be moved later, up to just before the first of
// those, without changing the execution's outcome; the search offers it
// only there.
//
//   - Thread-local steps (register operations, barriers that do nothing
//     here, forward branches) commute with everything: settle runs them at
//     once. Backward branches are left as choices, so every cycle of the
//     state graph passes through a fully expanded state.
//   - A CPU whose thread has finished, or has no memory access ahead, has
//     a TLB nothing reads: settle applies what is posted to it at once (the
//     mmu does the same for a finished CPU).
//   - An invalidation that matches no location whose descriptor software
//     can write removes only translations a walk would give back unchanged
//     (a stale clean entry re-checks its descriptor in hardware before a
//     write): settle applies it at once.
//   - A delivery commutes with everything but its target's access to a
//     location it matches, its target's fill of one, and its issuer's DSB:
//     it is offered just before such an access, as part of a fill (below),
//     and the DSB step applies what is left (completeTLBIs).
//   - A fill commutes with everything but its CPU's access to the location
//     (which fills the same entry from the same descriptor: the fill is
//     absorbed), a delivery that matches it (which kills it) and a change
//     of the descriptor. So a fill that matters is one just before a step
//     that may change the descriptor — a store to pte_l, or a store to l
//     while l is clean (valid, DBM, AP[2] set), which dirties it in
//     hardware. Such a step is offered in variants: each CPU that may
//     cache l leaves its TLB alone or fills l first, after applying any
//     subset of its pending invalidations that match l.
//   - A thread whose whole future no outcome can see — it names no
//     register of the condition, takes no fault a fault atom names, issues
//     no TLBI, touches no descriptor, has no loop ahead, and writes only
//     data no other thread will read into a live register — is finished
//     at once (quietNow). Without TTHM=HA/HD no access updates a
//     descriptor, so its accesses change only its own TLB.
//   - Only locations whose descriptor software can write are filled
//     speculatively (for the others a fill is the fill an access makes),
//     and only descriptors with AF set (a speculative AF update is not
//     modelled).

// transition is one thing that can happen next.
type transition struct {
	kind   uint8 // tStep, tDeliver, tFill
	cpu    int
	arg    int   // tDeliver: pending index; tFill: location
	lo, hi int32 // tStep: the fills to make first, frame.pre[lo:hi]
}

const (
	tStep uint8 = iota
	tDeliver
	tFill
)

// preAct is a fill made just before a step: deliver the pending
// invalidations in mask (indices into the CPU's pending list), then fill.
type preAct struct {
	cpu  int
	mask uint32
	loc  int
}

// maxMatching bounds the pending invalidations per CPU whose subsets the
// fill variants enumerate.
const maxMatching = 16

// settle runs what cannot change an outcome's reachability at once:
// thread-local instructions, and the deliveries that cannot matter.
func (e *explorer) settle() error {
	defer e.listPending()
	w := e.w
	if e.opt.noReduce {
		return nil
	}
	for changed := true; changed; {
		changed = false
		for i := range w.th {
			for !w.th[i].done && w.isLocal(i) {
				if err := w.step(i); err != nil {
					return err
				}
				changed = true
			}
			if !w.th[i].done && w.quietNow(i) {
				w.th[i].done = true // nothing it does from here on can be seen
				changed = true
			}
		}
		for i, c := range w.cpus {
			if c.NumPending() == 0 {
				continue
			}
			if !w.tlbMatters(i) {
				for c.ApplyPending(0) {
				}
				changed = true
				continue
			}
			e.pend = e.pending(c)
			for j := len(e.pend) - 1; j >= 0; j-- {
				if !w.invalMatters(e.pend[j]) {
					c.ApplyPending(j)
					changed = true
				}
			}
		}
	}
	return nil
}

// transitions appends what can happen next (after settle) to out, and the
// fills of step variants to fr.pre.
func (e *explorer) transitions(fr *frame) {
	w := e.w
	fr.trans, fr.pre = fr.trans[:0], fr.pre[:0]
	if e.opt.noReduce {
		e.allTransitions(fr)
		return
	}
	for i := range w.th {
		th := &w.th[i]
		e.accessNext[i] = -1
		if th.done {
			continue
		}
		in := &w.t.Threads[i].Instrs[th.pc]
		change := -1
		if in.isMem() {
			addr := w.effAddr(i, in)
			if l := w.lay.locOfPTEAddr(addr); l >= 0 && in.op != opLdr {
				change = l
			} else if l := w.lay.locOfVA(addr); l >= 0 {
				e.accessNext[i] = l
				if d := w.lay.slot[l].Load(); in.op != opLdr && d.Valid() && d.DBM() && d.Rdonly() {
					change = l
				}
			}
		}
		if change >= 0 && w.mutable[change] && e.opt.Speculative {
			e.stepVariants(fr, i, change)
		} else {
			fr.trans = append(fr.trans, transition{kind: tStep, cpu: i})
		}
	}
	for i, c := range w.cpus {
		l := e.accessNext[i]
		if l < 0 || !w.mutable[l] || c.NumPending() == 0 {
			continue
		}
		pend := e.pendOf[i]
		for j, inv := range pend {
			if w.invalMatches(inv, l) && !slices.Contains(pend[:j], inv) {
				fr.trans = append(fr.trans, transition{kind: tDeliver, cpu: i, arg: j})
			}
		}
	}
}

// stepVariants appends thread i's step, which may change location l's
// descriptor, in every variant of the fills just before it.
func (e *explorer) stepVariants(fr *frame, i, l int) {
	w := e.w
	d := w.lay.slot[l].Load()
	fillable := d.Valid() && d.Young()
	// opts[k]: CPU k's choices besides leaving its TLB alone.
	opts := e.opts[:0]
	for k, c := range w.cpus {
		var mine []preAct
		if fillable && w.tlbMatters(k) {
			_, cached := c.Probe(w.lay.va(l))
			var match []int
			for j, inv := range e.pendOf[k] {
				if j < 32 && w.invalMatches(inv, l) && len(match) < maxMatching {
					match = append(match, j)
				}
			}
			for sub := uint32(0); sub < 1<<len(match); sub++ {
				if cached && sub == 0 {
					continue // the entry is there: a fill needs it gone first
				}
				var mask uint32
				for b, j := range match {
					if sub&(1<<b) != 0 {
						mask |= 1 << j
					}
				}
				mine = append(mine, preAct{cpu: k, mask: mask, loc: l})
			}
		}
		opts = append(opts, mine)
	}
	e.opts = opts
	// Every combination: choice[k] is 0 (nothing) or 1+index into opts[k].
	choice := e.choice[:0]
	for range opts {
		choice = append(choice, 0)
	}
	e.choice = choice
	for {
		lo := int32(len(fr.pre))
		for k, ch := range choice {
			if ch > 0 {
				fr.pre = append(fr.pre, opts[k][ch-1])
			}
		}
		fr.trans = append(fr.trans, transition{kind: tStep, cpu: i, lo: lo, hi: int32(len(fr.pre))})
		k := 0
		for ; k < len(choice); k++ {
			if choice[k] < len(opts[k]) {
				choice[k]++
				break
			}
			choice[k] = 0
		}
		if k == len(choice) {
			return
		}
	}
}

// allTransitions is the unreduced choice set (Options.noReduce).
func (e *explorer) allTransitions(fr *frame) {
	w := e.w
	for i := range w.th {
		if w.enabled(i, false) {
			fr.trans = append(fr.trans, transition{kind: tStep, cpu: i})
		}
	}
	for i, c := range w.cpus {
		pend := e.pendOf[i]
		for j, inv := range pend {
			if !slices.Contains(pend[:j], inv) {
				fr.trans = append(fr.trans, transition{kind: tDeliver, cpu: i, arg: j})
			}
		}
		if !e.opt.Speculative {
			continue
		}
		for l := range w.lay.pfn {
			d := w.lay.slot[l].Load()
			if !d.Valid() || !d.Young() {
				continue // no fill, or one that would set AF: not speculated
			}
			if _, hit := c.Probe(w.lay.va(l)); !hit {
				fr.trans = append(fr.trans, transition{kind: tFill, cpu: i, arg: l})
			}
		}
	}
}

// apply makes transition tr happen.
func (e *explorer) apply(fr *frame, tr transition) error {
	w := e.w
	switch tr.kind {
	case tStep:
		for _, p := range fr.pre[tr.lo:tr.hi] {
			c := w.cpus[p.cpu]
			for j := 31; j >= 0; j-- { // highest first: lower indices stay put
				if p.mask&(1<<j) != 0 {
					c.ApplyPending(j)
				}
			}
			c.Prefetch(w.lay.va(p.loc))
		}
		if !e.opt.noReduce && w.nextOp(tr.cpu) == opDSB {
			e.completeTLBIs(tr.cpu)
		}
		return w.step(tr.cpu)
	case tDeliver:
		w.cpus[tr.cpu].ApplyPending(tr.arg)
	case tFill:
		w.cpus[tr.cpu].Prefetch(w.lay.va(tr.arg))
	}
	return nil
}

// listPending records every CPU's pending invalidations for the state
// settle leaves (encode and transitions read them; nothing changes the
// state in between).
func (e *explorer) listPending() {
	for i, c := range e.w.cpus {
		e.pendOf[i] = e.pendOf[i][:0]
		if c.NumPending() != 0 {
			e.pendOf[i] = c.Pending(e.pendOf[i])
		}
	}
}

// pending lists c's pending invalidations into the scratch buffer.
func (e *explorer) pending(c *mmu.CPU) []mmu.Invalidation {
	if c.NumPending() == 0 {
		return e.pend[:0]
	}
	return c.Pending(e.pend[:0])
}

// completeTLBIs applies, on every other CPU, what CPU i issued and that CPU
// has not applied yet: a DSB on i waits for exactly that, and nothing
// after the DSB can tell in which order the targets did it.
func (e *explorer) completeTLBIs(i int) {
	for k, c := range e.w.cpus {
		if k == i || c.NumPending() == 0 {
			continue // a DSB applies its own CPU's itself
		}
		e.pend = e.pending(c)
		for j := len(e.pend) - 1; j >= 0; j-- {
			if e.pend[j].Issuer == i {
				c.ApplyPending(j)
			}
		}
	}
}
