package litmus

import "fmt"

// Test is one parsed litmus test.
type Test struct {
	Name string
	File string // where it was read from ("" for Parse)
	Hash string // the Hash= metadata line, echoed as herd7 does
	// Unsupported is the first construct the runner does not model (an
	// unknown instruction, a TLBI form, software Access flag management…);
	// "" if the test is runnable. The test is otherwise well formed.
	Unsupported string

	// Handled: a faulting instruction is skipped and its thread goes on
	// (Variant=Handled); otherwise a fault ends the thread (Variant=Fatal,
	// the default).
	Handled bool
	// HA, HD: TTHM=HA (hardware Access flag) or TTHM=HD (also hardware
	// dirty state). The mmu always manages both in hardware, so a test
	// that depends on either without saying so is unsupported.
	HA, HD bool

	Locs     []string // location names, in order of first mention
	locIdx   map[string]int
	InitMem  map[int]Value  // [x]=v: the word at x's physical location
	InitPTE  map[int]PTEVal // pte_x=(…)
	Threads  []*Thread
	Cond     Cond
	Extra    []Loc        // the locations [...] line
	PTETyped map[Loc]bool // registers declared pteval_t
}

// Thread is one column of the program.
type Thread struct {
	ID     int
	Instrs []Instr
	Labels map[string]int // label → index of the instruction it precedes
	Init   map[int]Value  // register number → initial value
}

// loc returns the index of location name, adding it if new.
func (t *Test) loc(name string) int {
	if i, ok := t.locIdx[name]; ok {
		return i
	}
	if t.locIdx == nil {
		t.locIdx = map[string]int{}
	}
	t.locIdx[name] = len(t.Locs)
	t.Locs = append(t.Locs, name)
	return len(t.Locs) - 1
}

// unsupported records the first unsupported construct.
func (t *Test) unsupported(format string, a ...any) {
	if t.Unsupported == "" {
		t.Unsupported = fmt.Sprintf(format, a...)
	}
}

// ValKind says what a symbolic value stands for.
type ValKind uint8

const (
	VInt     ValKind = iota // a number
	VVA                     // the virtual address of a location (x)
	VPTEAddr                // the address of a location's PTE (pte_x, PTE(x))
	VPA                     // the physical address of a location (phy_x, PA(x))
	VPTE                    // a descriptor value ((oa:PA(x), …))
)

// Value is a value as the test writes it; the runner's layout turns it
// into a 64-bit word.
type Value struct {
	Kind ValKind
	N    uint64 // VInt
	Loc  int    // VVA, VPTEAddr, VPA
	PTE  PTEVal // VPTE
}

// PTEVal is a level-3 descriptor in herd7's fields. Unset fields take
// herd's defaults: valid:1, af:1, db:1 (writable, dirty), dbm:0.
type PTEVal struct {
	OA                 int // location whose physical page it maps
	Valid, AF, DB, DBM bool
}

func defaultPTE(oa int) PTEVal { return PTEVal{OA: oa, Valid: true, AF: true, DB: true} }

// LocKind says what a condition location is.
type LocKind uint8

const (
	LReg LocKind = iota // P:Xn
	LMem                // x, [x]: the word at x's physical location
	LPTE                // pte_x, [PTE(x)]: x's descriptor
)

// Loc is a location a condition or a locations line names.
type Loc struct {
	Kind   LocKind
	Thread int // LReg
	Reg    int // LReg: 0..30
	W      bool
	Loc    int // LMem, LPTE
}

// Quant is a condition's quantifier.
type Quant uint8

const (
	Exists    Quant = iota // exists: some final state satisfies the proposition
	NotExists              // ~exists: none does
	Forall                 // forall: every one does
)

// Cond is the final condition.
type Cond struct {
	Q    Quant
	Prop *Prop
}

// PropOp is a proposition's connective.
type PropOp uint8

const (
	PTrue PropOp = iota
	PFalse
	PEq    // Loc = Val
	PFault // fault(P:L,x)
	PNot
	PAnd
	POr
	PImplies
)

// Prop is a proposition over a final state.
type Prop struct {
	Op    PropOp
	Line  int // where it starts, for errors
	Kids  []*Prop
	Loc   Loc
	Val   Value
	Fault FaultAtom
}

// FaultAtom is fault(Pn,x), fault(Pn:L,x) or fault(Pn:L,x,MMU:Kind).
type FaultAtom struct {
	Thread int
	Label  string // "" = any instruction
	PC     int    // the labelled instruction's index, or -1
	Loc    int    // -1 = any location
	Type   uint8  // 0 any, 1 translation, 2 permission (mmu.Fault values)
}

// Kind is a verdict, in herd7's words.
type Kind uint8

const (
	Allowed Kind = iota
	Forbidden
	Required
)

func (k Kind) String() string {
	switch k {
	case Forbidden:
		return "Forbidden"
	case Required:
		return "Required"
	}
	return "Allowed"
}

// ParseKind reads herd7's kind names.
func ParseKind(s string) (Kind, bool) {
	switch s {
	case "Allowed", "Allow":
		return Allowed, true
	case "Forbidden", "Forbid":
		return Forbidden, true
	case "Required", "Require":
		return Required, true
	}
	return 0, false
}
