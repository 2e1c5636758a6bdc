package bench

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
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

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// The summaries of testdata/report.csv, worked out by hand: 5 seeds per
// group, so the median's interval is [min, max] (coverage 1-2^-4).
func TestReportSummarize(t *testing.T) {
	groups, err := Summarize(readTestdata(t), []string{"workload", "policy"}, []string{"miss_rate", "dsb", "violations"})
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 4 {
		t.Fatalf("%d groups, want 4", len(groups))
	}
	for _, tc := range []struct {
		label                       string
		median, p95, lo, hi         float64
		violating, nonzeroViolation int
	}{
		// p95 interpolates linearly: x(3) + 0.8*(x(4)-x(3)) of the sorted five.
		{"dontneed-race/dsb-only", 0.0981, 0.1105 + 0.8*0.0095, 0.0852, 0.12, 2, 2},
		{"dontneed-race/flush-mm", 0.201, 0.205 + 0.8*0.0052, 0.195, 0.2102, 0, 0},
		{"reclaim-mprotect/dsb-only", 0.05, 0.052 + 0.8*0.003, 0.045, 0.055, 4, 4},
		{"reclaim-mprotect/flush-mm", 0.07, 0.071 + 0.8*0.001, 0.068, 0.072, 0, 0},
	} {
		var g *GroupSummary
		for i := range groups {
			if groups[i].Label() == tc.label {
				g = &groups[i]
			}
		}
		if g == nil {
			t.Fatalf("no group %s", tc.label)
		}
		m, _ := g.Metric("miss_rate")
		if m.N != 5 || !near(m.Median, tc.median) || !near(m.P95, tc.p95) || !near(m.CILow, tc.lo) || !near(m.CIHigh, tc.hi) {
			t.Errorf("%s miss_rate: n %d median %v p95 %v CI [%v, %v]; want %v %v [%v, %v]",
				tc.label, m.N, m.Median, m.P95, m.CILow, m.CIHigh, tc.median, tc.p95, tc.lo, tc.hi)
		}
		if !near(m.CICoverage, 1-1.0/16) {
			t.Errorf("%s: coverage %v, want 0.9375", tc.label, m.CICoverage)
		}
		v, _ := g.Metric("violations")
		if g.ViolationRuns != tc.violating || g.ViolationsKnown != 5 || v.Nonzero != tc.nonzeroViolation {
			t.Errorf("%s: violating %d/%d, nonzero %d; want %d/5, %d", tc.label, g.ViolationRuns, g.ViolationsKnown, v.Nonzero, tc.violating, tc.nonzeroViolation)
		}
		if d, _ := g.Metric("dsb"); !d.Integer {
			t.Errorf("%s: dsb not recognised as a count", tc.label)
		}
	}
}

// Large samples: the order-statistic interval reaches 95%.
func TestMedianCIRank(t *testing.T) {
	for _, tc := range []struct{ n, k int }{{5, 1}, {6, 1}, {10, 2}, {30, 10}, {300, 133}} {
		k, cov := MedianCIRank(tc.n, 0.95)
		if k != tc.k || (tc.n >= 6 && cov < 0.95) {
			t.Errorf("n=%d: k=%d coverage %.4f, want k=%d", tc.n, k, cov, tc.k)
		}
	}
}

func TestReportErrors(t *testing.T) {
	header := strings.Join(CSVHeader, ",")
	// accesses (the 7th column) is not a number.
	row := "seq,flush-mm,fullmm,1,det,1,x" + strings.Repeat(",1", len(CSVHeader)-7)
	for _, tc := range []struct{ name, csv, want string }{
		{"empty", "", "no header"},
		{"header-only", header + "\n", "no rows"},
		{"short-row", header + "\nseq,flush-mm\n", "line 2"},
		{"not-a-number", header + "\n" + row + "\n", "line 2, column accesses"},
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
	if _, err := Summarize(tab, []string{"workload"}, []string{"speed"}); !errors.As(err, &ce) || !strings.Contains(err.Error(), "miss_rate") {
		t.Errorf("unknown metric: %v", err)
	}
}

// The table does not depend on the order of the rows, and is the same twice.
func TestReportDeterministic(t *testing.T) {
	data, _ := os.ReadFile("testdata/report.csv")
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
	if !strings.Contains(a, "4/5") || !strings.Contains(a, "in 4/5 runs") {
		t.Fatalf("violating runs missing:\n%s", a)
	}
}

func TestPlot(t *testing.T) {
	groups, err := Summarize(readTestdata(t), []string{"workload", "policy"}, []string{"miss_rate"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		magic []byte
	}{
		{"chart.svg", []byte("<?xml")},
		{"chart.png", []byte("\x89PNG")},
	} {
		path := filepath.Join(dir, tc.name)
		if err := PlotSummary(path, "miss_rate", []string{"workload", "policy"}, groups, "test"); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(path)
		if err != nil || len(data) < 200 || !bytes.HasPrefix(data, tc.magic) {
			t.Fatalf("%s: %d bytes, %v", tc.name, len(data), err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	if err := PlotSummary(filepath.Join(dir, "chart.gif"), "miss_rate", nil, groups, "x"); err == nil {
		t.Fatal("a .gif plot was accepted")
	}
	if err := PlotSummary(filepath.Join(dir, "missing", "chart.svg"), "miss_rate", nil, groups, "x"); err == nil {
		t.Fatal("an unwritable path was accepted")
	}
}
