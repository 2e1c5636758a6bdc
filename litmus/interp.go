package litmus

import (
	"fmt"
	"sync/atomic"

	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/pagetable"
)

// threadState is one thread's architectural state.
type threadState struct {
	pc     int
	done   bool
	nzcv   uint8 // N=8, Z=4, C=2, V=1
	regs   [zr + 1]uint64
	faults []faultRec // sorted, no duplicates
}

// faultRec is a fault an instruction took.
type faultRec struct {
	pc, loc int16 // loc: the location whose page the address is in, or -1
	kind    uint8 // an mmu.Fault
}

func (s *threadState) get(r reg) uint64 {
	if r.n == zr {
		return 0
	}
	v := s.regs[r.n]
	if r.w {
		v &= 0xffff_ffff
	}
	return v
}

func (s *threadState) set(r reg, v uint64) {
	if r.n == zr {
		return
	}
	if r.w {
		v &= 0xffff_ffff
	}
	s.regs[r.n] = v
}

func (s *threadState) val(o operand, w bool) uint64 {
	v := o.v
	if !o.imm {
		v = s.get(o.r)
	}
	if w {
		v &= 0xffff_ffff
	}
	return v
}

// addFault records a fault, keeping the list sorted and duplicate-free.
func (s *threadState) addFault(f faultRec) {
	i := 0
	for i < len(s.faults) && less(s.faults[i], f) {
		i++
	}
	if i < len(s.faults) && s.faults[i] == f {
		return
	}
	s.faults = append(s.faults, faultRec{})
	copy(s.faults[i+1:], s.faults[i:])
	s.faults[i] = f
}

func less(a, b faultRec) bool {
	if a.pc != b.pc {
		return a.pc < b.pc
	}
	if a.loc != b.loc {
		return a.loc < b.loc
	}
	return a.kind < b.kind
}

// unsupportedError is something a test does at run time that the runner
// does not model.
type unsupportedError struct{ what string }

func (e *unsupportedError) Error() string { return e.what }

func unsupportedf(format string, a ...any) error {
	return &unsupportedError{fmt.Sprintf(format, a...)}
}

// isLocal reports whether thread ti's next instruction touches nothing
// but its own registers (or is a barrier with no effect on this machine)
// and does not jump backwards: the explorer runs such instructions at
// once (they commute with everything, and no cycle of the state graph
// consists of them alone).
func (w *world) isLocal(ti int) bool {
	th := &w.th[ti]
	in := &w.t.Threads[ti].Instrs[th.pc]
	switch in.op {
	case opNop, opMov, opALU, opCmp, opCset, opBarrier, opDSBST:
		return true
	case opB, opBcond, opCbz, opCbnz:
		return in.target > th.pc
	}
	return false
}

// enabled reports whether thread ti can take its next step: a DSB waits
// until every invalidation its CPU issued has been applied elsewhere,
// unless the explorer applies them as the DSB starts (completing).
func (w *world) enabled(ti int, completing bool) bool {
	th := &w.th[ti]
	if th.done {
		return false
	}
	return completing || w.nextOp(ti) != opDSB || w.cpus[ti].DSBComplete()
}

// nextOp is what thread ti's next instruction does.
func (w *world) nextOp(ti int) op { return w.t.Threads[ti].Instrs[w.th[ti].pc].op }

// step executes thread ti's next instruction on its CPU.
func (w *world) step(ti int) error {
	th := &w.th[ti]
	c := w.cpus[ti]
	ins := w.t.Threads[ti].Instrs
	in := &ins[th.pc]
	next := th.pc + 1
	switch in.op {
	case opNop, opBarrier:
	case opMov:
		th.set(in.rd, th.val(in.src, in.rd.w))
	case opALU:
		th.set(in.rd, alu(in.alu, th.get(reg{n: in.rn.n, w: in.rd.w}), th.val(in.src, in.rd.w), in.rd.w))
	case opCmp:
		th.nzcv = subFlags(th.get(in.rn), th.val(in.src, in.rn.w), in.rn.w)
	case opB:
		next = in.target
	case opBcond:
		if holds(th.nzcv, in.cond) {
			next = in.target
		}
	case opCbz, opCbnz:
		if (th.get(in.rn) == 0) == (in.op == opCbz) {
			next = in.target
		}
	case opCset:
		v := uint64(0)
		if holds(th.nzcv, in.cond) {
			v = 1
		}
		th.set(in.rd, v)
	case opLdr, opStr, opRMW:
		ok, err := w.memory(ti, in)
		if err != nil {
			return err
		}
		if !ok && !w.t.Handled {
			th.done = true
			return nil
		}
	case opDSB:
		c.DSBISH()
	case opDSBST:
		c.DSBISHST()
	case opTLBI:
		w.tlbi(c, in, th.get(in.rn))
	}
	th.pc = next
	if th.pc >= len(ins) {
		th.done = true
	}
	return nil
}

// tlbi issues a TLBI whose register operand is xt: VA[55:12] in bits
// 43:0, the ASID in bits 63:48.
func (w *world) tlbi(c *mmu.CPU, in *Instr, xt uint64) {
	va := (xt & (1<<44 - 1)) << pagetable.PageShift
	as := uint16(xt >> 48)
	if in.allASI {
		as = asid // the only ASID the test's translations have
	}
	switch in.tlbi {
	case mmu.VALE1IS:
		c.TLBIVALE1IS(as, va)
	case mmu.VAE1IS:
		c.TLBIVAE1IS(as, va)
	case mmu.ASIDE1IS:
		c.TLBIASIDE1IS(as)
	case mmu.VMALLE1IS:
		c.TLBIVMALLE1IS()
	case mmu.VALE1:
		c.TLBIVALE1(as, va)
	case mmu.VAE1:
		c.TLBIVAE1(as, va)
	case mmu.ASIDE1:
		c.TLBIASIDE1(as)
	case mmu.VMALLE1:
		c.TLBIVMALLE1()
	}
}

// memory performs a load, store or atomic; false if it faulted (the fault
// is recorded).
func (w *world) memory(ti int, in *Instr) (bool, error) {
	th := &w.th[ti]
	addr := w.effAddr(ti, in)
	if loc := w.lay.locOfPTEAddr(addr); loc >= 0 {
		return true, w.descriptor(ti, in, loc)
	}
	if addr >= pagetable.MaxVA {
		return false, unsupportedf("P%d: %s: an access to %#x, a kernel address that is no location's descriptor", ti, in.Text, addr)
	}
	if addr&7 != 0 {
		return false, unsupportedf("P%d: %s: an access not 8-byte aligned (%#x)", ti, in.Text, addr)
	}
	w.track(addr)
	if err := w.checkHardwareManagement(ti, in, addr); err != nil {
		return false, err
	}
	c := w.cpus[ti]
	w32 := in.rd.w
	if in.op == opRMW {
		w32 = in.src.r.w
	}
	var f mmu.Fault
	switch in.op {
	case opLdr:
		var v uint64
		if v, f = c.Load(addr); f == mmu.FaultNone {
			th.set(in.rd, v)
		}
	case opStr:
		f = c.Store(addr, th.get(in.rd))
	case opRMW:
		var old uint64
		if old, f = c.Load(addr); f == mmu.FaultNone {
			if w32 {
				old &= 0xffff_ffff
			}
			if f = c.Store(addr, rmw(in.rmw, old, th.get(in.src.r), w32)); f == mmu.FaultNone && in.ret {
				th.set(in.rd, old)
			}
		}
	}
	if f != mmu.FaultNone {
		th.addFault(faultRec{pc: int16(th.pc), loc: int16(w.lay.locOfVA(addr)), kind: uint8(f)})
		return false, nil
	}
	return true, nil
}

// effAddr is the address memory instruction in of thread ti accesses.
func (w *world) effAddr(ti int, in *Instr) uint64 {
	th := &w.th[ti]
	if in.op == opRMW {
		return th.get(in.rn)
	}
	return th.get(in.rn) + th.val(in.src, false)
}

// descriptor performs an access to location loc's descriptor: the kernel
// reading or writing a page table through its linear map.
func (w *world) descriptor(ti int, in *Instr, loc int) error {
	th := &w.th[ti]
	if in.rd.w || in.op == opRMW && in.src.r.w {
		return unsupportedf("P%d: %s: a 32-bit access to a descriptor", ti, in.Text)
	}
	s := w.lay.slot[loc]
	old := uint64(s.Load())
	var v uint64
	switch in.op {
	case opLdr:
		th.set(in.rd, old)
		return nil
	case opStr:
		v = th.get(in.rd)
	case opRMW:
		v = rmw(in.rmw, old, th.get(in.src.r), false)
		if in.ret {
			th.set(in.rd, old)
		}
	}
	if !w.mutable[loc] {
		return unsupportedf("P%d: %s writes the descriptor of %s, whose address the initial state never names", ti, in.Text, w.t.Locs[loc])
	}
	s.Store(pagetable.PTE(v))
	return nil
}

// checkHardwareManagement refuses an access that would make the hardware
// update a descriptor the test did not ask it to manage: the mmu always
// sets AF on a walk (TCR_EL1.HA) and dirties a clean DBM descriptor on a
// store (TCR_EL1.HD), where herd7 without TTHM=HA or HD takes an Access
// flag or permission fault. An execution that never makes such an access
// is the same either way.
func (w *world) checkHardwareManagement(ti int, in *Instr, va uint64) error {
	if w.t.HA && w.t.HD {
		return nil
	}
	l := w.lay.locOfVA(va)
	if l < 0 {
		return nil
	}
	write := in.op != opLdr
	var cached, clean bool
	w.cachedBuf = w.cpus[ti].AppendCached(w.cachedBuf[:0])
	for _, x := range w.cachedBuf {
		if x.Where != 3 && x.VA() == w.lay.va(l) {
			cached, clean = true, !x.Writable && x.DBM
		}
	}
	d := w.lay.slot[l].Load()
	if !w.t.HA && !cached && d.Valid() && !d.Young() {
		return unsupportedf("P%d: %s: an access through a descriptor with af:0 without TTHM=HA (the mmu sets the Access flag in hardware; software AF faults are not modelled)", ti, in.Text)
	}
	if !w.t.HD && write && (cached && clean || !cached && d.Valid() && d.DBM() && d.Rdonly()) {
		return unsupportedf("P%d: %s: a store through a clean descriptor (db:0, dbm:1) without TTHM=HD (the mmu updates dirty state in hardware)", ti, in.Text)
	}
	return nil
}

func alu(op aluOp, a, b uint64, w bool) uint64 {
	size := uint64(64)
	if w {
		size = 32
	}
	var r uint64
	switch op {
	case aluAdd:
		r = a + b
	case aluSub:
		r = a - b
	case aluEor:
		r = a ^ b
	case aluAnd:
		r = a & b
	case aluOrr:
		r = a | b
	case aluLsl:
		r = a << (b % size)
	case aluLsr:
		r = a >> (b % size)
	case aluAsr:
		if w {
			r = uint64(uint32(int32(uint32(a)) >> (b % size)))
		} else {
			r = uint64(int64(a) >> (b % size))
		}
	}
	if w {
		r &= 0xffff_ffff
	}
	return r
}

func rmw(op rmwOp, old, v uint64, w bool) uint64 {
	var r uint64
	switch op {
	case rmwSwp:
		r = v
	case rmwAdd:
		r = old + v
	case rmwClr:
		r = old &^ v
	case rmwEor:
		r = old ^ v
	case rmwSet:
		r = old | v
	}
	if w {
		r &= 0xffff_ffff
	}
	return r
}

// subFlags is NZCV of a - b.
func subFlags(a, b uint64, w bool) uint8 {
	bits := uint(63)
	if w {
		a, b, bits = a&0xffff_ffff, b&0xffff_ffff, 31
	}
	r := a - b
	if w {
		r &= 0xffff_ffff
	}
	var f uint8
	if r>>bits&1 == 1 {
		f |= 8
	}
	if r == 0 {
		f |= 4
	}
	if a >= b {
		f |= 2
	}
	if ((a^b)&(a^r))>>bits&1 == 1 {
		f |= 1
	}
	return f
}

func holds(nzcv uint8, c cc) bool {
	n, z, cy, v := nzcv&8 != 0, nzcv&4 != 0, nzcv&2 != 0, nzcv&1 != 0
	switch ccNames[c] {
	case "EQ":
		return z
	case "NE":
		return !z
	case "CS":
		return cy
	case "CC":
		return !cy
	case "MI":
		return n
	case "PL":
		return !n
	case "VS":
		return v
	case "VC":
		return !v
	case "HI":
		return cy && !z
	case "LS":
		return !(cy && !z)
	case "GE":
		return n == v
	case "LT":
		return n != v
	case "GT":
		return !z && n == v
	case "LE":
		return z || n != v
	}
	return true
}

// wordAt reads data cell (loc, word offset o).
func (w *world) wordAt(loc, o int) uint64 { return atomic.LoadUint64(&w.data[loc][o]) }
