package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mmubench/mmubench/bench"
)

// mainIn runs the command with the working directory dir.
func mainIn(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	var so, se bytes.Buffer
	code = Main(args, &so, &se)
	return code, so.String(), se.String()
}

// Bad or unusual input: a one-line error naming the problem and exit 2 —
// or, for a run that cannot be carried out, exit 1 with its error on
// stderr — and never a panic, a hang or a silent default.
func TestBadInputReproducers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	empty := write("empty.trace", "")
	binary := write("bin.trace", "\x7fELF\x02\x01\x01"+strings.Repeat("\x00\x01binary", 3000)+"\n")
	bigTrace := write("big.trace", func() string {
		var b strings.Builder
		for p := 0; p < 20000; p++ {
			fmt.Fprintf(&b, " L %x,8\n", 0x10000000+p*4096)
		}
		return b.String()
	}())
	trailing := write("trailing.json", `{"groups":[{"workloads":["seq"]}]} {"x":1}`)
	bigMem := write("bigmem.json", `{"groups":[{"workloads":["seq"],"mem_mib":1000000}]}`)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"zipf-nan", []string{"run", "--workload", "zipf", "--zipf", "NaN"}, 2, "zipf exponent NaN"},
		{"zipf-inf", []string{"run", "--workload", "zipf", "--zipf", "Inf"}, 2, "zipf exponent +Inf"},
		{"latency-overflow", []string{"run", "--sched", "parallel", "--latency", "18446744073709551615"}, 2, "delivery latency"},
		{"pages-too-many", []string{"run", "--workload", "seq", "--pages", "99999999999"}, 2, "pages 99999999999"},
		{"mem-too-small", []string{"run", "--workload", "seq", "--mem", "1", "--pages", "1024", "--accesses", "5000"}, 1, "could not be carried out"},
		{"mem-too-big", []string{"run", "--mem", "60000"}, 2, "host memory"},
		{"mem-beyond-model", []string{"run", "--mem", "100000"}, 2, "--mem 100000"},
		{"sweep-mem-too-big", []string{"sweep", "--file", bigMem}, 2, "mem_mib 1000000"},
		{"rounds-too-many", []string{"run", "--rounds", "100000000"}, 2, "100000000 rounds"},
		{"lackey-too-big", []string{"run", "--workload", "lackey:" + bigTrace}, 1, "touches 20000 pages"},
		{"lackey-binary", []string{"run", "--workload", "lackey:" + binary}, 2, "not an I, L, S or M record"},
		{"replay-empty", []string{"run", "--replay", empty}, 2, "no \"seed N\" line"},
		{"seeds-wrap", []string{"run", "--seed", "18446744073709551615", "--runs", "2"}, 2, "wrap"},
		{"out-empty", []string{"sweep", "--out", "", "--workloads", "seq"}, 2, "empty output path"},
		{"out-dir", []string{"sweep", "--out", dir, "--workloads", "seq"}, 2, "is a directory"},
		{"trace-out-nodir", []string{"run", "--trace-out", "/nonexistent/t"}, 2, "directory /nonexistent does not exist"},
		{"file-and-sched", []string{"sweep", "--file", trailing, "--sched", "parallel"}, 2, "--sched: the sweep file"},
		{"builtin-and-rounds", []string{"sweep", "--rounds", "3"}, 2, "--rounds without --workloads"},
		{"trailing-json", []string{"sweep", "--file", trailing}, 2, "something follows"},
		{"shard-bad", []string{"sweep", "--workloads", "seq", "--shard", "4/4"}, 2, "shard 4 of 4"},
		{"report-text-metric", []string{"report", "--metrics", "workload", "x.csv"}, 2, "not a numeric column"},
		{"plru-48-ways", []string{"run", "--replacement", "plru"}, 2, "use 32x32 or 64x64"},
		{"list-help", []string{"list", "-h"}, 0, ""},
		{"merge-nothing", []string{"merge", filepath.Join(dir, "m.csv")}, 2, "at least one shard"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan struct{})
			var code int
			var so, se string
			go func() {
				defer close(done)
				code, so, se = mainIn(t, dir, tc.args...)
			}()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("hung")
			}
			if code != tc.code || !strings.Contains(se, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, se, tc.code, tc.want)
			}
			if lines := strings.Count(strings.TrimSpace(se), "\n"); tc.code == 2 && lines > 0 {
				t.Fatalf("a %d-line error: %q", lines+1, se)
			}
			if len(se) > 400 {
				t.Fatalf("a %d-byte error", len(se))
			}
			_ = so
		})
	}
}

// A stride that would overflow n*stride now wraps modulo the working set.
func TestHugeStride(t *testing.T) {
	code, _, se := mainIn(t, t.TempDir(), "run", "--workload", "stride", "--stride", "9223372036854775807", "--accesses", "2000", "--pages", "64")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, se)
	}
}

// Sweeps never mix: a second sweep on the same OUT is refused naming the
// holder, rows of another sweep or duplicated ones are dropped on resume,
// garbage is refused, and the first seed is the one asked for.
func TestSweepJournalSafety(t *testing.T) {
	dir := t.TempDir()
	args := []string{"sweep", "--quiet", "--reproducible", "--workloads", "dontneed-race", "--nested", "none,fullmm", "--seeds", "3", "--rounds", "1"}
	out := filepath.Join(dir, "s.csv")

	unlock, err := bench.LockOutput(out)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, se := mainIn(t, dir, append(args, "--out", out)...); code != 2 || !strings.Contains(se, "another mmubench (pid") {
		t.Fatalf("a locked OUT: exit %d, %s", code, se)
	}
	unlock()

	if code, _, se := mainIn(t, dir, append(args, "--out", out)...); code != 0 {
		t.Fatalf("exit %d: %s", code, se)
	}
	good, _ := os.ReadFile(out)
	if code, _, se := mainIn(t, dir, append(args, "--out", out)...); code != 2 || !strings.Contains(se, "exists") {
		t.Fatalf("an existing OUT without --resume: exit %d, %s", code, se)
	}

	// Another sweep's OUT, resumed into this one: its rows are dropped.
	other := filepath.Join(dir, "other.csv")
	if code, _, se := mainIn(t, dir, "sweep", "--quiet", "--reproducible", "--workloads", "madvfree-race", "--seeds", "2", "--rounds", "1", "--out", other); code != 0 {
		t.Fatalf("exit %d: %s", code, se)
	}
	otherRows, _ := os.ReadFile(other)
	lines := strings.SplitAfter(string(good), "\n")
	mixed := string(good) + strings.SplitAfter(string(otherRows), "\n")[1] + lines[1] // a foreign row and a duplicate
	os.WriteFile(out, []byte(mixed), 0o644)
	code, _, se := mainIn(t, dir, append(args, "--out", out, "--resume")...)
	if code != 0 || !strings.Contains(se, "dropped 1 rows of points not in this sweep and 1 duplicated") {
		t.Fatalf("resume of a mixed OUT: exit %d, %s", code, se)
	}
	if got, _ := os.ReadFile(out); string(got) != string(good) {
		t.Fatalf("the resumed OUT is not the sweep's:\n%s", got)
	}

	// Garbage of the right width, and a wrong header of the right width.
	width := len(bench.SweepHeader())
	for name, data := range map[string]string{
		"garbage": string(good) + strings.Repeat("x,", width-1) + "x\n",
		"header":  strings.Repeat("h,", width-1) + "config\n" + strings.Join(lines[1:], ""),
	} {
		os.WriteFile(out, []byte(data), 0o644)
		if code, _, se := mainIn(t, dir, append(args, "--out", out, "--resume")...); code != 2 {
			t.Fatalf("%s: exit %d, %s", name, code, se)
		}
		if got, _ := os.ReadFile(out); string(got) != data {
			t.Fatalf("%s: OUT was rewritten", name)
		}
	}

	// A .partial of another sweep is refused.
	os.Remove(out)
	hdr := "# mmubench-sweep fingerprint=0000 points=9 version=0.1.0 reproducible=true shard=0/1 templates=00:1:9\n"
	os.WriteFile(out+".partial", []byte(hdr+strings.Join(lines[:2], "")), 0o644)
	if code, _, se := mainIn(t, dir, append(args, "--out", out, "--resume")...); code != 2 || !strings.Contains(se, "another sweep") {
		t.Fatalf("a foreign .partial: exit %d, %s", code, se)
	}
	os.Remove(out + ".partial")

	// --seed 0 starts at 0, as run's does.
	zero := filepath.Join(dir, "z.csv")
	if code, _, se := mainIn(t, dir, append(args, "--out", zero, "--seed", "0", "--seeds", "1")...); code != 0 {
		t.Fatalf("exit %d: %s", code, se)
	}
	z, _ := os.ReadFile(zero)
	if !strings.Contains(string(z), "\ndontneed-race,flush-mm,none,4,det,0,") {
		t.Fatalf("--seed 0 did not run seed 0:\n%s", z)
	}
}

// Ctrl-C during `run` prints the runs that finished, and says so.
func TestRunInterruptPrintsTable(t *testing.T) {
	done := make(chan struct{})
	var code int
	var so, se string
	go func() {
		defer close(done)
		code, so, se = mainIn(t, t.TempDir(), "run", "--workload", "reclaim-mprotect", "--runs", "100000")
	}()
	time.Sleep(500 * time.Millisecond)
	syscall.Kill(os.Getpid(), syscall.SIGINT)
	<-done
	if code != 1 || !strings.Contains(se, "interrupted after") || !strings.Contains(so, "reclaim-mprotect") {
		t.Fatalf("exit %d, stderr %q, stdout %q", code, se, so)
	}
}

// The issue's own check: the sweep in four shards, merged, is byte for byte
// the unsharded sweep.
func TestShardMergeCommand(t *testing.T) {
	dir := t.TempDir()
	sweep := []string{"sweep", "--quiet", "--reproducible", "--workloads", "reclaim-mprotect", "--policies", "dsb-only,flush-mm", "--seeds", "40"}
	merge := []string{"merge", "merged.csv"}
	for i := 0; i < 4; i++ {
		name := fmt.Sprintf("shard%d.csv", i)
		if code, _, se := mainIn(t, dir, append(sweep, "--shard", fmt.Sprintf("%d/4", i), "--out", name)...); code != 0 {
			t.Fatalf("shard %d: exit %d: %s", i, code, se)
		}
		merge = append(merge, name)
	}
	if code, _, se := mainIn(t, dir, merge...); code != 0 {
		t.Fatalf("merge: exit %d: %s", code, se)
	}
	if code, _, se := mainIn(t, dir, append(sweep, "--out", "whole.csv")...); code != 0 {
		t.Fatalf("unsharded: exit %d: %s", code, se)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "merged.csv"))
	b, _ := os.ReadFile(filepath.Join(dir, "whole.csv"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("merged (%d bytes) differs from unsharded (%d bytes)", len(a), len(b))
	}
	// A shard missing, or one given twice, is refused.
	if code, _, se := mainIn(t, dir, "merge", "--force", "m2.csv", "shard0.csv", "shard1.csv", "shard2.csv"); code != 2 || !strings.Contains(se, "shards 3 of 4 are missing") {
		t.Fatalf("a missing shard: exit %d, %s", code, se)
	}
}
