package sched

import (
	"bytes"
	"strings"
	"testing"
)

// The schedule-trace parser takes any bytes: a trace or an error naming
// the line, and a trace it accepts writes back to text it reads the same.
func FuzzReadTrace(f *testing.F) {
	for _, s := range []string{
		"seed 7\n3 switch 1\n5 handoff 0\n5 chance 2 1\n",
		"seed 1\nconfig {\"workload\":\"x\"}\n",
		"seed 1\n9 switch 1\n3 switch 0\n",
		"# comment\nseed 18446744073709551615\n",
		"",
		"seed x\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := ReadTrace(bytes.NewReader(data))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("a multi-line error: %q", err)
			}
			return
		}
		var buf bytes.Buffer
		if _, err := tr.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		back, err := ReadTrace(&buf)
		if err != nil {
			t.Fatalf("a written trace does not read back: %v\n%s", err, buf.String())
		}
		if back.Seed != tr.Seed || len(back.Events) != len(tr.Events) || back.Config != tr.Config {
			t.Fatalf("round trip: %+v vs %+v", back, tr)
		}
		for i := range tr.Events {
			if back.Events[i] != tr.Events[i] {
				t.Fatalf("event %d: %v vs %v", i, back.Events[i], tr.Events[i])
			}
		}
	})
}
