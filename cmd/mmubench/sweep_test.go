package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The sweep command end to end: a small sweep from flags writes its CSV
// whole; a leftover .partial is refused without --resume and finished
// with it; the resumed file equals an uninterrupted one.
func TestSweepCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "s.csv")
	args := []string{"sweep", "--quiet", "--reproducible", "--out", out, "--workloads", "dontneed-race",
		"--nested", "none,fullmm", "--seeds", "3", "--rounds", "1"}
	var so, se bytes.Buffer
	if code := Main(args, &so, &se); code != 0 {
		t.Fatalf("exit %d: %s", code, se.String())
	}
	full, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(full), "\n"); n != 1+6 {
		t.Fatalf("%d lines, want a header and 6 rows", n)
	}
	if !strings.Contains(so.String(), "dontneed-race") {
		t.Fatalf("no comparison table:\n%s", so.String())
	}
	if _, err := os.Stat(out + ".partial"); err == nil {
		t.Fatal(".partial left behind")
	}
	// Interrupted after 4 rows, with a torn fifth.
	lines := strings.SplitAfter(string(full), "\n")
	partial := strings.Join(lines[:5], "") + lines[5][:20]
	os.Remove(out)
	if err := os.WriteFile(out+".partial", []byte(partial), 0o644); err != nil {
		t.Fatal(err)
	}
	se.Reset()
	if code := Main(args, &so, &se); code != 2 || !strings.Contains(se.String(), "--resume") {
		t.Fatalf("leftover .partial without --resume: exit %d, %s", code, se.String())
	}
	se.Reset()
	if code := Main(append(args, "--resume"), &so, &se); code != 0 {
		t.Fatalf("resume: exit %d: %s", code, se.String())
	}
	resumed, _ := os.ReadFile(out)
	// Rows are written in point order whatever order they finished in, so
	// the resumed file is the uninterrupted one, byte for byte.
	if string(resumed) != string(full) {
		t.Fatalf("resumed sweep differs from an uninterrupted one:\n%s\n---\n%s", resumed, full)
	}
}

func TestSweepBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"groups":[{"workloads":["seq"],"policies":["dsb"]}]}`), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sweep", "--file", bad}, "unknown policy"},
		{[]string{"sweep", "--file", filepath.Join(dir, "none.json")}, "no such file"},
		{[]string{"sweep", "--policies", "range"}, "without --workloads"},
		{[]string{"sweep", "--workloads", "seq", "--cpus", "two"}, "not a number"},
		{[]string{"sweep", "--workloads", "seq", "--geometries", "48x48"}, "L1:L2:WALKCACHE"},
		{[]string{"sweep", "--workloads", "seq", "--seeds", "-1"}, "--seeds"},
		{[]string{"sweep", "--out", filepath.Join(dir, "x.csv"), "--resume", "--workloads", "seq"}, "neither"},
	} {
		var so, se bytes.Buffer
		if code := Main(tc.args, &so, &se); code != 2 || !strings.Contains(se.String(), tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, se.String(), tc.want)
		}
	}
}
