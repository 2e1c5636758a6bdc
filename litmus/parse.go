package litmus

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// SyntaxError is a malformed test: the file, the line and what is wrong.
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// ParseFile reads and parses one test.
func ParseFile(path string) (*Test, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, src)
}

// parser holds a test being parsed.
type parser struct {
	file  string
	lines []string
	t     *Test
	// Register initialisers, checked against the threads once they are known.
	regInit []regInitItem
}

type regInitItem struct {
	thread, reg, line int
	v                 Value
}

// lastLine is the number of the last line that is not blank, for errors
// at the end of the file.
func (p *parser) lastLine() int {
	for i := len(p.lines) - 1; i >= 0; i-- {
		if strings.TrimSpace(p.lines[i]) != "" {
			return i + 1
		}
	}
	return 1
}

func (p *parser) errf(line int, format string, a ...any) error {
	return &SyntaxError{File: p.file, Line: line, Msg: fmt.Sprintf(format, a...)}
}

// Parse parses a test in herd7's AArch64 syntax; file names it in errors.
// A construct the runner does not model sets Test.Unsupported; a malformed
// test is a *SyntaxError.
func Parse(file string, src []byte) (*Test, error) {
	text, err := stripComments(string(src))
	if err != nil {
		var se *SyntaxError
		if errors.As(err, &se) {
			se.File = file
		}
		return nil, err
	}
	p := &parser{file: file, lines: strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n"),
		t: &Test{File: file, InitMem: map[int]Value{}, InitPTE: map[int]PTEVal{}, PTETyped: map[Loc]bool{}}}
	i, err := p.header()
	if err != nil {
		return nil, err
	}
	if i, err = p.init(i); err != nil {
		return nil, err
	}
	if i, err = p.program(i); err != nil {
		return nil, err
	}
	if err := p.condition(i); err != nil {
		return nil, err
	}
	return p.t, nil
}

// stripComments blanks out (* … *) comments (they nest, as in OCaml),
// keeping newlines so that line numbers stay right.
func stripComments(s string) (string, error) {
	b := []byte(s)
	depth, line, startLine := 0, 1, 0
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '\n':
			line++
			continue
		case b[i] == '(' && i+1 < len(b) && b[i+1] == '*':
			if depth == 0 {
				startLine = line
			}
			depth++
			b[i], b[i+1] = ' ', ' '
			i++
			continue
		case depth > 0 && b[i] == '*' && i+1 < len(b) && b[i+1] == ')':
			depth--
			b[i], b[i+1] = ' ', ' '
			i++
			continue
		}
		if depth > 0 {
			b[i] = ' '
		}
	}
	if depth > 0 {
		return "", &SyntaxError{Line: startLine, Msg: "unterminated comment"}
	}
	return string(b), nil
}

// header parses "AArch64 NAME" and the metadata lines; it returns the index
// of the line holding the initial state's "{".
func (p *parser) header() (int, error) {
	i := 0
	for i < len(p.lines) && strings.TrimSpace(p.lines[i]) == "" {
		i++
	}
	if i == len(p.lines) {
		return 0, p.errf(1, "empty test")
	}
	f := strings.Fields(p.lines[i])
	if len(f) != 2 {
		return 0, p.errf(i+1, `want "AArch64 NAME" as the first line`)
	}
	p.t.Name = f[1]
	if f[0] != "AArch64" {
		p.t.unsupported("architecture %s", f[0])
	}
	for i++; i < len(p.lines); i++ {
		l := strings.TrimSpace(p.lines[i])
		switch {
		case l == "":
		case strings.HasPrefix(l, "{"):
			return i, nil
		case strings.HasPrefix(l, `"`):
			if len(l) < 2 || !strings.HasSuffix(l, `"`) {
				return 0, p.errf(i+1, "unterminated quoted string")
			}
		case strings.Contains(l, "="):
			k, v, _ := strings.Cut(l, "=")
			p.meta(strings.TrimSpace(k), strings.TrimSpace(v))
		default:
			return 0, p.errf(i+1, "want KEY=VALUE or the initial state {, not %q", l)
		}
	}
	return 0, p.errf(p.lastLine(), "no initial state { … }")
}

// meta applies the metadata lines the runner understands.
func (p *parser) meta(k, v string) {
	switch strings.ToLower(k) {
	case "hash":
		p.t.Hash = v
	case "variant":
		for _, x := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
			switch strings.ToLower(x) {
			case "vmsa", "fatal", "ets", "ets2", "ets3":
				// ETS only drops the need for an ISB, which an in-order
				// machine never has.
			case "handled":
				p.t.Handled = true
			default:
				p.t.unsupported("Variant=%s", x)
			}
		}
	case "tthm":
		for _, x := range strings.Fields(strings.ToUpper(v)) {
			switch x {
			case "HA":
				p.t.HA = true
			case "HD":
				p.t.HA, p.t.HD = true, true
			case "P", "SW":
			default:
				p.t.unsupported("TTHM=%s", v)
			}
		}
	}
}

// init parses the initial state, from the "{" on line i; it returns the
// index of the line after the closing "}".
func (p *parser) init(i int) (int, error) {
	var item strings.Builder
	itemLine := 0
	flush := func() error {
		s := strings.TrimSpace(item.String())
		item.Reset()
		if s == "" {
			return nil
		}
		return p.initItem(s, itemLine)
	}
	first := true
	for ; i < len(p.lines); i++ {
		l := p.lines[i]
		if first {
			l = l[strings.IndexByte(l, '{')+1:]
			first = false
		}
		for j := 0; j < len(l); j++ {
			switch c := l[j]; c {
			case '{':
				return 0, p.errf(i+1, "unexpected { in the initial state")
			case ';', '}':
				if err := flush(); err != nil {
					return 0, err
				}
				if c == '}' {
					if rest := strings.TrimSpace(l[j+1:]); rest != "" {
						return 0, p.errf(i+1, "unexpected %q after the initial state", rest)
					}
					return i + 1, nil
				}
			default:
				if item.Len() == 0 && c != ' ' && c != '\t' {
					itemLine = i + 1
				}
				if item.Len() > 0 || c != ' ' && c != '\t' {
					item.WriteByte(c)
				}
			}
		}
		if item.Len() > 0 {
			item.WriteByte(' ')
		}
	}
	return 0, p.errf(p.lastLine(), "initial state not closed by }")
}

// cTypes are the declarations herd accepts before an initialiser.
var cTypes = map[string]bool{"int": true, "uint64_t": true, "int64_t": true, "uint32_t": true, "int32_t": true,
	"pteval_t": true, "intptr_t": true, "uintptr_t": true, "long": true, "char": true}

// initItem parses one "LOC=VALUE" (or a bare declaration) of the initial state.
func (p *parser) initItem(s string, line int) error {
	typ := ""
	if w, rest, ok := strings.Cut(s, " "); ok && cTypes[w] {
		typ, s = w, strings.TrimSpace(rest)
	}
	lhs, rhs, hasVal := strings.Cut(s, "=")
	lhs, rhs = strings.TrimSpace(lhs), strings.TrimSpace(rhs)
	loc, err := p.parseLoc(lhs, line)
	if err != nil {
		return err
	}
	if typ == "pteval_t" && loc.Kind == LReg {
		p.t.PTETyped[loc] = true
	}
	if !hasVal {
		return nil
	}
	if rhs == "" {
		return p.errf(line, "no value for %s", lhs)
	}
	defOA := -1
	if loc.Kind == LPTE {
		defOA = loc.Loc
	}
	v, err := p.parseValue(rhs, defOA, line)
	if err != nil {
		return err
	}
	switch loc.Kind {
	case LReg:
		p.regInit = append(p.regInit, regInitItem{thread: loc.Thread, reg: loc.Reg, line: line, v: v})
	case LMem:
		if v.Kind == VPTE {
			p.t.unsupported("a descriptor value stored at a data location (%s)", lhs)
		}
		p.t.InitMem[loc.Loc] = v
	case LPTE:
		if v.Kind != VPTE {
			p.t.unsupported("a PTE initialised to a non-descriptor value (%s=%s)", lhs, rhs)
			return nil
		}
		p.t.InitPTE[loc.Loc] = v.PTE
	}
	return nil
}

// parseLoc parses a location: N:Xk, x, [x], pte_x, PTE(x), [PTE(x)], phy_x, PA(x).
func (p *parser) parseLoc(s string, line int) (Loc, error) {
	s = strings.TrimSpace(s)
	if th, r, ok := strings.Cut(s, ":"); ok {
		th = strings.TrimPrefix(th, "P")
		n, err := strconv.Atoi(th)
		if err != nil || n < 0 {
			return Loc{}, p.errf(line, "%q is not a location", s)
		}
		rg, err := parseReg(r)
		if err != nil || rg.n == zr {
			return Loc{}, p.errf(line, "%q is not a register", r)
		}
		return Loc{Kind: LReg, Thread: n, Reg: int(rg.n), W: rg.w}, nil
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	switch {
	case strings.HasPrefix(s, "PTE(") && strings.HasSuffix(s, ")"):
		return p.namedLoc(LPTE, s[4:len(s)-1], line)
	case strings.HasPrefix(s, "PA(") && strings.HasSuffix(s, ")"):
		return p.namedLoc(LMem, s[3:len(s)-1], line)
	case strings.HasPrefix(s, "pte_"):
		return p.namedLoc(LPTE, s[4:], line)
	case strings.HasPrefix(s, "phy_"):
		return p.namedLoc(LMem, s[4:], line)
	}
	return p.namedLoc(LMem, s, line)
}

func (p *parser) namedLoc(k LocKind, name string, line int) (Loc, error) {
	name = strings.TrimSpace(name)
	if !isIdent(name) || strings.Contains(name, ".") {
		return Loc{}, p.errf(line, "%q is not a location name", name)
	}
	return Loc{Kind: k, Loc: p.t.loc(name)}, nil
}

// parseValue parses a value: a number, a location (its virtual address),
// pte_x / PTE(x) (the descriptor's address), phy_x / PA(x), or a
// descriptor (oa:…, valid:…, af:…, db:…, dbm:…). defOA is the page a
// descriptor without oa maps (-1: oa is required).
func (p *parser) parseValue(s string, defOA, line int) (Value, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "(") {
		if !strings.HasSuffix(s, ")") {
			return Value{}, p.errf(line, "descriptor %q not closed by )", s)
		}
		pte, err := p.parsePTE(s[1:len(s)-1], defOA, line)
		return Value{Kind: VPTE, PTE: pte}, err
	}
	if s != "" && (s[0] >= '0' && s[0] <= '9' || s[0] == '-') {
		n, err := parseInt(s)
		if err != nil {
			return Value{}, p.errf(line, "%q is not a number", s)
		}
		return Value{Kind: VInt, N: n}, nil
	}
	var l Loc
	var err error
	kind := VVA
	switch {
	case strings.HasPrefix(s, "PTE(") || strings.HasPrefix(s, "pte_"):
		kind = VPTEAddr
	case strings.HasPrefix(s, "PA(") || strings.HasPrefix(s, "phy_"):
		kind = VPA
	case strings.HasPrefix(s, "["):
		return Value{}, p.errf(line, "%q is not a value", s)
	}
	if l, err = p.parseLoc(s, line); err != nil {
		return Value{}, err
	}
	if l.Kind == LReg {
		return Value{}, p.errf(line, "%q is not a value", s)
	}
	return Value{Kind: kind, Loc: l.Loc}, nil
}

// parsePTE parses the fields of a descriptor value.
func (p *parser) parsePTE(s string, defOA, line int) (PTEVal, error) {
	v := defaultPTE(defOA)
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k, val, ok := strings.Cut(f, ":")
		if !ok {
			return v, p.errf(line, "descriptor field %q is not KEY:VALUE", f)
		}
		k, val = strings.TrimSpace(k), strings.TrimSpace(val)
		if k == "oa" {
			l, err := p.parseLoc(val, line)
			if err != nil || l.Kind == LReg {
				return v, p.errf(line, "oa:%s does not name a physical location", val)
			}
			v.OA = l.Loc
			continue
		}
		bit := val == "1"
		if val != "0" && val != "1" {
			return v, p.errf(line, "descriptor field %s:%s is not 0 or 1", k, val)
		}
		switch k {
		case "valid":
			v.Valid = bit
		case "af":
			v.AF = bit
		case "db":
			v.DB = bit
		case "dbm":
			v.DBM = bit
		case "el0":
			if !bit {
				p.t.unsupported("el0:0 (the runner's accesses are EL0 accesses)")
			}
		default:
			p.t.unsupported("descriptor field %s", k)
		}
	}
	if v.OA < 0 {
		return v, p.errf(line, "descriptor value %q needs oa:", "("+s+")")
	}
	return v, nil
}
