package litmus

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mmubench/mmubench/pagetable"
)

// Result is what an exploration found.
type Result struct {
	Test   *Test
	States []State // the distinct final states, sorted
	// Pos and Neg count the final states where the condition's
	// proposition holds and where it does not. (herd7 counts candidate
	// executions; an operational search has no such unit, so these are
	// distinct final states and Pos+Neg is States' length.)
	Pos, Neg int
	Explored int // distinct intermediate states visited
	Elapsed  time.Duration
}

// State is one final state as herd7 prints it.
type State struct {
	Line  string
	Holds bool     // the proposition holds in it
	key   []uint64 // the printed values, then the fault atoms: the sort order
}

func newResult(t *Test, w *world, e *explorer, elapsed time.Duration) *Result {
	r := &Result{Test: t, Explored: len(e.seen), Elapsed: elapsed}
	for line, f := range e.finals {
		h := w.eval(t.Cond.Prop, f)
		r.States = append(r.States, State{Line: line, Holds: h, key: w.stateKey(f)})
		if h {
			r.Pos++
		} else {
			r.Neg++
		}
	}
	// herd7 orders states by their values, location by location.
	slices.SortFunc(r.States, func(a, b State) int {
		if c := slices.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(a.Line, b.Line)
	})
	return r
}

// Ok is herd7's Ok/No: the condition is validated.
func (r *Result) Ok() bool {
	switch r.Test.Cond.Q {
	case NotExists:
		return r.Pos == 0
	case Forall:
		return r.Neg == 0
	}
	return r.Pos > 0
}

// Verdict is what the model says of the proposition, in kinds.txt's words:
// Allowed if some final state satisfies it, Forbidden if none does, and,
// for a forall condition, Required if every one does.
func (r *Result) Verdict() Kind {
	switch {
	case r.Test.Cond.Q == Forall && r.Neg == 0:
		return Required
	case r.Pos > 0:
		return Allowed
	}
	return Forbidden
}

// Write prints the result as herd7 does; timing adds the Time line.
func (r *Result) Write(w io.Writer, timing bool) error {
	t := r.Test
	var b strings.Builder
	fmt.Fprintf(&b, "Test %s %s\n", t.Name, condKind(t.Cond.Q))
	fmt.Fprintf(&b, "States %d\n", len(r.States))
	for _, s := range r.States {
		b.WriteString(s.Line + "\n")
	}
	if r.Ok() {
		b.WriteString("Ok\n")
	} else {
		b.WriteString("No\n")
	}
	pos, neg := r.Pos, r.Neg
	if t.Cond.Q == NotExists {
		pos, neg = neg, pos
	}
	fmt.Fprintf(&b, "Witnesses\nPositive: %d Negative: %d\n", pos, neg)
	fmt.Fprintf(&b, "Condition %s\n", t.condString())
	obs := "Sometimes"
	switch {
	case r.Pos == 0:
		obs = "Never"
	case r.Neg == 0:
		obs = "Always"
	}
	fmt.Fprintf(&b, "Observation %s %s %d %d\n", t.Name, obs, r.Pos, r.Neg)
	if timing {
		fmt.Fprintf(&b, "Time %s %.2f\n", t.Name, r.Elapsed.Seconds())
	}
	if t.Hash != "" {
		fmt.Fprintf(&b, "Hash=%s\n", t.Hash)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// condKind is herd7's name for a quantifier's kind.
func condKind(q Quant) Kind {
	switch q {
	case NotExists:
		return Forbidden
	case Forall:
		return Required
	}
	return Allowed
}

// style is how a location's value prints.
type style uint8

const (
	sInt style = iota
	sAddr
	sPTE
)

// printed is a location a state line shows.
type printed struct {
	loc   Loc
	style style
}

// printLocs lists the locations the condition and the locations line name,
// registers first (by thread, then number), then memory, then descriptors,
// with how each prints.
func (t *Test) printLocs() []printed {
	styles := map[Loc]style{}
	key := func(l Loc) Loc {
		l.W = false
		return l
	}
	var order []Loc
	note := func(l Loc, s style) {
		k := key(l)
		if _, ok := styles[k]; !ok {
			order = append(order, l)
		}
		if l.Kind == LPTE || t.PTETyped[k] {
			s = sPTE
		}
		styles[k] = max(styles[k], s)
	}
	var walk func(q *Prop)
	walk = func(q *Prop) {
		if q.Op == PEq {
			s := sInt
			switch q.Val.Kind {
			case VVA, VPTEAddr, VPA:
				s = sAddr
			case VPTE:
				s = sPTE
			}
			note(q.Loc, s)
		}
		for _, k := range q.Kids {
			walk(k)
		}
	}
	walk(t.Cond.Prop)
	for _, l := range t.Extra {
		note(l, sInt)
	}
	out := make([]printed, 0, len(order))
	for _, l := range order {
		out = append(out, printed{l, styles[key(l)]})
	}
	slices.SortStableFunc(out, func(a, b printed) int {
		if c := cmp.Compare(a.loc.Kind, b.loc.Kind); c != 0 {
			return c
		}
		if a.loc.Kind == LReg {
			if c := cmp.Compare(a.loc.Thread, b.loc.Thread); c != 0 {
				return c
			}
			return cmp.Compare(a.loc.Reg, b.loc.Reg)
		}
		return strings.Compare(t.Locs[a.loc.Loc], t.Locs[b.loc.Loc])
	})
	return out
}

// faultAtoms lists the distinct fault atoms of the condition.
func (t *Test) faultAtoms() []FaultAtom {
	var out []FaultAtom
	var walk func(q *Prop)
	walk = func(q *Prop) {
		if q.Op == PFault && !slices.Contains(out, q.Fault) {
			out = append(out, q.Fault)
		}
		for _, k := range q.Kids {
			walk(k)
		}
	}
	walk(t.Cond.Prop)
	return out
}

func (t *Test) locName(l Loc) string {
	switch l.Kind {
	case LReg:
		r := "X"
		if l.W {
			r = "W"
		}
		return fmt.Sprintf("%d:%s%d", l.Thread, r, l.Reg)
	case LPTE:
		return "[PTE(" + t.Locs[l.Loc] + ")]"
	}
	return "[" + t.Locs[l.Loc] + "]"
}

func (t *Test) faultString(f FaultAtom) string {
	s := "fault(P" + strconv.Itoa(f.Thread)
	if f.Label != "" {
		s += ":" + f.Label
	}
	if f.Loc >= 0 {
		s += "," + t.Locs[f.Loc]
	}
	switch f.Type {
	case 1:
		s += ",MMU:Translation"
	case 2:
		s += ",MMU:Permission"
	}
	return s + ")"
}

// pteString prints a descriptor value with herd7's fields, the defaults
// left out.
func (t *Test) pteString(v PTEVal) string {
	s := "(oa:PA(" + t.Locs[v.OA] + ")"
	for _, f := range []struct {
		name     string
		val, def bool
	}{{"af", v.AF, true}, {"db", v.DB, true}, {"dbm", v.DBM, false}, {"valid", v.Valid, true}} {
		if f.val != f.def {
			s += fmt.Sprintf(", %s:%d", f.name, b2i(f.val))
		}
	}
	return s + ")"
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (t *Test) valueString(v Value) string {
	switch v.Kind {
	case VVA:
		return t.Locs[v.Loc]
	case VPTEAddr:
		return "PTE(" + t.Locs[v.Loc] + ")"
	case VPA:
		return "PA(" + t.Locs[v.Loc] + ")"
	case VPTE:
		return t.pteString(v.PTE)
	}
	return strconv.FormatInt(int64(v.N), 10)
}

// condString prints the condition as herd7 does.
func (t *Test) condString() string {
	q := map[Quant]string{Exists: "exists", NotExists: "~exists", Forall: "forall"}[t.Cond.Q]
	return q + " (" + t.propString(t.Cond.Prop, 0) + ")"
}

// propString prints q inside a connective of precedence above (0 top,
// 1 implies, 2 or, 3 and), parenthesised as herd7's printer does.
func (t *Test) propString(q *Prop, above int) string {
	join := func(sep string, here int) string {
		var parts []string
		for _, k := range q.Kids {
			parts = append(parts, t.propString(k, here))
		}
		s := strings.Join(parts, sep)
		if above != 0 && above != here && !(above == 2 && here == 3) {
			s = "(" + s + ")"
		}
		return s
	}
	switch q.Op {
	case PTrue:
		return "true"
	case PFalse:
		return "false"
	case PEq:
		return t.locName(q.Loc) + "=" + t.valueString(q.Val)
	case PFault:
		return t.faultString(q.Fault)
	case PNot:
		return "not (" + t.propString(q.Kids[0], 0) + ")"
	case PAnd:
		return join(` /\ `, 3)
	case POr:
		return join(` \/ `, 2)
	}
	return join(" => ", 1)
}

// stateLine prints a final state: the printed locations, then the
// condition's fault atoms, present or absent.
func (w *world) stateLine(f *final) string {
	t := w.t
	if w.printed == nil {
		w.printed, w.faults = t.printLocs(), t.faultAtoms()
	}
	var parts []string
	for _, p := range w.printed {
		v := w.locValue(p.loc, f)
		var s string
		switch p.style {
		case sPTE:
			if d, ok := w.lay.decode(pagetable.PTE(v)); ok {
				s = t.pteString(d)
			} else {
				s = fmt.Sprintf("%#x", v)
			}
		case sAddr:
			switch {
			case w.lay.locOfVA(v) >= 0 && v == w.lay.va(w.lay.locOfVA(v)):
				s = t.Locs[w.lay.locOfVA(v)]
			case w.lay.locOfPTEAddr(v) >= 0:
				s = "PTE(" + t.Locs[w.lay.locOfPTEAddr(v)] + ")"
			default:
				s = strconv.FormatInt(int64(v), 10)
			}
		default:
			s = strconv.FormatInt(int64(v), 10)
			if p.loc.W {
				s = strconv.FormatInt(int64(int32(v)), 10)
			}
		}
		parts = append(parts, t.locName(p.loc)+"="+s+";")
	}
	for _, a := range w.faults {
		s := t.faultString(a) + ";"
		if !faulted(f, a) {
			s = "~" + s
		}
		parts = append(parts, s)
	}
	if w.observeAll {
		for i := range f.th {
			parts = append(parts, fmt.Sprintf("faults(P%d)=%v;", i, f.th[i].faults))
		}
	}
	return strings.Join(parts, " ")
}

// stateKey is a final state's printed values, then 1 for each fault atom
// that holds: what states sort by.
func (w *world) stateKey(f *final) []uint64 {
	var k []uint64
	for _, p := range w.printed {
		k = append(k, w.locValue(p.loc, f))
	}
	for _, a := range w.faults {
		v := uint64(0)
		if faulted(f, a) {
			v = 1
		}
		k = append(k, v)
	}
	return k
}

// locValue reads a location in a final state.
func (w *world) locValue(l Loc, f *final) uint64 {
	switch l.Kind {
	case LReg:
		v := f.th[l.Thread].regs[l.Reg]
		if l.W {
			v &= 0xffff_ffff
		}
		return v
	case LPTE:
		return f.pte[l.Loc]
	}
	return f.mem[l.Loc]
}

func faulted(f *final, a FaultAtom) bool {
	for _, r := range f.th[a.Thread].faults {
		if (a.PC < 0 || int(r.pc) == a.PC) && (a.Loc < 0 || int(r.loc) == a.Loc) && (a.Type == 0 || r.kind == a.Type) {
			return true
		}
	}
	return false
}

// eval evaluates a proposition in a final state.
func (w *world) eval(q *Prop, f *final) bool {
	switch q.Op {
	case PTrue:
		return true
	case PFalse:
		return false
	case PEq:
		a, b := w.locValue(q.Loc, f), w.lay.word(q.Val)
		if q.Loc.W {
			b &= 0xffff_ffff
		}
		return a == b
	case PFault:
		return faulted(f, q.Fault)
	case PNot:
		return !w.eval(q.Kids[0], f)
	case PAnd:
		for _, k := range q.Kids {
			if !w.eval(k, f) {
				return false
			}
		}
		return true
	case POr:
		for _, k := range q.Kids {
			if w.eval(k, f) {
				return true
			}
		}
		return false
	}
	return !w.eval(q.Kids[0], f) || w.eval(q.Kids[1], f)
}
