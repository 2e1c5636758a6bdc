package bench

import (
	"bufio"
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/montanaflynn/stats"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// DefaultReportBy are the columns `mmubench report` groups runs by.
var DefaultReportBy = []string{"workload", "policy", "nested"}

// DefaultReportMetrics are the columns `mmubench report` summarizes.
var DefaultReportMetrics = []string{"miss_rate", "l2_misses", "tlbi", "dsb", "emu_cycles", "violations"}

// CILevel is the confidence level the median's interval aims for.
const CILevel = 0.95

// Table is a results CSV as read: the header and the data rows, each with
// the line of the input it starts on. Columns are found by name (Column),
// never by position, so files from older and newer versions both read.
type Table struct {
	Header []string
	Rows   [][]string
	Lines  []int
}

// Where returns the rows whose columns have the given values (column=value,
// all of them); an unknown column is a *ColumnError.
func (t *Table) Where(conds []string) (*Table, error) {
	type cond struct {
		col int
		val string
	}
	var cs []cond
	for _, c := range conds {
		name, val, ok := strings.Cut(c, "=")
		if !ok {
			return nil, fmt.Errorf("--where %q: want column=value", c)
		}
		i := t.Column(name)
		if i < 0 {
			return nil, &ColumnError{What: "--where column", Name: name, Available: t.Header}
		}
		cs = append(cs, cond{i, val})
	}
	out := &Table{Header: t.Header}
	for r, row := range t.Rows {
		keep := true
		for _, c := range cs {
			keep = keep && row[c.col] == c.val
		}
		if keep {
			out.Rows = append(out.Rows, row)
			out.Lines = append(out.Lines, t.Lines[r])
		}
	}
	return out, nil
}

// Column is the index of the column named name, or -1.
func (t *Table) Column(name string) int {
	return slices.Index(t.Header, name)
}

// ReadResults reads a results CSV (as written by NewWriter(w, "csv")): a
// header row naming the columns, then one row per run. Every row must have
// as many fields as the header. A file with no header, or a header and no
// rows, is an error.
func ReadResults(r io.Reader) (*Table, error) {
	br := bufio.NewReader(r)
	if head, _ := br.Peek(len(journalMagic)); string(head) == journalMagic {
		// A shard's file: its first line says which sweep it is.
		if _, err := br.ReadString('\n'); err != nil {
			return nil, fmt.Errorf("line 1: %w", err)
		}
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1 // checked below, to say which line is wrong
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("empty file: no header row")
	}
	if err != nil {
		return nil, err
	}
	for i := range header {
		header[i] = strings.TrimSpace(header[i])
	}
	header[0] = strings.TrimPrefix(header[0], "\ufeff")
	if !slices.ContainsFunc(header, func(h string) bool { return slices.Contains(CSVHeader, h) }) {
		return nil, fmt.Errorf("no header row: line 1 names none of the results columns (%s, ...)",
			strings.Join(CSVHeader[:6], ","))
	}
	for i, h := range header {
		if h == "" {
			return nil, fmt.Errorf("line 1: header column %d has no name", i+1)
		}
		if slices.Index(header, h) != i {
			return nil, fmt.Errorf("line 1: header names column %q twice", h)
		}
	}
	t := &Table{Header: header}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(header) {
			return nil, fmt.Errorf("line %d: %d fields, but the header has %d", line, len(rec), len(header))
		}
		t.Rows = append(t.Rows, rec)
		t.Lines = append(t.Lines, line)
	}
	if len(t.Rows) == 0 {
		return nil, errors.New("no results: the file has a header but no rows")
	}
	return t, nil
}

// ColumnError is a column asked for by name that the table does not have
// (or, for a metric, one that is not numeric).
type ColumnError struct {
	What      string   // "metric" or "--by column"
	Name      string   // the name asked for
	Available []string // the names that would do
}

func (e *ColumnError) Error() string {
	return fmt.Sprintf("unknown %s %q (available: %s)", e.What, e.Name, strings.Join(e.Available, ", "))
}

// Summary is one metric over the runs (seeds) of one group.
type Summary struct {
	Metric string
	// N is the number of runs with a value (empty cells are skipped).
	N int
	// Median and P95 (linear interpolation, stats.Percentile); NaN when N is 0.
	Median, P95 float64
	// CILow and CIHigh bound a confidence interval of the median: the
	// distribution-free order-statistic interval [x(k), x(n+1-k)] with the
	// largest k whose binomial coverage is at least CILevel. With fewer
	// than 6 runs no such k exists and the interval is [min, max].
	CILow, CIHigh float64
	// CICoverage is the interval's exact coverage, 1 - 2·P(Bin(n, ½) < k).
	CICoverage float64
	// Integer is set when every value is a whole number (a count).
	Integer bool
	// Nonzero is how many of the N runs have a value above zero: for a
	// violation count, the schedules that broke.
	Nonzero int
}

// GroupSummary is the runs that share the values of the grouping columns.
type GroupSummary struct {
	Key  []string // values of the grouping columns, in their order
	Runs int      // rows in the group
	// ViolationRuns of ViolationsKnown rows have violations > 0 (rows
	// with an empty violations cell are not known either way).
	ViolationRuns, ViolationsKnown int
	Metrics                        []Summary // in the order asked for
}

// Label is the group's key joined by "/".
func (g *GroupSummary) Label() string { return strings.Join(g.Key, "/") }

// Metric is the summary of the named metric.
func (g *GroupSummary) Metric(name string) (Summary, bool) {
	for _, s := range g.Metrics {
		if s.Metric == name {
			return s, true
		}
	}
	return Summary{}, false
}

// Summarize groups t's rows by the columns by and summarizes each metric
// column in every group. Groups come out sorted by key (numbers in
// numeric order), so the result does not depend on the order of the rows.
// An unknown column is a *ColumnError; a value that is not a finite number
// in a metric column (or in violations) is an error naming its line.
func Summarize(t *Table, by, metrics []string) ([]GroupSummary, error) {
	byIdx := make([]int, len(by))
	for i, name := range by {
		if byIdx[i] = t.Column(name); byIdx[i] < 0 {
			return nil, &ColumnError{"--by column", name, t.Header}
		}
	}
	metIdx := make([]int, len(metrics))
	for i, name := range metrics {
		if metIdx[i] = t.Column(name); metIdx[i] < 0 {
			return nil, &ColumnError{"metric", name, numericColumns(t)}
		}
	}
	violIdx := t.Column("violations")

	type group struct {
		key    []string
		rows   []int
		values [][]float64 // per metric
		g      GroupSummary
	}
	var groups []*group
	byKey := map[string]*group{}
	for r, row := range t.Rows {
		key := make([]string, len(by))
		for i, c := range byIdx {
			key[i] = row[c]
		}
		k := strings.Join(key, "\x00")
		g := byKey[k]
		if g == nil {
			g = &group{key: key, values: make([][]float64, len(metrics))}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.rows = append(g.rows, r)
		for i, c := range metIdx {
			v, ok, err := t.number(r, c)
			if err != nil {
				return nil, err
			}
			if ok {
				g.values[i] = append(g.values[i], v)
			}
		}
		if violIdx >= 0 {
			v, ok, err := t.number(r, violIdx)
			if err != nil {
				return nil, err
			}
			if ok {
				g.g.ViolationsKnown++
				if v > 0 {
					g.g.ViolationRuns++
				}
			}
		}
	}
	slices.SortFunc(groups, func(a, b *group) int { return compareKeys(a.key, b.key) })

	out := make([]GroupSummary, len(groups))
	for i, g := range groups {
		gs := g.g
		gs.Key, gs.Runs = g.key, len(g.rows)
		for m, name := range metrics {
			s, err := summarize(name, g.values[m])
			if err != nil {
				return nil, fmt.Errorf("%s in group %s: %w", name, strings.Join(g.key, "/"), err)
			}
			gs.Metrics = append(gs.Metrics, s)
		}
		out[i] = gs
	}
	return out, nil
}

// number parses row r's cell in column c: ok is false for an empty cell.
func (t *Table) number(r, c int) (v float64, ok bool, err error) {
	s := strings.TrimSpace(t.Rows[r][c])
	if s == "" {
		return 0, false, nil
	}
	v, err = strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false, fmt.Errorf("line %d, column %s: %q is not a number", t.Lines[r], t.Header[c], s)
	}
	return v, true, nil
}

// numericColumns are the columns with a number in every non-empty cell
// and at least one number.
func numericColumns(t *Table) []string {
	var names []string
	for c, name := range t.Header {
		seen := false
		for r := range t.Rows {
			_, ok, err := t.number(r, c)
			if err != nil {
				seen = false
				break
			}
			seen = seen || ok
		}
		if seen {
			names = append(names, name)
		}
	}
	return names
}

// compareKeys orders group keys column by column, numbers numerically and
// before words.
func compareKeys(a, b []string) int {
	for i := range a {
		x, ex := strconv.ParseFloat(a[i], 64)
		y, ey := strconv.ParseFloat(b[i], 64)
		var c int
		switch {
		case ex == nil && ey == nil:
			c = cmp.Compare(x, y)
		case ex == nil:
			c = -1
		case ey == nil:
			c = 1
		}
		if c == 0 {
			c = strings.Compare(a[i], b[i])
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// summarize computes one metric's Summary from its values.
func summarize(name string, values []float64) (Summary, error) {
	s := Summary{Metric: name, N: len(values), Integer: true}
	if len(values) == 0 {
		nan := math.NaN()
		s.Median, s.P95, s.CILow, s.CIHigh = nan, nan, nan, nan
		return s, nil
	}
	for _, v := range values {
		if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
			s.Integer = false
		}
		if v > 0 {
			s.Nonzero++
		}
	}
	var err error
	if s.Median, err = stats.Median(values); err != nil {
		return s, err
	}
	if s.P95, err = stats.Percentile(values, 95); err != nil {
		return s, err
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	k, coverage := MedianCIRank(len(sorted), CILevel)
	s.CILow, s.CIHigh, s.CICoverage = sorted[k-1], sorted[len(sorted)-k], coverage
	return s, nil
}

// MedianCIRank is the rank k (1-based) of the lower end of the
// distribution-free confidence interval of the median of n values,
// [x(k), x(n+1-k)], and that interval's exact coverage
// 1 - 2·P(Bin(n, ½) ≤ k-1). k is the largest rank whose coverage is at
// least level; when even [min, max] falls short (n < 6 for 95%), k is 1.
func MedianCIRank(n int, level float64) (k int, coverage float64) {
	if n < 1 {
		return 0, 0
	}
	tail := (1 - level) / 2
	// P(B = j) for B ~ Bin(n, ½), in log space so large n does not underflow.
	logHalfN := float64(n) * math.Log(0.5)
	lgN, _ := math.Lgamma(float64(n + 1))
	pmf := func(j int) float64 {
		lgJ, _ := math.Lgamma(float64(j + 1))
		lgNJ, _ := math.Lgamma(float64(n - j + 1))
		return math.Exp(lgN - lgJ - lgNJ + logHalfN)
	}
	k, tailK := 1, pmf(0) // [min, max] unless a narrower interval covers
	cdf := 0.0
	for j := 0; 2*j < n; j++ {
		if cdf += pmf(j); cdf > tail {
			break
		}
		k, tailK = j+1, cdf // P(B ≤ k-1) ≤ tail
	}
	return k, 1 - 2*tailK
}

// WriteReportTable renders groups (from Summarize with the columns by) as
// a terminal table: one row per group; per metric the median, its 95%
// interval and the p95, one to a line; then a legend.
func WriteReportTable(w io.Writer, by []string, groups []GroupSummary) error {
	header := append(slices.Clone(by), "runs", "violating")
	if len(groups) > 0 {
		for _, s := range groups[0].Metrics {
			header = append(header, s.Metric)
		}
	}
	short := false
	rows := make([][]string, len(groups))
	for i, g := range groups {
		viol := "-"
		if g.ViolationsKnown > 0 {
			viol = fmt.Sprintf("%d/%d", g.ViolationRuns, g.ViolationsKnown)
		}
		row := append(slices.Clone(g.Key), strconv.Itoa(g.Runs), viol)
		for _, s := range g.Metrics {
			row = append(row, s.cell(g.Runs))
			short = short || (s.N > 0 && s.CICoverage < CILevel)
		}
		rows[i] = row
	}
	t := tablewriter.NewWriter(w)
	t.Options(tablewriter.WithHeaderAutoFormat(tw.Off), tablewriter.WithRowAlignment(tw.AlignRight))
	t.Header(header)
	if err := t.Bulk(rows); err != nil {
		return err
	}
	if err := t.Render(); err != nil {
		return err
	}
	legend := "Per metric: median / [95% CI of the median: order-statistic (binomial) interval] / p95, over the runs.\n" +
		"violating: runs with violations > 0, of the runs; \"in k/n runs\": runs where that kind of violation occurred.\n"
	if short {
		legend += "*: under 6 runs no interval reaches 95%: shown is [min, max], covering 1-2^(1-n) (93.75% for n=5).\n"
	}
	_, err := io.WriteString(w, legend)
	return err
}

// cell is s as a table cell for a group of runs rows.
func (s Summary) cell(runs int) string {
	if s.N == 0 {
		return "no values"
	}
	ci := "[" + FormatValue(s.CILow, s.Integer) + ", " + FormatValue(s.CIHigh, s.Integer) + "]"
	if s.CICoverage < CILevel {
		ci += "*"
	}
	p95 := "p95 " + FormatValue(s.P95, s.Integer)
	if s.N != runs {
		p95 += fmt.Sprintf(" (n=%d)", s.N)
	}
	cell := FormatValue(s.Median, s.Integer) + "\n" + ci + "\n" + p95
	if violationKinds[s.Metric] {
		cell += fmt.Sprintf("\nin %d/%d runs", s.Nonzero, s.N)
	}
	return cell
}

// violationKinds are the violation-count columns, whose cells also say in
// how many runs the count was above zero (schedules that broke, by kind).
var violationKinds = map[string]bool{
	"violations": true, "protection_violations": true, "lost_writes": true, "use_after_free": true, "stale_tlb": true,
}

// FormatValue formats v to suit its magnitude: counts (integer set) as
// whole numbers (one decimal for a value between two, as a median or
// percentile may be), other values to 4 significant digits.
func FormatValue(v float64, integer bool) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case integer && v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case integer || math.Abs(v) >= 1e4:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
