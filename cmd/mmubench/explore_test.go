package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// explore finds the seed races in their small versions and none under the
// fixes (bound 1 here; the README's bound-2 runs take seconds to a minute).
func TestExplore(t *testing.T) {
	for _, tc := range []struct {
		workload, policy, nested string
		bound                    string
		want                     string
	}{
		{"reclaim-mprotect", "dsb-only", "fullmm", "2", "counterexample with 1 deviation(s): stale-tlb"},
		{"reclaim-mprotect", "flush-mm", "fullmm", "1", "no violation within bound 1"},
		{"reclaim-mprotect", "range", "fullmm", "1", "no violation within bound 1"},
		{"reclaim-mprotect", "no-batch", "fullmm", "1", "no violation within bound 1"},
		{"madvfree-race", "flush-mm", "none", "2", "counterexample with 1 deviation(s): stale-tlb"},
		{"madvfree-race", "flush-mm", "fullmm", "1", "no violation within bound 1"},
		{"dontneed-race", "flush-mm", "none", "2", "counterexample with 1 deviation(s): stale-tlb"},
		{"dontneed-race", "flush-mm", "range", "1", "no violation within bound 1"},
	} {
		t.Run(tc.workload+"/"+tc.policy+"/"+tc.nested, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "cx.trace")
			var so, se bytes.Buffer
			args := []string{"explore", "--workload", tc.workload, "--policy", tc.policy, "--nested", tc.nested,
				"--bound", tc.bound, "--small", "--quiet", "--out", out}
			if code := Main(args, &so, &se); code != 0 {
				t.Fatalf("exit %d: %s", code, se.String())
			}
			if !strings.Contains(so.String(), tc.want) || !strings.Contains(so.String(), "schedules explored") {
				t.Fatalf("output lacks %q:\n%s", tc.want, so.String())
			}
			_, err := os.Stat(out)
			if found := strings.Contains(tc.want, "counterexample"); found != (err == nil) {
				t.Fatalf("counterexample file: %v", err)
			}
		})
	}
}

// A counterexample replays with run --replay (the same violation) and
// explain tells its story and writes a valid Chrome trace-event file.
func TestExplainCounterexample(t *testing.T) {
	dir := t.TempDir()
	trace, pf := filepath.Join(dir, "cx.trace"), filepath.Join(dir, "cx.json")
	var so, se bytes.Buffer
	if code := Main([]string{"explore", "--workload", "reclaim-mprotect", "--policy", "dsb-only", "--small", "--quiet", "--out", trace}, &so, &se); code != 0 {
		t.Fatalf("explore: exit %d: %s", code, se.String())
	}
	violation := so.String()[strings.Index(so.String(), "stale-tlb"):]
	violation = violation[:strings.Index(violation, "\n")]

	so.Reset()
	if code := Main([]string{"run", "--replay", trace, "--format", "csv"}, &so, &se); code != 0 {
		t.Fatalf("run --replay: exit %d: %s", code, se.String())
	}
	if !strings.Contains(so.String(), violation) {
		t.Fatalf("the replay does not show %q:\n%s", violation, so.String())
	}

	so.Reset()
	if code := Main([]string{"explain", "--replay", trace, "--perfetto", pf}, &so, &se); code != 0 {
		t.Fatalf("explain: exit %d: %s", code, se.String())
	}
	for _, want := range []string{"first violation: " + violation, "try_to_unmap_one clears it, flush deferred", "TLBI VALE1IS",
		"flush_tlb_batched_pending", "not yet applied on cpu0", "mm/invariant.go:"} {
		if !strings.Contains(so.String(), want) {
			t.Errorf("explain output lacks %q:\n%s", want, so.String())
		}
	}
	checkTraceEvents(t, pf)
}

// checkTraceEvents checks a file against the trace-event format's required
// fields: a traceEvents array whose events have a name (but E), a phase the
// format defines, a timestamp, pid and tid; slices that begin end on their
// thread; an instant's scope is t, p or g; and the violation is flagged.
func checkTraceEvents(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		TraceEvents []map[string]any `json:"traceEvents"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.TraceEvents) == 0 {
		t.Fatal("no traceEvents")
	}
	depth := map[float64]int{}
	flagged := false
	for i, e := range f.TraceEvents {
		ph, _ := e["ph"].(string)
		name, hasName := e["name"].(string)
		_, ts := e["ts"].(float64)
		_, pid := e["pid"].(float64)
		tid, hasTid := e["tid"].(float64)
		switch {
		case !strings.Contains("BEiXM", ph) || len(ph) != 1:
			t.Fatalf("event %d: phase %q", i, ph)
		case !ts || !pid || !hasTid:
			t.Fatalf("event %d lacks ts, pid or tid: %v", i, e)
		case ph != "E" && (!hasName || name == ""):
			t.Fatalf("event %d has no name: %v", i, e)
		}
		switch ph {
		case "B":
			depth[tid]++
		case "E":
			if depth[tid]--; depth[tid] < 0 {
				t.Fatalf("event %d ends a slice never begun on tid %v", i, tid)
			}
		case "i":
			if s, _ := e["s"].(string); s != "t" && s != "p" && s != "g" {
				t.Fatalf("event %d: instant scope %q", i, s)
			}
			flagged = flagged || strings.HasPrefix(name, "VIOLATION")
		}
	}
	for tid, d := range depth {
		if d != 0 {
			t.Fatalf("tid %v: %d slices never end", tid, d)
		}
	}
	if !flagged {
		t.Fatal("the violation is not flagged")
	}
}
