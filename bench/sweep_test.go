package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mmubench/mmubench/mmu"
)

func smallSweep() *Sweep {
	return &Sweep{Seeds: 3, Groups: []Group{
		{Workloads: []string{"reclaim-mprotect"}, Policies: []string{"dsb-only", "range"}, Rounds: 1},
		{Workloads: []string{"dontneed-race"}, Nested: []string{"none", "fullmm"}, Rounds: 1},
	}}
}

func TestSweepPoints(t *testing.T) {
	pts, err := smallSweep().Points()
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != (2+2)*3 {
		t.Fatalf("%d points, want 12", len(pts))
	}
	keys := map[string]bool{}
	for _, p := range pts {
		keys[p.Key()] = true
	}
	if len(keys) != len(pts) {
		t.Fatalf("%d distinct keys for %d points", len(keys), len(pts))
	}
	for _, tc := range []struct{ file, want string }{
		{`{"groups":[{"workloads":["nope"]}]}`, "unknown workload"},
		{`{"groups":[{"workloads":["seq"],"policies":["x"]}]}`, "unknown policy"},
		{`{"groups":[{"workloads":["seq"],"geometries":[{"l1":"48x5"}]}]}`, "L1 TLB"},
		{`{"groups":[{"workloads":["seq"],"cpus":[0]}]}`, "CPUs"},
		{`{"groups":[]}`, "no groups"},
		{`{"sched":"fifo","groups":[{"workloads":["seq"]}]}`, "unknown scheduler"},
		{`{"groups":[{"workloads":["seq"],"colour":1}]}`, "unknown field"},
		{`{"groups":`, "unexpected EOF"},
	} {
		s, err := LoadSweep(strings.NewReader(tc.file))
		if err == nil {
			_, err = s.Points()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.file, err, tc.want)
		}
	}
}

// An interrupted sweep keeps whole rows; ReadDone drops a torn last line
// and the resumed sweep runs only what is missing.
func TestSweepInterruptResume(t *testing.T) {
	pts, _ := smallSweep().Points()
	var buf bytes.Buffer
	buf.WriteString(strings.Join(SweepHeader(), ",") + "\n")
	ctx, cancel := context.WithCancel(context.Background())
	opt := SweepOptions{Jobs: 2, Reproducible: true, Progress: func(done, _ int) {
		if done == 5 {
			cancel()
		}
	}}
	_, err := RunSweep(ctx, pts, nil, &buf, opt)
	if err != context.Canceled {
		t.Fatalf("interrupted sweep returned %v", err)
	}
	done, n, err := ReadDone(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(done) < 5 || len(done) >= len(pts) || n != buf.Len() {
		t.Fatalf("%d rows done (%d of %d bytes whole), want 5..%d", len(done), n, buf.Len(), len(pts)-1)
	}
	// A torn line (a kill in the middle of a write) is not counted.
	torn := append(bytes.Clone(buf.Bytes()), "reclaim-mprotect,range,ful"...)
	if d2, n2, err := ReadDone(torn); err != nil || len(d2) != len(done) || n2 != n {
		t.Fatalf("torn line: %d rows, %d bytes, %v", len(d2), n2, err)
	}
	opt.Progress = nil
	res, err := RunSweep(context.Background(), pts, done, &buf, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(pts)-len(done) {
		t.Fatalf("resume ran %d points, want %d", len(res), len(pts)-len(done))
	}
	all, _, err := ReadDone(buf.Bytes())
	if err != nil || len(all) != len(pts) {
		t.Fatalf("after resume: %d of %d points, %v", len(all), len(pts), err)
	}
}

func TestReadDoneRejectsOtherCSVs(t *testing.T) {
	if _, _, err := ReadDone([]byte("a,b,c\n1,2,3\n")); err == nil {
		t.Fatal("accepted a CSV that is not a sweep's")
	}
	if d, n, err := ReadDone(nil); err != nil || len(d) != 0 || n != 0 {
		t.Fatalf("empty file: %v %d %v", d, n, err)
	}
}

// A configuration survives JSON: what travels with a result re-runs it.
func TestConfigJSONRoundTrip(t *testing.T) {
	c := DefaultConfig()
	c.Machine.L2 = mmu.TLBGeometry{}
	c.Machine.Replacement = mmu.ReplPLRU
	c.Machine.L1 = mmu.TLBGeometry{Entries: 16, Ways: 16}
	c.Params.Pages = 7
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"l2":"off"`, `"replacement":"plru"`, `"mode":"det"`, `"l1":"16x16"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	var back Config
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Key() != c.Key() {
		t.Fatalf("round trip changed the config:\n%s\n%s", c.Key(), back.Key())
	}
}
