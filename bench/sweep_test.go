package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/workloads"
)

func workloadsParams(pages int) workloads.Params {
	return workloads.Params{Pages: pages, Accesses: 100}
}

func smallSweep() *Sweep {
	return &Sweep{Seeds: 3, Groups: []Group{
		{Workloads: []string{"reclaim-mprotect"}, Policies: []string{"dsb-only", "range"}, Rounds: 1},
		{Workloads: []string{"dontneed-race"}, Nested: []string{"none", "fullmm"}, Rounds: 1},
	}}
}

func TestSweepPoints(t *testing.T) {
	ps, err := smallSweep().Points()
	if err != nil {
		t.Fatal(err)
	}
	if ps.Len() != (2+2)*3 {
		t.Fatalf("%d points, want 12", ps.Len())
	}
	keys := map[string]bool{}
	for i := 0; i < ps.Len(); i++ {
		c := ps.At(i)
		keys[c.Key()] = true
		if j, ok := ps.IndexOf(c.Key()); !ok || j != i {
			t.Fatalf("IndexOf(point %d) = %d, %v", i, j, ok)
		}
	}
	if len(keys) != ps.Len() {
		t.Fatalf("%d distinct keys for %d points", len(keys), ps.Len())
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
		{`{"groups":[{"workloads":["seq"]}]} {"more":1}`, "something follows"},
		{`{"groups":[{"workloads":["seq"],"mem_mib":1000000}]}`, "mem_mib"},
		{`{"first_seed":18446744073709551615,"seeds":2,"groups":[{"workloads":["seq"]}]}`, "wrap"},
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

// A sweep of a million seeds is a template, not a million configurations.
func TestSweepPointsAreLazy(t *testing.T) {
	s := &Sweep{Seeds: 1_000_000, Groups: []Group{{Workloads: []string{"reclaim-mprotect"}}}}
	ps, err := s.Points()
	if err != nil {
		t.Fatal(err)
	}
	if ps.Len() != 1_000_000 || len(ps.templates) != 1 {
		t.Fatalf("%d points from %d templates", ps.Len(), len(ps.templates))
	}
	if c := ps.At(999_999); c.Machine.Sched.Seed != 1_000_000 {
		t.Fatalf("last point has seed %d", c.Machine.Sched.Seed)
	}
}

// journal starts a journal of ps in a buffer.
func journal(t *testing.T, ps *PointSet) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteJournal(&buf, NewJournalHeader(ps, true, 0, 1), nil); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// An interrupted sweep keeps whole rows; ReadJournal drops a torn last
// line and the resumed sweep runs only what is missing.
func TestSweepInterruptResume(t *testing.T) {
	ps, _ := smallSweep().Points()
	buf := journal(t, ps)
	ctx, cancel := context.WithCancel(context.Background())
	opt := SweepOptions{Jobs: 2, Reproducible: true, Progress: func(done, _ int) {
		if done == 5 {
			cancel()
		}
	}}
	_, _, err := RunSweep(ctx, ps, ps.All(), buf, opt)
	if err != context.Canceled {
		t.Fatalf("interrupted sweep returned %v", err)
	}
	j, err := ReadJournal(buf.Bytes(), ps, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Rows) < 5 || len(j.Rows) >= ps.Len() || j.Complete != buf.Len() || j.Header == nil {
		t.Fatalf("%d rows done (%d of %d bytes whole), want 5..%d", len(j.Rows), j.Complete, buf.Len(), ps.Len()-1)
	}
	// A torn line (a kill in the middle of a write) is not counted.
	torn := append(bytes.Clone(buf.Bytes()), "reclaim-mprotect,range,ful"...)
	if j2, err := ReadJournal(torn, ps, nil); err != nil || len(j2.Rows) != len(j.Rows) || j2.Complete != j.Complete {
		t.Fatalf("torn line: %v", err)
	}
	var rest []int
	for i := 0; i < ps.Len(); i++ {
		if j.Rows[i] == nil {
			rest = append(rest, i)
		}
	}
	opt.Progress, opt.Keep = nil, true
	res, _, err := RunSweep(context.Background(), ps, rest, buf, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(rest) {
		t.Fatalf("resume ran %d points, want %d", len(res), len(rest))
	}
	all, err := ReadJournal(buf.Bytes(), ps, nil)
	if err != nil || len(all.Rows) != ps.Len() || all.Duplicate != 0 {
		t.Fatalf("after resume: %d of %d points, %v", len(all.Rows), ps.Len(), err)
	}
}

// Rows of other sweeps and duplicates are dropped (and counted); garbage
// and a header of another layout are refused, naming the line.
func TestReadJournalChecks(t *testing.T) {
	ps, _ := smallSweep().Points()
	buf := journal(t, ps)
	if _, _, err := RunSweep(context.Background(), ps, []int{0, 1}, buf, SweepOptions{Reproducible: true}); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	lines := strings.SplitAfter(string(data), "\n")
	row0 := lines[2]
	other, _ := (&Sweep{Groups: []Group{{Workloads: []string{"seq"}, Rounds: 1, Params: workloadsParams(8)}}}).Points()
	var ob bytes.Buffer
	if _, _, err := RunSweep(context.Background(), other, []int{0}, &ob, SweepOptions{Reproducible: true}); err != nil {
		t.Fatal(err)
	}
	j, err := ReadJournal([]byte(string(data)+row0+ob.String()), ps, nil)
	if err != nil || len(j.Rows) != 2 || j.Duplicate != 1 || j.Foreign != 1 {
		t.Fatalf("rows %d, duplicates %d, foreign %d, %v", len(j.Rows), j.Duplicate, j.Foreign, err)
	}
	width := len(SweepHeader())
	garbage := strings.Repeat("x,", width-1) + "x\n"
	for _, tc := range []struct{ data, want string }{
		{string(data) + garbage, "line 5: not a results row"},
		{string(data) + "a,b\n", "line 5: 2 fields"},
		{lines[0] + strings.Repeat("h,", width-1) + "config\n", "line 2: not the header"},
		{"# mmubench-sweep fingerprint=x\n", "no points"},
	} {
		if _, err := ReadJournal([]byte(tc.data), ps, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.want, err, tc.want)
		}
	}
}

// Sharded and merged, a sweep is byte for byte the unsharded one.
func TestShardMerge(t *testing.T) {
	ps, _ := smallSweep().Points()
	dir := t.TempDir()
	run := func(path string, idx []int, shard *JournalHeader) {
		t.Helper()
		partial := path + ".partial"
		var buf bytes.Buffer
		h := NewJournalHeader(ps, true, 0, 1)
		if shard != nil {
			h = *shard
		}
		if err := WriteJournal(&buf, h, nil); err != nil {
			t.Fatal(err)
		}
		if _, _, err := RunSweep(context.Background(), ps, idx, &buf, SweepOptions{Reproducible: true}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(partial, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := FinishSweep(partial, path, ps, idx, shard); err != nil {
			t.Fatal(err)
		}
	}
	whole := filepath.Join(dir, "whole.csv")
	run(whole, ps.All(), nil)
	var shards []string
	for i := 0; i < 3; i++ {
		h := NewJournalHeader(ps, true, i, 3)
		name := filepath.Join(dir, fmt.Sprintf("shard%d.csv", i))
		run(name, ps.Shard(i, 3), &h)
		shards = append(shards, name)
	}
	merged := filepath.Join(dir, "merged.csv")
	if n, err := Merge(merged, shards); err != nil || n != ps.Len() {
		t.Fatalf("merge: %d, %v", n, err)
	}
	a, _ := os.ReadFile(whole)
	b, _ := os.ReadFile(merged)
	if !bytes.Equal(a, b) {
		t.Fatal("the merged shards differ from the unsharded sweep")
	}
	for _, tc := range []struct {
		files []string
		want  string
	}{
		{shards[:2], "shards 2 of 3 are missing"},
		{[]string{shards[0], shards[0]}, "both shard 0/3"},
		{[]string{whole}, "no sweep header"},
	} {
		if _, err := Merge(filepath.Join(dir, "x.csv"), tc.files); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.files, err, tc.want)
		}
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
