package litmus

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/mmubench/mmubench/mmu"
)

// op is what an instruction does.
type op uint8

const (
	opNop     op = iota
	opMov        // MOV Rd, Rm|#imm
	opALU        // ADD/SUB/EOR/AND/ORR/LSL/LSR/ASR Rd, Rn, Rm|#imm
	opCmp        // CMP Rn, Rm|#imm
	opB          // B label
	opBcond      // B.cc label
	opCbz        // CBZ Rt, label
	opCbnz       // CBNZ Rt, label
	opCset       // CSET Rd, cc
	opLdr        // LDR/LDAR/LDAPR Rt, [Xn{,Xm|#imm}]
	opStr        // STR/STLR Rt, [Xn{,Xm|#imm}]
	opRMW        // SWP/LD<op>/ST<op>
	opBarrier    // DMB, ISB: no effect on a sequentially consistent, in-order machine
	opDSB        // DSB ISH/SY/OSH: completes this CPU's TLBIs
	opDSBST      // DSB with ST or LD: completes no TLBI
	opTLBI
)

// reg is a general register: n 0..30, 31 the zero register; w for Wn.
type reg struct {
	n uint8
	w bool
}

const zr = 31

// operand is a register or an immediate.
type operand struct {
	imm bool
	v   uint64
	r   reg
}

type aluOp uint8

const (
	aluAdd aluOp = iota
	aluSub
	aluEor
	aluAnd
	aluOrr
	aluLsl
	aluLsr
	aluAsr
)

var aluNames = map[string]aluOp{"ADD": aluAdd, "SUB": aluSub, "EOR": aluEor, "AND": aluAnd, "ORR": aluOrr,
	"LSL": aluLsl, "LSR": aluLsr, "ASR": aluAsr}

type rmwOp uint8

const (
	rmwSwp rmwOp = iota
	rmwAdd
	rmwClr
	rmwEor
	rmwSet
)

// cc is a condition code.
type cc uint8

var ccNames = []string{"EQ", "NE", "CS", "CC", "MI", "PL", "VS", "VC", "HI", "LS", "GE", "LT", "GT", "LE", "AL"}

func parseCC(s string) (cc, bool) {
	switch s {
	case "HS":
		s = "CS"
	case "LO":
		s = "CC"
	}
	for i, n := range ccNames {
		if n == s {
			return cc(i), true
		}
	}
	return 0, false
}

// Instr is one instruction.
type Instr struct {
	op     op
	Line   int
	Text   string
	rd, rn reg     // rd: destination, or Rt of a store; rn: base or first source
	src    operand // second source, memory offset, or Rs of an atomic
	alu    aluOp
	cond   cc
	label  string // branch target label, resolved into target
	target int
	tlbi   mmu.TLBIKind
	allASI bool // TLBI VAA*: every ASID
	hasXt  bool // TLBI with a register operand
	rmw    rmwOp
	ret    bool // LD<op>/SWP: Rt gets the old value
}

// isMem reports whether the instruction accesses memory (through the TLB
// or at a descriptor).
func (in *Instr) isMem() bool { return in.op == opLdr || in.op == opStr || in.op == opRMW }

// tlbiOps maps herd's TLBI operation names to the mmu's operations; VAA
// forms invalidate every ASID, which for tests in one address space
// (ASID 0) is the ASID form.
var tlbiOps = map[string]struct {
	kind mmu.TLBIKind
	all  bool
	xt   bool
}{
	"VAE1IS": {mmu.VAE1IS, false, true}, "VALE1IS": {mmu.VALE1IS, false, true},
	"VAAE1IS": {mmu.VAE1IS, true, true}, "VAALE1IS": {mmu.VALE1IS, true, true},
	"ASIDE1IS": {mmu.ASIDE1IS, false, true}, "VMALLE1IS": {mmu.VMALLE1IS, false, false},
	"VAE1": {mmu.VAE1, false, true}, "VALE1": {mmu.VALE1, false, true},
	"VAAE1": {mmu.VAE1, true, true}, "VAALE1": {mmu.VALE1, true, true},
	"ASIDE1": {mmu.ASIDE1, false, true}, "VMALLE1": {mmu.VMALLE1, false, false},
}

// instrError is a malformed instruction (a syntax error) or, with
// unsupported set, one the runner does not model.
type instrError struct {
	msg         string
	unsupported bool
}

func (e *instrError) Error() string { return e.msg }

func bad(format string, a ...any) error { return &instrError{msg: fmt.Sprintf(format, a...)} }
func unsup(format string, a ...any) error {
	return &instrError{msg: fmt.Sprintf(format, a...), unsupported: true}
}

// parseInstr parses one instruction's text (labels already removed).
func parseInstr(text string) (Instr, error) {
	in := Instr{Text: text}
	mn, rest, _ := strings.Cut(strings.TrimSpace(text), " ")
	if i := strings.IndexByte(mn, '\t'); i >= 0 {
		mn, rest = mn[:i], mn[i+1:]+" "+rest
	}
	mn = strings.ToUpper(mn)
	aluK, isALU := aluNames[mn]
	args, err := splitArgs(rest)
	if err != nil {
		return in, err
	}
	want := func(n int) error {
		if len(args) == n+1 && strings.HasSuffix(args[n-1], "]") && strings.HasPrefix(args[n], "#") {
			return unsup("post-indexed addressing in %s", text)
		}
		if len(args) == n+1 && strings.ContainsAny(args[n], " \t") {
			return unsup("shifted or extended operand %q", args[n])
		}
		if len(args) != n {
			return bad("%s takes %d operands, not %d", mn, n, len(args))
		}
		return nil
	}
	switch {
	case mn == "NOP":
		return in, want(0)
	case mn == "MOV":
		in.op = opMov
		if err := want(2); err != nil {
			return in, err
		}
		if in.rd, err = parseReg(args[0]); err != nil {
			return in, err
		}
		in.src, err = parseOperand(args[1])
		return in, err
	case isALU:
		in.op, in.alu = opALU, aluK
		if err := want(3); err != nil {
			return in, err
		}
		if in.rd, err = parseReg(args[0]); err != nil {
			return in, err
		}
		if in.rn, err = parseReg(args[1]); err != nil {
			return in, err
		}
		in.src, err = parseOperand(args[2])
		return in, err
	case mn == "CMP":
		in.op = opCmp
		if err := want(2); err != nil {
			return in, err
		}
		if in.rn, err = parseReg(args[0]); err != nil {
			return in, err
		}
		in.src, err = parseOperand(args[1])
		return in, err
	case mn == "B":
		in.op = opB
		if err := want(1); err != nil {
			return in, err
		}
		in.label, err = parseLabelRef(args[0])
		return in, err
	case strings.HasPrefix(mn, "B."):
		in.op = opBcond
		c, ok := parseCC(mn[2:])
		if !ok {
			return in, bad("unknown condition %q", mn[2:])
		}
		in.cond = c
		if err := want(1); err != nil {
			return in, err
		}
		in.label, err = parseLabelRef(args[0])
		return in, err
	case mn == "CBZ" || mn == "CBNZ":
		in.op = opCbz
		if mn == "CBNZ" {
			in.op = opCbnz
		}
		if err := want(2); err != nil {
			return in, err
		}
		if in.rn, err = parseReg(args[0]); err != nil {
			return in, err
		}
		in.label, err = parseLabelRef(args[1])
		return in, err
	case mn == "CSET":
		in.op = opCset
		if err := want(2); err != nil {
			return in, err
		}
		if in.rd, err = parseReg(args[0]); err != nil {
			return in, err
		}
		c, ok := parseCC(strings.ToUpper(strings.TrimSpace(args[1])))
		if !ok {
			return in, bad("unknown condition %q", args[1])
		}
		in.cond = c
		return in, nil
	case mn == "LDR" || mn == "LDAR" || mn == "LDAPR" || mn == "STR" || mn == "STLR":
		in.op = opLdr
		if mn[0] == 'S' {
			in.op = opStr
		}
		if err := want(2); err != nil {
			return in, err
		}
		if in.rd, err = parseReg(args[0]); err != nil {
			return in, err
		}
		in.rn, in.src, err = parseMem(args[1])
		return in, err
	case mn == "ISB" || strings.HasPrefix(mn, "DMB"):
		in.op = opBarrier
		return in, barrierArgs(mn, args, false)
	case mn == "DSB":
		in.op = opDSB
		if err := barrierArgs(mn, args, true); err != nil {
			return in, err
		}
		if o := strings.ToUpper(args[0]); strings.HasSuffix(o, "ST") || strings.HasSuffix(o, "LD") {
			in.op = opDSBST
		}
		return in, nil
	case mn == "TLBI":
		if len(args) < 1 || len(args) > 2 {
			return in, bad("TLBI takes an operation and at most one register")
		}
		name := strings.ToUpper(strings.TrimSpace(args[0]))
		t, ok := tlbiOps[name]
		if !ok {
			return in, unsup("TLBI %s", name)
		}
		in.op, in.tlbi, in.allASI, in.hasXt = opTLBI, t.kind, t.all, t.xt
		if t.xt != (len(args) == 2) {
			if t.xt {
				return in, bad("TLBI %s needs a register operand", name)
			}
			return in, bad("TLBI %s takes no register operand", name)
		}
		if t.xt {
			in.rn, err = parseReg(args[1])
		}
		return in, err
	}
	if r, ok := parseRMW(mn); ok {
		in.op, in.rmw, in.ret = opRMW, r.op, r.ret
		n := 3
		if !r.ret {
			n = 2
		}
		if err := want(n); err != nil {
			return in, err
		}
		s, err := parseReg(args[0])
		if err != nil {
			return in, err
		}
		in.src = operand{r: s}
		if r.ret {
			if in.rd, err = parseReg(args[1]); err != nil {
				return in, err
			}
		}
		var off operand
		in.rn, off, err = parseMem(args[n-1])
		if err == nil && (off.imm && off.v != 0 || !off.imm) {
			err = unsup("%s with an offset", mn)
		}
		return in, err
	}
	return in, unsup("instruction %s", mn)
}

type rmwForm struct {
	op  rmwOp
	ret bool
}

// parseRMW recognises SWP{A}{L}{AL}, LD<op>{A}{L}{AL} and ST<op>{L}, <op>
// one of ADD, CLR, EOR, SET.
func parseRMW(mn string) (rmwForm, bool) {
	forms := []struct {
		prefix, base string
		op           rmwOp
		ret          bool
	}{
		{"", "SWP", rmwSwp, true},
		{"LD", "ADD", rmwAdd, true}, {"LD", "CLR", rmwClr, true}, {"LD", "EOR", rmwEor, true}, {"LD", "SET", rmwSet, true},
		{"ST", "ADD", rmwAdd, false}, {"ST", "CLR", rmwClr, false}, {"ST", "EOR", rmwEor, false}, {"ST", "SET", rmwSet, false},
	}
	for _, f := range forms {
		sufs := []string{"", "A", "L", "AL"}
		if !f.ret {
			sufs = []string{"", "L"}
		}
		for _, suf := range sufs {
			if mn == f.prefix+f.base+suf {
				return rmwForm{f.op, f.ret}, true
			}
		}
	}
	return rmwForm{}, false
}

// barrierArgs checks a barrier's option: DMB and DSB need one, ISB none.
func barrierArgs(mn string, args []string, dsb bool) error {
	if mn == "ISB" {
		if len(args) > 1 || len(args) == 1 && strings.ToUpper(args[0]) != "SY" {
			return bad("ISB takes no operand")
		}
		return nil
	}
	if len(args) != 1 {
		return bad("%s needs one option (SY, ISH, ISHST, …)", mn)
	}
	o := strings.ToUpper(strings.TrimSpace(args[0]))
	switch o {
	case "SY", "ST", "LD", "ISH", "ISHST", "ISHLD", "OSH", "OSHST", "OSHLD":
		return nil
	case "NSH", "NSHST", "NSHLD":
		if dsb {
			return unsup("DSB %s (non-shareable completion)", o)
		}
		return nil
	}
	return bad("unknown %s option %q", mn, o)
}

// splitArgs splits operands at commas outside brackets.
func splitArgs(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch r {
		case '[':
			depth++
		case ']':
			depth--
			if depth < 0 {
				return nil, bad("unbalanced ]")
			}
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, bad("unbalanced [")
	}
	out = append(out, strings.TrimSpace(s[start:]))
	for _, a := range out {
		if a == "" {
			return nil, bad("empty operand")
		}
	}
	return out, nil
}

// parseReg parses Xn, Wn (n 0..30), XZR or WZR.
func parseReg(s string) (reg, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	switch u {
	case "XZR":
		return reg{n: zr}, nil
	case "WZR":
		return reg{n: zr, w: true}, nil
	case "SP", "WSP":
		return reg{}, unsup("the stack pointer")
	}
	if len(u) >= 2 && (u[0] == 'X' || u[0] == 'W') {
		if n, err := strconv.Atoi(u[1:]); err == nil && n >= 0 && n <= 30 && u[1] != '+' && u[1] != '-' {
			return reg{n: uint8(n), w: u[0] == 'W'}, nil
		}
	}
	return reg{}, bad("%q is not a register", s)
}

// parseOperand parses a register or #imm.
func parseOperand(s string) (operand, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "#") {
		v, err := parseInt(s[1:])
		if err != nil {
			return operand{}, bad("bad immediate %q", s)
		}
		return operand{imm: true, v: v}, nil
	}
	if strings.ContainsAny(s, " \t") {
		return operand{}, unsup("shifted or extended operand %q", s)
	}
	r, err := parseReg(s)
	return operand{r: r}, err
}

// parseInt parses a decimal, 0x hexadecimal or negative integer.
func parseInt(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		return 0, err
	}
	if neg {
		v = -v
	}
	return v, nil
}

// parseMem parses [Xn], [Xn,Xm] or [Xn,#imm].
func parseMem(s string) (reg, operand, error) {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "!") || strings.Contains(s, "],") {
		return reg{}, operand{}, unsup("pre- or post-indexed addressing %q", s)
	}
	if !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
		return reg{}, operand{}, bad("%q is not a memory operand [Xn…]", s)
	}
	parts, err := splitArgs(s[1 : len(s)-1])
	switch {
	case err != nil:
		return reg{}, operand{}, err
	case len(parts) == 0:
		return reg{}, operand{}, bad("empty memory operand")
	case len(parts) > 2:
		return reg{}, operand{}, unsup("shifted or extended register offset %q", s)
	}
	base, err := parseReg(parts[0])
	if err != nil {
		return reg{}, operand{}, err
	}
	if base.w {
		return reg{}, operand{}, bad("base register %s must be an X register", parts[0])
	}
	off := operand{imm: true}
	if len(parts) == 2 {
		if off, err = parseOperand(parts[1]); err != nil {
			return reg{}, operand{}, err
		}
	}
	return base, off, nil
}

// parseLabelRef parses a branch target.
func parseLabelRef(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !isIdent(s) {
		return "", bad("%q is not a label", s)
	}
	return s, nil
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '.'):
		default:
			return false
		}
	}
	return true
}
