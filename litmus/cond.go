package litmus

import (
	"strconv"
	"strings"
)

// token is one lexeme of the part after the program.
type token struct {
	s    string
	line int
}

// tokenize splits the condition text into tokens; line0 is the line its
// first character is on.
func tokenize(text string, line0 int) []token {
	var out []token
	line := line0
	isWord := func(c byte) bool {
		return c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case strings.HasPrefix(text[i:], `/\`), strings.HasPrefix(text[i:], `\/`), strings.HasPrefix(text[i:], "=>"):
			out = append(out, token{text[i : i+2], line})
			i += 2
		case isWord(c) || c == '-' && i+1 < len(text) && text[i+1] >= '0' && text[i+1] <= '9':
			j := i + 1
			for j < len(text) && isWord(text[j]) {
				j++
			}
			out = append(out, token{text[i:j], line})
			i = j
		default:
			out = append(out, token{text[i : i+1], line})
			i++
		}
	}
	return out
}

// condParser parses locations, filter and the final condition.
type condParser struct {
	p    *parser
	toks []token
	i    int
	last int // line of the last token, for errors at the end
}

func (c *condParser) peek() string {
	if c.i < len(c.toks) {
		return c.toks[c.i].s
	}
	return ""
}

func (c *condParser) line() int {
	if c.i < len(c.toks) {
		return c.toks[c.i].line
	}
	return c.last
}

func (c *condParser) next() string {
	s := c.peek()
	if c.i < len(c.toks) {
		c.i++
	}
	return s
}

func (c *condParser) expect(s string) error {
	if got := c.peek(); got != s {
		if got == "" {
			got = "the end of the file"
		}
		return c.p.errf(c.line(), "want %q, found %q", s, got)
	}
	c.next()
	return nil
}

// condition parses from line i to the end of the file.
func (p *parser) condition(i int) error {
	if i >= len(p.lines) {
		return p.errf(p.lastLine(), "no final condition (exists, ~exists or forall)")
	}
	c := &condParser{p: p, toks: tokenize(strings.Join(p.lines[i:], "\n"), i+1), last: p.lastLine()}
	for {
		switch c.peek() {
		case "locations":
			c.next()
			if err := c.expect("["); err != nil {
				return err
			}
			for c.peek() != "]" {
				if c.peek() == "" {
					return p.errf(c.line(), "locations [ not closed by ]")
				}
				if c.peek() == ";" {
					c.next()
					continue
				}
				l, err := c.loc()
				if err != nil {
					return err
				}
				p.t.Extra = append(p.t.Extra, l)
			}
			c.next()
			continue
		case "filter":
			c.next()
			if _, err := c.implies(); err != nil {
				return err
			}
			p.t.unsupported("filter")
			continue
		}
		break
	}
	switch c.next() {
	case "exists":
		p.t.Cond.Q = Exists
	case "forall":
		p.t.Cond.Q = Forall
	case "~":
		if err := c.expect("exists"); err != nil {
			return err
		}
		p.t.Cond.Q = NotExists
	default:
		c.i--
		return p.errf(c.line(), "want exists, ~exists or forall, found %q", c.peek())
	}
	prop, err := c.implies()
	if err != nil {
		return err
	}
	p.t.Cond.Prop = prop
	for c.peek() == ";" {
		c.next()
	}
	if c.peek() != "" {
		return p.errf(c.line(), "unexpected %q after the final condition", c.peek())
	}
	return p.checkCond(prop)
}

func (c *condParser) implies() (*Prop, error) {
	l, err := c.or()
	if err != nil || c.peek() != "=>" {
		return l, err
	}
	c.next()
	r, err := c.implies()
	return &Prop{Op: PImplies, Kids: []*Prop{l, r}}, err
}

func (c *condParser) or() (*Prop, error) {
	return c.nary(`\/`, POr, c.and)
}

func (c *condParser) and() (*Prop, error) {
	return c.nary(`/\`, PAnd, c.unary)
}

func (c *condParser) nary(sep string, op PropOp, sub func() (*Prop, error)) (*Prop, error) {
	first, err := sub()
	if err != nil {
		return nil, err
	}
	kids := []*Prop{first}
	for c.peek() == sep {
		c.next()
		k, err := sub()
		if err != nil {
			return nil, err
		}
		kids = append(kids, k)
	}
	if len(kids) == 1 {
		return first, nil
	}
	return &Prop{Op: op, Kids: kids}, nil
}

func (c *condParser) unary() (*Prop, error) {
	switch c.peek() {
	case "~", "not":
		c.next()
		k, err := c.unary()
		return &Prop{Op: PNot, Kids: []*Prop{k}}, err
	case "(":
		c.next()
		k, err := c.implies()
		if err != nil {
			return nil, err
		}
		return k, c.expect(")")
	case "true":
		c.next()
		return &Prop{Op: PTrue}, nil
	case "false":
		c.next()
		return &Prop{Op: PFalse}, nil
	case "fault":
		return c.fault()
	case "":
		return nil, c.p.errf(c.line(), "the condition ends too early")
	}
	start := c.line()
	l, err := c.loc()
	if err != nil {
		return nil, err
	}
	if err := c.expect("="); err != nil {
		return nil, err
	}
	line := c.line()
	s, err := c.valueText()
	if err != nil {
		return nil, err
	}
	defOA := -1
	if l.Kind == LPTE {
		defOA = l.Loc
	}
	v, err := c.p.parseValue(s, defOA, line)
	return &Prop{Op: PEq, Line: start, Loc: l, Val: v}, err
}

// loc reads a location's tokens and parses them.
func (c *condParser) loc() (Loc, error) {
	line := c.line()
	var b strings.Builder
	switch c.peek() {
	case "[":
		for c.peek() != "]" {
			if c.peek() == "" {
				return Loc{}, c.p.errf(line, "[ not closed by ]")
			}
			b.WriteString(c.next())
		}
		b.WriteString(c.next())
	default:
		w := c.next()
		b.WriteString(w)
		switch c.peek() {
		case ":":
			b.WriteString(c.next())
			b.WriteString(c.next())
		case "(":
			for c.peek() != ")" && c.peek() != "" {
				b.WriteString(c.next())
			}
			b.WriteString(c.next())
		}
	}
	return c.p.parseLoc(b.String(), line)
}

// valueText reads a value's tokens: a word, NAME(NAME), or (…).
func (c *condParser) valueText() (string, error) {
	var b strings.Builder
	line := c.line()
	depth := 0
	if t := c.peek(); t == ")" || t == "/\\" || t == "\\/" {
		return "", c.p.errf(line, "missing value")
	}
	for {
		t := c.peek()
		switch t {
		case "":
			if depth > 0 {
				return "", c.p.errf(line, "( not closed by )")
			}
			return "", c.p.errf(line, "missing value")
		case "(":
			depth++
		case ")":
			depth--
		}
		b.WriteString(c.next())
		if depth == 0 && c.peek() != "(" {
			return b.String(), nil
		}
	}
}

// fault parses fault(Pn[:L][,x[,MMU:Kind]]).
func (c *condParser) fault() (*Prop, error) {
	line := c.line()
	c.next()
	if err := c.expect("("); err != nil {
		return nil, err
	}
	th := strings.TrimPrefix(c.next(), "P")
	n, err := strconv.Atoi(th)
	if err != nil || n < 0 {
		return nil, c.p.errf(line, "fault(…) wants a thread P0, P1, …")
	}
	f := FaultAtom{Thread: n, PC: -1, Loc: -1}
	if c.peek() == ":" {
		c.next()
		f.Label = c.next()
		if !isIdent(f.Label) {
			return nil, c.p.errf(line, "%q is not a label", f.Label)
		}
	}
	if c.peek() == "," {
		c.next()
		l, err := c.p.namedLoc(LMem, c.next(), line)
		if err != nil {
			return nil, err
		}
		f.Loc = l.Loc
		if c.peek() == "," {
			c.next()
			kind := c.next()
			if c.peek() == ":" {
				c.next()
				kind += ":" + c.next()
			}
			switch kind {
			case "MMU:Translation":
				f.Type = 1
			case "MMU:Permission":
				f.Type = 2
			default:
				c.p.t.unsupported("fault kind %s", kind)
			}
		}
	}
	return &Prop{Op: PFault, Line: line, Fault: f}, c.expect(")")
}

// checkCond resolves fault labels and thread numbers.
func (p *parser) checkCond(q *Prop) error {
	nt := len(p.t.Threads)
	var walk func(q *Prop) error
	walk = func(q *Prop) error {
		switch q.Op {
		case PEq:
			if q.Loc.Kind == LReg && q.Loc.Thread >= nt {
				return p.errf(q.Line, "the condition names thread %d of %d", q.Loc.Thread, nt)
			}
		case PFault:
			f := &q.Fault
			if f.Thread >= nt {
				return p.errf(q.Line, "fault(P%d…) names thread %d of %d", f.Thread, f.Thread, nt)
			}
			if f.Label != "" {
				pc, ok := p.t.Threads[f.Thread].Labels[f.Label]
				if !ok {
					return p.errf(q.Line, "fault(P%d:%s…): P%d has no label %s", f.Thread, f.Label, f.Thread, f.Label)
				}
				f.PC = pc
			}
		}
		for _, k := range q.Kids {
			if err := walk(k); err != nil {
				return err
			}
		}
		return nil
	}
	for _, l := range p.t.Extra {
		if l.Kind == LReg && l.Thread >= nt {
			return p.errf(len(p.lines), "locations names thread %d of %d", l.Thread, nt)
		}
	}
	return walk(q)
}
