package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestBadUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage"},
		{[]string{"fly"}, `unknown command "fly" (valid: run, sweep, merge, report, calibrate, explore, explain, litmus, list)`},
		{[]string{"calibrate", "--format", "xml"}, `--format "xml"`},
		{[]string{"calibrate", "--seeds", "0"}, "--seeds 0"},
		{[]string{"calibrate", "--shell1-mem", "-3"}, "--shell1-mem -3"},
		{[]string{"calibrate", "--cost", "/nonexistent.json"}, "/nonexistent.json"},
		{[]string{"run", "--compute", "-1"}, "compute -1 (must be 0.."},
		{[]string{"run", "--policy", "dsb"}, "valid: no-batch, dsb-only, flush-mm, range"},
		{[]string{"run", "--nested", "all"}, "valid: none, range, fullmm"},
		{[]string{"run", "--workload", "x"}, "unknown workload"},
		{[]string{"run", "--sched", "fifo"}, "valid: det, parallel"},
		{[]string{"run", "--runs", "0"}, "--runs 0"},
		{[]string{"run", "--cpus", "0"}, "CPUs"},
		{[]string{"run", "--cpus", "199"}, "199 CPUs"},
		{[]string{"run", "--format", "xml"}, "valid: table, csv, json"},
		{[]string{"run", "--rounds", "-2"}, "-2 rounds"},
		{[]string{"run", "--seed", "-1"}, "invalid value"},
		{[]string{"run", "extra"}, "unexpected argument"},
		{[]string{"run", "--arch", "sparc"}, `--arch: unknown arch "sparc" (valid: arm64, x86-invlpgb, x86-ipi)`},
		{[]string{"run", "--arch", "x86-ipi", "--policy", "dsb-only"}, "policy dsb-only on x86-ipi: not expressible"},
		{[]string{"sweep", "--workloads", "reclaim-mprotect", "--policies", "dsb-only", "--arch", "x86-ipi"}, "policy dsb-only on x86-ipi: not expressible"},
		{[]string{"sweep", "--workloads", "reclaim-mprotect", "--arch", "pdp11"}, `unknown arch "pdp11"`},
	} {
		var out, errb bytes.Buffer
		code := Main(tc.args, &out, &errb)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2", tc.args, code)
		}
		if !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: stderr %q does not say %q", tc.args, errb.String(), tc.want)
		}
		if strings.Contains(errb.String(), "panic") {
			t.Errorf("%v: panicked", tc.args)
		}
	}
}

func TestRunCSV(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main([]string{"run", "--workload", "dontneed-race", "--nested", "none", "--seed", "3", "--runs", "2", "--format", "csv"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want a header and 2 rows:\n%s", len(lines), out.String())
	}
	const fixed = "workload,policy,nested,cpus,sched,seed,accesses,l1_hits,l1_misses,l2_hits,l2_misses,walks,miss_rate,tlbi,dsb,flush_mm,range_flushes,faults,violations,protection_violations,lost_writes,use_after_free,emu_cycles,wall_ns"
	if !strings.HasPrefix(lines[0], fixed) {
		t.Fatalf("header %q does not start with the fixed columns", lines[0])
	}
	if !strings.HasPrefix(lines[1], "dontneed-race,flush-mm,none,4,det,3,") || !strings.HasPrefix(lines[2], "dontneed-race,flush-mm,none,4,det,4,") {
		t.Fatalf("rows:\n%s", out.String())
	}
}

// --arch runs the race on an x86 flavour: INVLPGB + TLBSYNC has arm64's
// race under dsb-only ("TLBSYNC only"), not under flush-mm; the row names
// the flavour.
func TestRunArch(t *testing.T) {
	for _, tc := range []struct {
		policy, want string
	}{
		{"dsb-only", "of 20 runs with violations"},
		{"flush-mm", "0 of 20 runs with violations"},
	} {
		var out, errb bytes.Buffer
		code := Main([]string{"run", "--arch", "x86-invlpgb", "--workload", "reclaim-mprotect", "--policy", tc.policy, "--runs", "20", "--format", "csv"}, &out, &errb)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.policy, code, errb.String())
		}
		if !strings.Contains(errb.String(), tc.want) || (tc.policy == "dsb-only" && strings.Contains(errb.String(), " 0 of 20")) {
			t.Errorf("%s: stderr %q, want %q", tc.policy, errb.String(), tc.want)
		}
		if tc.policy == "dsb-only" && !strings.Contains(errb.String(), "stale-tlb") {
			t.Errorf("dsb-only: no stale TLB entry reported: %s", errb.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if !strings.HasSuffix(lines[0], ",variant,arch") || !strings.HasSuffix(lines[1], ",x86-invlpgb") {
			t.Errorf("%s: header or row does not end with the arch:\n%s\n%s", tc.policy, lines[0], lines[1])
		}
	}
}

// A det run's schedule, written with --trace-out, replays the run with
// --replay: the same row, the same first violation.
func TestTraceOutReplay(t *testing.T) {
	dir := t.TempDir()
	trace := dir + "/s7.trace"
	base := []string{"run", "--workload", "reclaim-mprotect", "--policy", "dsb-only", "--order", "reclaim", "--format", "csv"}
	var a, b, se bytes.Buffer
	if code := Main(append(base, "--seed", "7", "--trace-out", trace), &a, &se); code != 0 {
		t.Fatalf("exit %d: %s", code, se.String())
	}
	if code := Main(append(base, "--replay", trace), &b, &se); code != 0 {
		t.Fatalf("exit %d: %s", code, se.String())
	}
	row := func(s string) string { // drop wall_ns (column 24)
		f := strings.Split(strings.Split(strings.TrimSpace(s), "\n")[1], ",")
		return strings.Join(append(f[:23:23], f[24:]...), ",")
	}
	if row(a.String()) != row(b.String()) || !strings.Contains(a.String(), "stale-tlb on cpu1 (mprotect)") {
		t.Fatalf("replay differs:\n%s\n%s", a.String(), b.String())
	}
	// The same schedule under another policy is another run: it diverges.
	var c bytes.Buffer
	Main([]string{"run", "--workload", "reclaim-mprotect", "--policy", "range", "--order", "reclaim", "--format", "csv", "--replay", trace}, &c, &se)
	if !strings.Contains(c.String(), "replay diverged") {
		t.Fatalf("replaying under another policy did not diverge:\n%s", c.String())
	}
	for _, args := range [][]string{
		append(base, "--replay", trace, "--runs", "2"),
		append(base, "--trace-out", trace, "--sched", "parallel"),
		append(base, "--replay", dir+"/none"),
	} {
		se.Reset()
		if code := Main(args, &a, &se); code != 2 {
			t.Errorf("%v: exit %d (%s), want 2", args, code, se.String())
		}
	}
}

// A run that found nothing because its seed picked the racers' other order
// says so; one in the race's own order, or one that found the race, does not.
func TestRunOrderHint(t *testing.T) {
	for _, tc := range []struct {
		args []string
		hint bool
	}{
		{[]string{"--workload", "reclaim-mprotect", "--policy", "dsb-only", "--seed", "2"}, true},  // even seed: mprotect first
		{[]string{"--workload", "reclaim-mprotect", "--policy", "dsb-only"}, false},                // seed 1: the race's order, found
		{[]string{"--workload", "reclaim-mprotect", "--policy", "flush-mm", "--runs", "2"}, false}, // both orders ran
		{[]string{"--workload", "reclaim-mprotect", "--policy", "dsb-only", "--order", "reclaim"}, false},
		{[]string{"--workload", "reclaim-mprotect", "--policy", "dsb-only", "--order", "mprotect"}, false},
		{[]string{"--workload", "seq", "--accesses", "100"}, false},
	} {
		var stdout, stderr bytes.Buffer
		if err := cmdRun(tc.args, &stdout, &stderr); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got := strings.Contains(stderr.String(), "try --order"); got != tc.hint {
			t.Errorf("%v: hint %v, want %v:\n%s", tc.args, got, tc.hint, stderr.String())
		}
	}
}
