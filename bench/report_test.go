package bench

import (
	"bytes"
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
)

func readTestdata(t *testing.T) *Table {
	t.Helper()
	f, err := os.Open("testdata/report.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := ReadResults(f)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func findGroup(t *testing.T, groups []GroupSummary, label string) *GroupSummary {
	t.Helper()
	for i := range groups {
		if groups[i].Label() == label {
			return &groups[i]
		}
	}
	t.Fatalf("no group %s", label)
	return nil
}

// The summaries of testdata/report.csv, worked out by hand. p95 is type-7
// interpolation: with 5 values x(4) + 0.8·(x(5)-x(4)), with 10 values
// x(9) + 0.55·(x(10)-x(9)). With 5 runs the median's interval is
// [min, max] (coverage 1-2^-4); with 10 it is [x(2), x(9)].
func TestReportSummarize(t *testing.T) {
	tab := readTestdata(t)
	if !slices.Equal(tab.Header[:24], CSVHeader[:24]) {
		t.Fatalf("testdata header %v does not start with the fixed columns", tab.Header)
	}
	type want struct {
		metric                   string
		median, p95, lo, hi, cov float64
		integer                  bool
	}
	for _, tc := range []struct {
		by        []string
		label     string
		runs      int
		violating int
		want      []want
	}{
		{[]string{"workload", "policy"}, "dontneed-race/dsb-only", 5, 2, []want{
			{"miss_rate", 0.0981, 0.1105 + 0.8*0.0095, 0.0852, 0.12, 0.9375, false},
			{"l2_misses", 1450, 1582, 1320, 1600, 0.9375, true},
			{"tlbi", 110, 128, 90, 130, 0.9375, true},
			{"emu_cycles", 1203456, 1290864.2, 1176543, 1300000, 0.9375, true},
			{"violations", 0, 1.8, 0, 2, 0.9375, true},
			{"cycles_per_iter", 0, 0, 0, 0, 0, false}, // every cell empty
		}},
		{[]string{"workload", "policy"}, "dontneed-race/flush-mm", 5, 0, []want{
			{"miss_rate", 0.201, 0.205 + 0.8*0.0052, 0.195, 0.2102, 0.9375, false},
			{"dsb", 40, 41.8, 39, 42, 0.9375, true},
		}},
		{[]string{"workload", "policy"}, "reclaim-mprotect/dsb-only", 5, 4, []want{
			{"miss_rate", 0.05, 0.052 + 0.8*0.003, 0.045, 0.055, 0.9375, false},
			{"violations", 2, 3.8, 0, 4, 0.9375, true},
			{"cycles_per_iter", 12.75, 13.4, 12, 13.5, 0.9375, false},
		}},
		{[]string{"workload", "policy"}, "reclaim-mprotect/flush-mm", 5, 0, []want{
			{"miss_rate", 0.07, 0.071 + 0.8*0.001, 0.068, 0.072, 0.9375, false},
			{"emu_cycles", 2500000, 2518000, 2480000, 2520000, 0.9375, true},
		}},
		{[]string{"policy"}, "dsb-only", 10, 6, []want{
			{"miss_rate", (0.055 + 0.0852) / 2, 0.1105 + 0.55*0.0095, 0.048, 0.1105, 1 - 22.0/1024, false},
			{"tlbi", 210, 307.75, 100, 305, 1 - 22.0/1024, true},
		}},
		{[]string{"nested"}, "none", 20, 6, []want{
			{"tlbi", 71, 305 + 0.05*5, 48, 130, 1 - 2*0.020694732666015625, true},
		}},
	} {
		var metrics []string
		for _, w := range tc.want {
			metrics = append(metrics, w.metric)
		}
		groups, err := Summarize(tab, tc.by, metrics)
		if err != nil {
			t.Fatal(err)
		}
		g := findGroup(t, groups, tc.label)
		if g.Runs != tc.runs || g.ViolationRuns != tc.violating || g.ViolationsKnown != tc.runs {
			t.Errorf("%s: %d runs, %d/%d violating; want %d, %d/%d", tc.label, g.Runs, g.ViolationRuns, g.ViolationsKnown, tc.runs, tc.violating, tc.runs)
		}
		for _, w := range tc.want {
			s, ok := g.Metric(w.metric)
			if w.metric == "cycles_per_iter" && tc.label == "dontneed-race/dsb-only" {
				if s.N != 0 || !math.IsNaN(s.Median) {
					t.Errorf("%s: cycles_per_iter is empty there, got %+v", tc.label, s)
				}
				continue
			}
			if !ok || s.N != tc.runs || !near(s.Median, w.median) || !near(s.P95, w.p95) ||
				!near(s.CILow, w.lo) || !near(s.CIHigh, w.hi) || !near(s.CICoverage, w.cov) || s.Integer != w.integer {
				t.Errorf("%s %s: %+v; want %+v", tc.label, w.metric, s, w)
			}
			if w.metric == "violations" && s.Nonzero != tc.violating {
				t.Errorf("%s: violations nonzero in %d runs, want %d", tc.label, s.Nonzero, tc.violating)
			}
		}
	}
}

// Groups come out sorted by key, numbers numerically; empty metric cells
// are skipped and counted.
func TestReportGroupingAndEmptyCells(t *testing.T) {
	csv := strings.Join(CSVHeader, ",") + ",my_metric\n"
	row := func(cpus, seed, cpi string) string {
		r := make([]string, len(CSVHeader)+1)
		for i := range r {
			r[i] = "0"
		}
		r[0], r[1], r[2], r[3], r[5], r[len(r)-1] = "w", "p", "none", cpus, seed, cpi
		r[slices.Index(CSVHeader, "first_violation")] = ""
		return strings.Join(r, ",") + "\n"
	}
	csv += row("16", "1", "2.5") + row("4", "1", "") + row("4", "2", "3.5") + row("16", "2", "4.5") + row("4", "3", "1.5")
	tab, err := ReadResults(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	groups, err := Summarize(tab, []string{"cpus"}, []string{"my_metric"})
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 2 || groups[0].Label() != "4" || groups[1].Label() != "16" {
		t.Fatalf("groups %v, want 4 then 16", groups)
	}
	s := groups[0].Metrics[0]
	if groups[0].Runs != 3 || s.N != 2 || s.Median != 2.5 || s.Integer {
		t.Errorf("cpus=4: runs %d, %+v; want 3 runs, n 2, median 2.5", groups[0].Runs, s)
	}
	var b bytes.Buffer
	if err := WriteReportTable(&b, []string{"cpus"}, groups); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "(n=2)") {
		t.Errorf("table does not say only 2 runs had a value:\n%s", b.String())
	}
}

func TestReportMedianCIRank(t *testing.T) {
	for _, tc := range []struct {
		n, k int
		cov  float64
	}{
		{1, 1, 0}, {2, 1, 0.5}, {5, 1, 0.9375}, {6, 1, 0.96875}, {10, 2, 1 - 22.0/1024},
		{20, 6, 1 - 2*0.020694732666015625}, {30, 10, -1}, {300, 133, -1}, {100000, 49690, -1},
	} {
		k, cov := MedianCIRank(tc.n, 0.95)
		if k != tc.k || (tc.cov >= 0 && !near(cov, tc.cov)) || (tc.n >= 6 && cov < 0.95) {
			t.Errorf("n=%d: k=%d coverage %.6f, want k=%d coverage %.6f", tc.n, k, cov, tc.k, tc.cov)
		}
	}
}

func TestReportFormatValue(t *testing.T) {
	for _, tc := range []struct {
		v       float64
		integer bool
		want    string
	}{
		{1203456, true, "1203456"}, {41.8, true, "41.8"}, {0.098123, false, "0.09812"},
		{0.2, false, "0.2"}, {123.456, false, "123.5"}, {12345.67, false, "12345.7"}, {math.NaN(), false, "-"},
	} {
		if got := FormatValue(tc.v, tc.integer); got != tc.want {
			t.Errorf("FormatValue(%v, %v) = %q, want %q", tc.v, tc.integer, got, tc.want)
		}
	}
}

func TestReportErrors(t *testing.T) {
	header := strings.Join(CSVHeader, ",")
	// accesses (the 7th column) is not a number.
	row := "seq,flush-mm,fullmm,1,det,1,x" + strings.Repeat(",1", len(CSVHeader)-7)
	good := "seq,flush-mm,fullmm,1,det,1" + strings.Repeat(",1", len(CSVHeader)-6)
	for _, tc := range []struct{ name, csv, want string }{
		{"empty", "", "empty file: no header row"},
		{"header-only", header + "\n", "header but no rows"},
		{"no-header", good + "\n" + good + "\n", "no header row"},
		{"short-row", header + "\n" + good + "\nseq,flush-mm\n", "line 3: 2 fields, but the header has"},
		{"quoted-newline", header + "\n\"a\nb\"" + good[3:] + "\nseq,flush-mm\n", "line 4:"},
		{"not-a-number", header + "\n" + good + "\n" + row + "\n", `line 3, column accesses: "x" is not a number`},
		{"nan", header + "\n" + strings.Replace(row, ",x,", ",NaN,", 1) + "\n", "column accesses"},
		{"duplicate", header + ",seed\n", `names column "seed" twice`},
		{"bad-quote", header + "\nse\"q" + good[3:] + "\n", "line 2"},
	} {
		tab, err := ReadResults(strings.NewReader(tc.csv))
		if err == nil {
			_, err = Summarize(tab, []string{"workload"}, []string{"accesses"})
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	tab := readTestdata(t)
	var ce *ColumnError
	if _, err := Summarize(tab, []string{"colour"}, []string{"miss_rate"}); !errors.As(err, &ce) || !strings.Contains(err.Error(), "workload") {
		t.Errorf("unknown --by column: %v", err)
	}
	if _, err := Summarize(tab, []string{"workload"}, []string{"speed"}); !errors.As(err, &ce) ||
		!strings.Contains(err.Error(), "miss_rate") || strings.Contains(err.Error(), "policy") {
		t.Errorf("unknown metric (want the numeric columns named): %v", err)
	}
	if _, err := Summarize(tab, []string{"workload"}, []string{"policy"}); err == nil || !strings.Contains(err.Error(), "line 2, column policy") {
		t.Errorf("non-numeric metric column: %v", err)
	}
}

// The table does not depend on the order of the rows, and is the same twice.
func TestReportDeterministic(t *testing.T) {
	data, err := os.ReadFile("testdata/report.csv")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	reversed := []string{lines[0]}
	for i := len(lines) - 1; i > 0; i-- {
		reversed = append(reversed, lines[i])
	}
	render := func(csv string) string {
		tab, err := ReadResults(strings.NewReader(csv))
		if err != nil {
			t.Fatal(err)
		}
		g, err := Summarize(tab, DefaultReportBy, DefaultReportMetrics)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := WriteReportTable(&b, DefaultReportBy, g); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	a, b := render(string(data)), render(strings.Join(reversed, "\n")+"\n")
	if a != b || a != render(string(data)) {
		t.Fatal("report depends on row order or is not repeatable")
	}
	for _, want := range []string{"0.0981", "[0.0852, 0.12]*", "p95 0.1181", "p95 1290864.2", "4/5", "in 4/5 runs", "2/5"} {
		if !strings.Contains(a, want) {
			t.Errorf("table lacks %q:\n%s", want, a)
		}
	}
	if i := strings.Index(a, "dontneed-race"); i < 0 || i > strings.Index(a, "reclaim-mprotect") {
		t.Errorf("groups not sorted:\n%s", a)
	}
	for _, line := range strings.Split(a, "\n") {
		if n := len([]rune(line)); n > 160 {
			t.Errorf("line of %d columns:\n%s", n, line)
		}
	}
}
