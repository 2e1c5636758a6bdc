package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mmubench/mmubench/bench"
)

const reportCSV = "../../bench/testdata/report.csv"

// report runs cmdReport and returns the exit status Main would give it,
// its output and its error.
func report(args ...string) (code int, stdout, stderr string, err error) {
	var so, se bytes.Buffer
	err = cmdReport(args, &so, &se)
	var ue usageError
	switch {
	case err == nil:
		code = 0
	case errors.As(err, &ue):
		code = 2
	default:
		code = 1
	}
	return code, so.String(), se.String(), err
}

// writeCSV writes a results CSV with the real header and the given rows.
func writeCSV(t *testing.T, dir, name string, header bool, rows ...string) string {
	t.Helper()
	s := ""
	if header {
		s = strings.Join(bench.CSVHeader, ",") + "\n"
	}
	for _, r := range rows {
		s += r + "\n"
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// csvRow is a row of the real header's width with workload, policy and
// miss_rate set.
func csvRow(workload, policy, missRate string) string {
	r := make([]string, len(bench.CSVHeader))
	for i, h := range bench.CSVHeader {
		switch h {
		case "workload":
			r[i] = workload
		case "policy":
			r[i] = policy
		case "nested", "sched", "walk_cache", "replacement", "version":
			r[i] = "x"
		case "miss_rate":
			r[i] = missRate
		case "first_violation", "errors", "cycles_per_iter", "hot_miss_rate":
		default:
			r[i] = "1"
		}
	}
	return strings.Join(r, ",")
}

func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	empty := writeCSV(t, dir, "empty.csv", false)
	headerOnly := writeCSV(t, dir, "header.csv", true)
	noHeader := writeCSV(t, dir, "noheader.csv", false, csvRow("w", "p", "0.1"), csvRow("w", "p", "0.2"))
	short := writeCSV(t, dir, "short.csv", true, csvRow("w", "p", "0.1"), "w,p,0.2")
	nonNumeric := writeCSV(t, dir, "nan.csv", true, csvRow("w", "p", "0.1"), csvRow("w", "p", "high"))
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stdout (code 0) or in the error
	}{
		{"default", []string{reportCSV}, 0, "| reclaim-mprotect |    4/5 l |      0/5 |"},
		{"detail", []string{reportCSV, "--detail"}, 0, "reclaim-mprotect │ flush-mm │   none │    5 │       0/5"},
		{"flags-first", []string{"--by", "policy", "--metrics", "dsb,tlbi", reportCSV}, 0, "dsb-only │   10 │      6/10"},
		{"flags-after", []string{reportCSV, "--by", "policy", "--metrics", "tlbi"}, 0, "[100, 305]"},
		{"sparse-metric", []string{reportCSV, "--metrics", "cycles_per_iter"}, 0, "no values"},
		{"help", []string{"-h"}, 0, ""},
		{"no-file", nil, 2, "missing results file"},
		{"two-files", []string{reportCSV, reportCSV}, 2, "unexpected argument"},
		{"bad-flag", []string{reportCSV, "--colour", "x"}, 2, "flag provided but not defined"},
		{"bad-format", []string{reportCSV, "--format", "x"}, 2, `--format "x"`},
		{"unknown-metric", []string{reportCSV, "--metrics", "miss_rate,speed"}, 2, `unknown metric "speed" (available: cpus, seed, accesses`},
		{"unknown-by", []string{"--by", "workload,colour", reportCSV}, 2, `unknown --by column "colour" (available: workload, policy`},
		{"empty-name", []string{"--metrics", "tlbi,,dsb", reportCSV}, 2, "empty column name"},
		{"plot-ext", []string{filepath.Join(dir, "none.csv"), "--plot", filepath.Join(dir, "c.gif")}, 2, `unknown image format ".gif"`},
		{"plot-metric", []string{reportCSV, "--plot-metric", "speed", "--plot", filepath.Join(dir, "d.svg")}, 2, `unknown metric "speed"`},
		{"no-such-file", []string{filepath.Join(dir, "none.csv")}, 1, "no such file"},
		{"empty", []string{empty}, 1, "empty.csv: empty file: no header row"},
		{"header-only", []string{headerOnly}, 1, "header.csv: no results: the file has a header but no rows"},
		{"no-header", []string{noHeader}, 1, "no header row: line 1 names none of the results columns"},
		{"short-row", []string{short}, 1, "short.csv: line 3: 3 fields, but the header has"},
		{"non-numeric", []string{nonNumeric}, 1, `nan.csv: line 3, column miss_rate: "high" is not a number`},
		{"unwritable-plot", []string{reportCSV, "--plot", filepath.Join(dir, "missing", "c.svg")}, 1, "no such file"},
	} {
		code, stdout, stderr, err := report(tc.args...)
		got := stdout
		if err != nil {
			got = err.Error()
			if strings.Contains(got, "\n") {
				t.Errorf("%s: error of more than one line: %q", tc.name, got)
			}
		}
		if code != tc.code || !strings.Contains(got, tc.want) {
			t.Errorf("%s: exit %d, %q (stderr %q); want exit %d and %q", tc.name, code, got, stderr, tc.code, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "d.svg")); err == nil {
		t.Error("a plot was written despite a bad --plot-metric")
	}
}

func TestReportPlot(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, metric, magic string }{
		{"miss.svg", "", "<?xml"},
		{"tlbi.png", "tlbi", "\x89PNG\r\n\x1a\n"},
	} {
		args := []string{reportCSV, "--plot", filepath.Join(dir, tc.name)}
		if tc.metric != "" {
			args = append(args, "--plot-metric", tc.metric)
		}
		code, stdout, _, err := report(args...)
		if code != 0 || !strings.Contains(stdout, "wrote "+filepath.Join(dir, tc.name)) {
			t.Fatalf("%s: exit %d, %v\n%s", tc.name, code, err, stdout)
		}
		data, err := os.ReadFile(filepath.Join(dir, tc.name))
		if err != nil || len(data) < 500 || !bytes.HasPrefix(data, []byte(tc.magic)) {
			t.Errorf("%s: %d bytes, %v", tc.name, len(data), err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("%d files in the directory, want the 2 plots: a temporary file was left behind", len(entries))
	}
}

// The same file gives the same report, byte for byte.
func TestReportDeterministicOutput(t *testing.T) {
	_, a, _, err := report(reportCSV)
	if err != nil {
		t.Fatal(err)
	}
	_, b, _, _ := report(reportCSV)
	if a != b || a == "" {
		t.Fatal("two reports of one file differ")
	}
	for _, line := range strings.Split(a, "\n") {
		if n := len([]rune(line)); n > 160 {
			t.Errorf("line of %d columns: %s", n, line)
		}
	}
}

// Main dispatches "report" to cmdReport: usage errors exit 2.
func TestReportThroughMain(t *testing.T) {
	var so, se bytes.Buffer
	if code := Main([]string{"report", reportCSV}, &so, &se); code != 0 || !strings.Contains(so.String(), "dontneed-race") {
		t.Errorf("exit %d: %s%s", code, so.String(), se.String())
	}
	so.Reset()
	se.Reset()
	if code := Main([]string{"report"}, &so, &se); code != 2 || !strings.Contains(se.String(), "missing results file") {
		t.Errorf("exit %d: %s", code, se.String())
	}
}
