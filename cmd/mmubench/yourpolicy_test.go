package main

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// docs/your-policy.md's commands run as written, and their output says
// what the page says it does (its "want:" lines).
func TestYourPolicyDoc(t *testing.T) {
	f, err := os.Open("../../docs/your-policy.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type step struct {
		cmds  [][]string
		wants []string
	}
	var steps []step
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```"):
			if in = !in; in {
				steps = append(steps, step{})
			}
		case in && strings.HasPrefix(line, "$ mmubench "):
			s := &steps[len(steps)-1]
			s.cmds = append(s.cmds, strings.Fields(strings.TrimPrefix(line, "$ mmubench ")))
		case !in && strings.HasPrefix(line, "want: ") && len(steps) > 0:
			s := &steps[len(steps)-1]
			s.wants = append(s.wants, strings.TrimPrefix(line, "want: "))
		}
	}
	dir := t.TempDir()
	ran := 0
	for _, s := range steps {
		if len(s.cmds) == 0 {
			continue
		}
		var all string
		for _, args := range s.cmds {
			code, so, se := mainIn(t, dir, args...)
			if code != 0 {
				t.Fatalf("mmubench %s: exit %d: %s", strings.Join(args, " "), code, se)
			}
			all += so + se
			ran++
		}
		for _, w := range s.wants {
			if !strings.Contains(all, w) {
				t.Errorf("mmubench %v: output lacks %q:\n%s", s.cmds, w, all)
			}
		}
	}
	if ran < 8 {
		t.Fatalf("only %d commands found in the page", ran)
	}
}
