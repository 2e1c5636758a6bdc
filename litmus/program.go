package litmus

import (
	"errors"
	"strconv"
	"strings"
)

// condKeywords start the part after the program.
var condKeywords = []string{"exists", "~exists", "forall", "locations", "filter", "~ exists"}

func isCondLine(l string) bool {
	for _, k := range condKeywords {
		if strings.HasPrefix(l, k) {
			rest := l[len(k):]
			if rest == "" || rest[0] == ' ' || rest[0] == '(' || rest[0] == '[' || rest[0] == '\t' {
				return true
			}
		}
	}
	return false
}

// program parses the thread header "P0 | P1 ;" and the rows of
// instructions from line i; it returns the index of the first line after
// them.
func (p *parser) program(i int) (int, error) {
	for i < len(p.lines) && strings.TrimSpace(p.lines[i]) == "" {
		i++
	}
	if i == len(p.lines) {
		return 0, p.errf(p.lastLine(), "no program")
	}
	head := strings.TrimSpace(p.lines[i])
	head = strings.TrimSpace(strings.TrimSuffix(head, ";"))
	for n, c := range strings.Split(head, "|") {
		if strings.TrimSpace(c) != "P"+strconv.Itoa(n) {
			return 0, p.errf(i+1, "want the thread header P0 | P1 | … ;, found %q", strings.TrimSpace(c))
		}
		p.t.Threads = append(p.t.Threads, &Thread{ID: n, Labels: map[string]int{}, Init: map[int]Value{}})
	}
	nt := len(p.t.Threads)
	for i++; i < len(p.lines); i++ {
		l := strings.TrimSpace(p.lines[i])
		if l == "" {
			continue
		}
		if isCondLine(l) {
			break
		}
		if !strings.HasSuffix(l, ";") {
			return 0, p.errf(i+1, "instruction row does not end with ;")
		}
		cells := strings.Split(strings.TrimSuffix(l, ";"), "|")
		if len(cells) != nt {
			return 0, p.errf(i+1, "row has %d columns, the program has %d threads", len(cells), nt)
		}
		for n, c := range cells {
			if err := p.cell(p.t.Threads[n], c, i+1); err != nil {
				return 0, err
			}
		}
	}
	for _, th := range p.t.Threads {
		for k := range th.Instrs {
			in := &th.Instrs[k]
			if in.label == "" {
				continue
			}
			t, ok := th.Labels[in.label]
			if !ok {
				return 0, p.errf(in.Line, "P%d has no label %s", th.ID, in.label)
			}
			in.target = t
		}
	}
	for _, r := range p.regInit {
		if r.thread >= nt {
			return 0, p.errf(r.line, "register of thread %d, but the program has %d threads", r.thread, nt)
		}
		p.t.Threads[r.thread].Init[r.reg] = r.v
	}
	return i, nil
}

// cell parses one thread's part of a row: labels, then an instruction or
// nothing.
func (p *parser) cell(th *Thread, c string, line int) error {
	c = strings.TrimSpace(c)
	for {
		j := strings.IndexByte(c, ':')
		if j < 0 || !isIdent(strings.TrimSpace(c[:j])) {
			break
		}
		name := strings.TrimSpace(c[:j])
		if _, dup := th.Labels[name]; dup {
			return p.errf(line, "label %s defined twice in P%d", name, th.ID)
		}
		th.Labels[name] = len(th.Instrs)
		c = strings.TrimSpace(c[j+1:])
	}
	if c == "" {
		return nil
	}
	in, err := parseInstr(c)
	in.Line = line
	if err != nil {
		var ie *instrError
		if errors.As(err, &ie) && ie.unsupported {
			p.t.unsupported("%s (P%d, line %d)", ie.msg, th.ID, line)
			in = Instr{op: opNop, Line: line, Text: c}
		} else {
			return p.errf(line, "P%d: %q: %v", th.ID, c, err)
		}
	}
	th.Instrs = append(th.Instrs, in)
	return nil
}
