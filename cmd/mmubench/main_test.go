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
		{[]string{"fly"}, `unknown command "fly" (valid: run, sweep, report, list)`},
		{[]string{"run", "--policy", "dsb"}, "valid: no-batch, dsb-only, flush-mm, range"},
		{[]string{"run", "--nested", "all"}, "valid: none, range, fullmm"},
		{[]string{"run", "--workload", "x"}, "unknown workload"},
		{[]string{"run", "--sched", "fifo"}, "valid: det, parallel"},
		{[]string{"run", "--runs", "0"}, "--runs 0"},
		{[]string{"run", "--cpus", "0"}, "CPUs"},
		{[]string{"run", "--cpus", "99"}, "99 CPUs"},
		{[]string{"run", "--format", "xml"}, "valid: table, csv, json"},
		{[]string{"run", "--rounds", "-2"}, "negative length"},
		{[]string{"run", "--seed", "-1"}, "invalid value"},
		{[]string{"run", "extra"}, "unexpected argument"},
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
