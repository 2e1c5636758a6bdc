package litmus

import (
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/pagetable"
)

// Static analyses of a test's threads, and the state-dependent questions
// the reductions ask of them (see transitions.go): which registers and
// data can still matter, which invalidations can, whether a thread's
// future can be seen at all.

// invalMatters reports whether an invalidation can remove the translation
// of a location whose descriptor software may change. One that cannot
// removes only translations a walk would give back unchanged (the AF and
// dirty updates aside, which a stale entry re-checks in hardware), so
// where it is applied changes nothing but when its issuer's DSB may
// complete: the explorer applies it at once.
func (w *world) invalMatters(inv mmu.Invalidation) bool {
	for l, m := range w.mutable {
		if m && w.invalMatches(inv, l) {
			return true
		}
	}
	return false
}

// invalMatches reports whether inv removes location l's translation.
func (w *world) invalMatches(inv mmu.Invalidation, l int) bool {
	switch inv.Kind {
	case mmu.VMALLE1IS, mmu.VMALLE1:
		return true
	case mmu.ASIDE1IS, mmu.ASIDE1:
		return inv.ASID == asid
	}
	va := w.lay.va(l)
	return inv.ASID == asid && va >= inv.VA && va < inv.VA+max(inv.Pages, 1)<<pagetable.PageShift
}

// analyse computes memAhead and regsUsed.
func (w *world) analyse() {
	condRegs := map[int][]uint8{}
	var walk func(q *Prop)
	walk = func(q *Prop) {
		if q.Op == PEq && q.Loc.Kind == LReg {
			condRegs[q.Loc.Thread] = append(condRegs[q.Loc.Thread], uint8(q.Loc.Reg))
		}
		for _, k := range q.Kids {
			walk(k)
		}
	}
	w.condMem = make([]bool, len(w.t.Locs))
	var mems func(q *Prop)
	mems = func(q *Prop) {
		if q.Op == PEq && q.Loc.Kind == LMem {
			w.condMem[q.Loc.Loc] = true
		}
		for _, k := range q.Kids {
			mems(k)
		}
	}
	if w.t.Cond.Prop != nil {
		walk(w.t.Cond.Prop)
		mems(w.t.Cond.Prop)
	}
	for _, l := range w.t.Extra {
		switch l.Kind {
		case LReg:
			condRegs[l.Thread] = append(condRegs[l.Thread], uint8(l.Reg))
		case LMem:
			w.condMem[l.Loc] = true
		}
	}
	for ti, th := range w.t.Threads {
		n := len(th.Instrs)
		ahead := make([]bool, n+1)
		for changed := true; changed; {
			changed = false
			for pc := n - 1; pc >= 0; pc-- {
				in := &th.Instrs[pc]
				v := in.isMem() || ahead[pc+1] && in.op != opB
				if in.label != "" {
					v = v || ahead[in.target]
				}
				if v && !ahead[pc] {
					ahead[pc], changed = true, true
				}
			}
		}
		w.memAhead = append(w.memAhead, ahead)
		var cl uint64
		for _, r := range condRegs[ti] {
			cl |= 1 << r
		}
		w.condLive = append(w.condLive, cl)
		w.live = append(w.live, liveness(th, cl))
		w.readsAhead = append(w.readsAhead, w.reads(ti))
		q, wr := w.quiet(ti)
		w.quietAhead, w.writesAhead = append(w.quietAhead, q), append(w.writesAhead, wr)
		var used [zr]bool
		for r := range th.Init {
			used[r] = true
		}
		for _, r := range condRegs[ti] {
			used[r] = true
		}
		for _, in := range th.Instrs {
			for _, r := range []reg{in.rd, in.rn, in.src.r} {
				if r.n < zr {
					used[r.n] = true
				}
			}
		}
		var regs []uint8
		for r, u := range used {
			if u {
				regs = append(regs, uint8(r))
			}
		}
		w.regsUsed = append(w.regsUsed, regs)
	}
}

// tlbMatters reports whether CPU i's TLB can still change an outcome: its
// thread has not finished and may still access memory.
func (w *world) tlbMatters(i int) bool {
	th := &w.th[i]
	return !th.done && w.memAhead[i][th.pc]
}

// flagsBit is the flags' bit in a liveness set.
const flagsBit = 1 << 32

// regBit is r's bit in a liveness set (0 for the zero register).
func regBit(r reg) uint64 {
	if r.n == zr {
		return 0
	}
	return 1 << r.n
}

// uses and kills are what an instruction reads and surely overwrites. A
// load or atomic does not surely overwrite its destination: if it faults
// (Variant=Handled) the register keeps its value.
func uses(in *Instr) (use, kill uint64) {
	src := uint64(0)
	if !in.src.imm {
		src = regBit(in.src.r)
	}
	switch in.op {
	case opMov:
		return src, regBit(in.rd)
	case opALU:
		return regBit(in.rn) | src, regBit(in.rd)
	case opCmp:
		return regBit(in.rn) | src, flagsBit
	case opBcond:
		return flagsBit, 0
	case opCset:
		return flagsBit, regBit(in.rd)
	case opCbz, opCbnz:
		return regBit(in.rn), 0
	case opLdr:
		return regBit(in.rn) | src, 0
	case opStr:
		return regBit(in.rd) | regBit(in.rn) | src, 0
	case opRMW:
		return regBit(in.rn) | src, 0
	case opTLBI:
		if in.hasXt {
			return regBit(in.rn), 0
		}
	}
	return 0, 0
}

// liveness computes each pc's live-in registers; always are live
// everywhere.
func liveness(th *Thread, always uint64) []uint64 {
	n := len(th.Instrs)
	live := make([]uint64, n+1)
	live[n] = always
	for changed := true; changed; {
		changed = false
		for pc := n - 1; pc >= 0; pc-- {
			in := &th.Instrs[pc]
			var out uint64
			if in.op != opB {
				out = live[pc+1]
			}
			if in.label != "" {
				out |= live[in.target]
			}
			use, kill := uses(in)
			v := use | out&^kill | always
			if v != live[pc] {
				live[pc], changed = v, true
			}
		}
	}
	return live
}

// faultMatters reports whether a fault of thread t is one a fault atom of
// the condition can see.
func (w *world) faultMatters(t int, f faultRec) bool {
	if w.observeAll {
		return true
	}
	if w.faults == nil && w.printed == nil {
		w.printed, w.faults = w.t.printLocs(), w.t.faultAtoms()
	}
	for _, a := range w.faults {
		if a.Thread == t && (a.PC < 0 || int(a.PC) == int(f.pc)) && (a.Loc < 0 || int(a.Loc) == int(f.loc)) && (a.Type == 0 || a.Type == f.kind) {
			return true
		}
	}
	return false
}

// reads computes readsAhead for thread ti. An address is known statically
// when its registers are never written by the thread (they keep their
// initial values); otherwise the load may read any location.
func (w *world) reads(ti int) [][]bool {
	th := w.t.Threads[ti]
	n := len(th.Instrs)
	nl := len(w.t.Locs)
	// own[pc]: what instruction pc itself reads; nil = any location.
	own := make([][]bool, n)
	for pc := range th.Instrs {
		in := &th.Instrs[pc]
		own[pc] = make([]bool, nl)
		reads := in.op == opRMW || in.op == opLdr && w.live[ti][min(pc+1, n)]&regBit(in.rd) != 0
		if !reads {
			continue
		}
		addr, ok := w.staticAddr(ti, in)
		l := w.lay.locOfVA(addr)
		switch {
		case !ok || l >= 0 && w.mutable[l]:
			// Unknown, or through a translation that may be remapped (or
			// stale): any location's page.
			own[pc] = nil
		case l >= 0:
			own[pc][l] = true
		}
	}
	return aheadUnion(th, own, nl)
}

// staticAddr is the address memory instruction in of thread ti always
// accesses, if its registers are never written (they keep their initial
// values).
func (w *world) staticAddr(ti int, in *Instr) (uint64, bool) {
	th := w.t.Threads[ti]
	if w.written == nil {
		w.written = make([]uint64, len(w.t.Threads))
		for i, t := range w.t.Threads {
			for k := range t.Instrs {
				x := &t.Instrs[k]
				_, kill := uses(x)
				w.written[i] |= kill
				if x.op == opLdr || x.op == opRMW && x.ret {
					w.written[i] |= regBit(x.rd)
				}
			}
		}
	}
	constVal := func(r reg) (uint64, bool) {
		if regBit(r)&w.written[ti] != 0 {
			return 0, false
		}
		v := uint64(0)
		if init, ok := th.Init[int(r.n)]; ok && r.n != zr {
			v = w.lay.word(init)
		}
		if r.w {
			v &= 0xffff_ffff
		}
		return v, true
	}
	base, ok := constVal(in.rn)
	if !ok || in.op == opRMW {
		return base, ok
	}
	off := in.src.v
	if !in.src.imm {
		if off, ok = constVal(in.src.r); !ok {
			return 0, false
		}
	}
	return base + off, true
}

// aheadUnion propagates per-instruction location sets backwards over the
// thread's control flow: ahead[pc] is the union over what is reachable
// from pc (nil = any location).
func aheadUnion(th *Thread, own [][]bool, nl int) [][]bool {
	n := len(th.Instrs)
	ahead := make([][]bool, n+1)
	ahead[n] = make([]bool, nl)
	for pc := range n {
		ahead[pc] = make([]bool, nl)
	}
	union := func(dst, src []bool) ([]bool, bool) {
		if dst == nil {
			return nil, false
		}
		if src == nil {
			return nil, true
		}
		ch := false
		for i, v := range src {
			if v && !dst[i] {
				dst[i], ch = true, true
			}
		}
		return dst, ch
	}
	for changed := true; changed; {
		changed = false
		for pc := n - 1; pc >= 0; pc-- {
			in := &th.Instrs[pc]
			var c1, c2, c3 bool
			ahead[pc], c1 = union(ahead[pc], own[pc])
			if in.op != opB {
				ahead[pc], c2 = union(ahead[pc], ahead[pc+1])
			}
			if in.label != "" {
				ahead[pc], c3 = union(ahead[pc], ahead[in.target])
			}
			changed = changed || c1 || c2 || c3
		}
	}
	return ahead
}

// quiet computes quietAhead and writesAhead for thread ti.
func (w *world) quiet(ti int) ([]bool, [][]bool) {
	th := w.t.Threads[ti]
	n := len(th.Instrs)
	nl := len(w.t.Locs)
	ok := make([]bool, n+1)
	own := make([][]bool, n)
	for pc := range th.Instrs {
		in := &th.Instrs[pc]
		own[pc] = make([]bool, nl)
		switch in.op {
		case opNop, opMov, opALU, opCmp, opCset, opBarrier, opDSB, opDSBST:
			ok[pc] = true
		case opB, opBcond, opCbz, opCbnz:
			ok[pc] = in.target > pc
		case opLdr, opStr, opRMW:
			addr, known := w.staticAddr(ti, in)
			l := w.lay.locOfVA(addr)
			// With TTHM=HA/HD a load may set AF, a store dirty state.
			ok[pc] = known && w.lay.locOfPTEAddr(addr) < 0 && !w.hwUpdates
			if ok[pc] && in.op != opLdr && l >= 0 {
				if w.mutable[l] {
					own[pc] = nil // through a translation that may be remapped: any page
				} else {
					own[pc][l] = true
				}
			}
		}
		for _, a := range w.t.faultAtoms() {
			if a.Thread == ti && (a.PC < 0 || a.PC == pc) {
				ok[pc] = false
			}
		}
	}
	ok[n] = true
	// quiet[pc]: every instruction reachable from pc is ok.
	quiet := make([]bool, n+1)
	quiet[n] = true
	for pc := n - 1; pc >= 0; pc-- {
		in := &th.Instrs[pc]
		q := ok[pc] && (in.op == opB || quiet[pc+1])
		if in.label != "" {
			q = q && in.target > pc && quiet[in.target]
		}
		quiet[pc] = q
	}
	if w.condLive[ti] != 0 {
		clear(quiet)
	}
	return quiet, aheadUnion(th, own, nl)
}

// quietNow reports whether thread ti's future is invisible now: quiet
// ahead, and no other thread can still read live, nor the condition see,
// what it may write.
func (w *world) quietNow(ti int) bool {
	pc := w.th[ti].pc
	if !w.quietAhead[ti][pc] {
		return false
	}
	wr := w.writesAhead[ti][pc]
	if wr == nil {
		return false // it may write anywhere
	}
	for l, x := range wr {
		if x && w.dataLiveExcept(l, ti) {
			return false
		}
	}
	return true
}

// dataLive reports whether location l's data can still matter: the
// condition names it, or a thread may still read it into a live register.
func (w *world) dataLive(l int) bool { return w.dataLiveExcept(l, -1) }

// dataLiveExcept is dataLive ignoring thread skip's reads.
func (w *world) dataLiveExcept(l, skip int) bool {
	if w.condMem[l] {
		return true
	}
	for i := range w.th {
		th := &w.th[i]
		if th.done || i == skip {
			continue
		}
		r := w.readsAhead[i][th.pc]
		if r == nil || r[l] {
			return true
		}
	}
	return false
}
