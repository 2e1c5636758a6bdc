package bench

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/mmubench/mmubench/workloads"
)

// The two tables a sweep or a report leads with, for a linux-mm thread:
// the verdict matrix (which policy breaks which race, and how) and the
// cost table (each workload's headline figure per policy, against a named
// baseline). They are made narrow on purpose — under 80 columns for the
// default sweep — and render as text (an ASCII table), email (plain
// columns, no box drawing: ready for a cover letter) or markdown.

// emailWidth is the widest line of the email format (linux-mm's plain
// text, quoted once).
const emailWidth = 78

// TextTable is a small table of strings with a title.
type TextTable struct {
	Title  string
	Header []string
	Rows   [][]string
	Notes  []string // lines printed under it
}

// Formats of the summary tables.
var TextFormats = []string{"text", "email", "markdown"}

// RenderTables writes tables in format (text, email or markdown), after a
// provenance line.
func RenderTables(w io.Writer, format, provenance string, tables ...*TextTable) error {
	if !slices.Contains(TextFormats, format) {
		return fmt.Errorf("unknown format %q (valid: %s)", format, strings.Join(TextFormats, ", "))
	}
	if provenance != "" {
		lines := []string{provenance}
		switch format {
		case "markdown":
			lines = []string{"`" + provenance + "`"}
		case "email":
			lines = wrap(provenance, emailWidth)
		default:
			lines = wrap(provenance, 80)
		}
		for _, l := range lines {
			if _, err := fmt.Fprintln(w, l); err != nil {
				return err
			}
		}
	}
	for _, t := range tables {
		if t == nil || len(t.Rows) == 0 {
			continue
		}
		var err error
		switch format {
		case "text":
			err = t.renderText(w)
		case "email":
			err = t.renderEmail(w)
		default:
			err = t.renderMarkdown(w)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (t *TextTable) renderText(w io.Writer) error {
	fmt.Fprintf(w, "\n%s\n", strings.Join(wrap(t.Title, 80), "\n"))
	tb := tablewriter.NewTable(w,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{Symbols: tw.NewSymbols(tw.StyleASCII)})),
		tablewriter.WithHeaderAutoFormat(tw.Off), tablewriter.WithRowAlignment(tw.AlignRight),
		tablewriter.WithHeaderAlignment(tw.AlignRight))
	tb.Header(t.Header)
	if err := tb.Bulk(t.Rows); err != nil {
		return err
	}
	if err := tb.Render(); err != nil {
		return err
	}
	return t.notes(w, "")
}

// renderEmail lays the table out in plain columns: the first left-aligned,
// the rest right-aligned, two spaces apart, the header underlined.
func (t *TextTable) renderEmail(w io.Writer) error {
	width := make([]int, len(t.Header))
	for _, r := range append([][]string{t.Header}, t.Rows...) {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	gap, total := "  ", 0
	for _, n := range width {
		total += n + 2
	}
	if total-2 > emailWidth {
		gap = " " // one space apart rather than a line too wide to quote
	}
	line := func(r []string) string {
		var b strings.Builder
		for i, c := range r {
			if i > 0 {
				b.WriteString(gap)
			}
			pad := strings.Repeat(" ", width[i]-len(c))
			if i == 0 {
				b.WriteString(c + pad)
			} else {
				b.WriteString(pad + c)
			}
		}
		return strings.TrimRight(b.String(), " ")
	}
	fmt.Fprintf(w, "\n%s\n\n", strings.Join(wrap(t.Title, emailWidth), "\n"))
	fmt.Fprintln(w, line(t.Header))
	rule := make([]string, len(width))
	for i, n := range width {
		rule[i] = strings.Repeat("-", n)
	}
	fmt.Fprintln(w, line(rule))
	for _, r := range t.Rows {
		fmt.Fprintln(w, line(r))
	}
	for _, n := range t.Notes {
		fmt.Fprintln(w, strings.Join(wrap(n, emailWidth), "\n"))
	}
	return nil
}

func (t *TextTable) renderMarkdown(w io.Writer) error {
	fmt.Fprintf(w, "\n**%s**\n\n", t.Title)
	esc := func(r []string) string {
		out := make([]string, len(r))
		for i, c := range r {
			out[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		return "| " + strings.Join(out, " | ") + " |"
	}
	fmt.Fprintln(w, esc(t.Header))
	align := make([]string, len(t.Header))
	for i := range align {
		align[i] = "---:"
	}
	align[0] = "---"
	fmt.Fprintln(w, "|"+strings.Join(align, "|")+"|")
	for _, r := range t.Rows {
		fmt.Fprintln(w, esc(r))
	}
	return t.notes(w, "\n")
}

func (t *TextTable) notes(w io.Writer, lead string) error {
	for i, n := range t.Notes {
		if i == 0 {
			fmt.Fprint(w, lead)
		}
		fmt.Fprintln(w, strings.Join(wrap(n, 80), "\n"))
	}
	return nil
}

// violationKindColumns and their one-letter marks in the verdict matrix.
var violationKindColumns = []struct{ col, mark, name string }{
	{"protection_violations", "p", "protection violation"},
	{"lost_writes", "l", "lost write"},
	{"use_after_free", "u", "use after free"},
	{"stale_tlb", "s", "stale TLB entry at syscall return"},
}

// Verdicts is the verdict matrix of t: for every workload that is a race
// (or had violations), a row per nested policy it ran under and a column
// per batch policy, each cell the runs with violations of the runs, with
// the kinds that occurred. Nil if t has no violation counts.
func Verdicts(t *Table) (*TextTable, error) {
	if t.Column("violations") < 0 {
		return nil, nil
	}
	// A catalogue race's variants (its kernel code before and after the
	// fix) and the machine flavours are rows of their own; CSVs from
	// before the columns have none.
	by := []string{"workload", "nested", "policy"}
	hasVariant := t.Column("variant") >= 0
	if hasVariant {
		by = append(by, "variant")
	}
	archs := hasArch(t)
	if archs {
		by = append(by, "arch")
	}
	groups, err := Summarize(t, by, presentColumns(t, kindCols()))
	if err != nil {
		return nil, err
	}
	type rowKey struct{ workload, nested, variant, arch string }
	cells := map[rowKey]map[string]string{}
	var rows []rowKey
	var policies []string
	nestedOf := map[string]map[string]bool{}
	bad := map[string]bool{}
	used := map[string]bool{}
	for _, g := range groups {
		w, n, p := g.Key[0], g.Key[1], g.Key[2]
		v := ""
		if hasVariant {
			v = g.Key[3]
		}
		if g.ViolationRuns > 0 {
			bad[w] = true
		}
		k := rowKey{w, n, v, ""}
		if archs {
			k.arch = cmp.Or(g.Key[len(g.Key)-1], "arm64")
		}
		if cells[k] == nil {
			cells[k] = map[string]string{}
			rows = append(rows, k)
		}
		if nestedOf[w] == nil {
			nestedOf[w] = map[string]bool{}
		}
		nestedOf[w][n] = true
		if !slices.Contains(policies, p) {
			policies = append(policies, p)
		}
		cell := "-"
		if g.ViolationsKnown > 0 {
			cell = fmt.Sprintf("%d/%d", g.ViolationRuns, g.ViolationsKnown)
			marks := ""
			for _, kc := range violationKindColumns {
				if s, ok := g.Metric(kc.col); ok && s.Nonzero > 0 {
					marks += kc.mark
					used[kc.mark] = true
				}
			}
			if marks != "" {
				cell += " " + marks
			}
		}
		cells[k][p] = cell
	}
	slices.SortStableFunc(policies, func(a, b string) int { return cmp.Compare(policyRank(a), policyRank(b)) })
	out := &TextTable{Title: "Verdicts: runs with violations / runs", Header: append([]string{"race"}, policies...)}
	variants := false
	for _, k := range rows {
		if !isRace(k.workload) && !bad[k.workload] {
			continue
		}
		label := k.workload
		if len(nestedOf[k.workload]) > 1 {
			label += " " + k.nested
		}
		if k.variant != "" {
			label += " " + k.variant
			variants = true
		}
		if k.arch != "" {
			label += " (" + k.arch + ")"
		}
		row := []string{label}
		for _, p := range policies {
			c := cells[k][p]
			if c == "" {
				c = "."
			}
			row = append(row, c)
		}
		out.Rows = append(out.Rows, row)
	}
	var legend []string
	for _, kc := range violationKindColumns {
		if used[kc.mark] {
			legend = append(legend, kc.mark+" = "+kc.name)
		}
	}
	if len(legend) > 0 {
		out.Notes = append(out.Notes, wrap("Kinds: "+strings.Join(legend, ", ")+".", 76)...)
	}
	for _, ns := range nestedOf {
		if len(ns) > 1 {
			out.Notes = append(out.Notes, "A second word in a row: the nested-gather policy it ran under.")
			break
		}
	}
	if variants {
		out.Notes = append(out.Notes, wrap("Fixed, unfixed: the race's kernel code after its fix and before it (--variant).", 76)...)
	}
	return out, nil
}

func kindCols() []string {
	var c []string
	for _, kc := range violationKindColumns {
		c = append(c, kc.col)
	}
	return c
}

// presentColumns is the names of cols that t has.
func presentColumns(t *Table, cols []string) []string {
	var out []string
	for _, c := range cols {
		if t.Column(c) >= 0 {
			out = append(out, c)
		}
	}
	return out
}

func isRace(workload string) bool {
	w, err := workloads.Get(workload)
	return err == nil && (w.Orders != nil || w.Variants != nil)
}

// policyRank orders policies as the threads argue them: the old ones, the
// fix, the alternatives.
func policyRank(p string) int {
	if i := slices.Index([]string{"no-batch", "dsb-only", "flush-mm", "range", "range-ideal"}, p); i >= 0 {
		return i
	}
	return 100
}

// headline is a workload's figure in the cost table and whether more is
// better.
type headline struct {
	metric, what string
	higher       bool
}

var headlines = map[string]headline{
	"pageout-loop":           {"cycles_per_iter", "emulated cycles per iteration", false},
	"mprotect-under-reclaim": {"flush_overhead_pct", "% of hot threads' time refilling flushed entries", false},
	"swap-bench":             {"accesses_per_sec", "accesses per emulated second", true},
	"unixbench-shell1":       {"index", "UnixBench index", true},
}

func headlineOf(workload string) headline {
	if h, ok := headlines[workload]; ok {
		return h
	}
	return headline{"miss_rate", "TLB miss rate (walks per access)", false}
}

// Costs is the cost table of t: per workload its headline figure, per
// policy (and nested policy where it varies) the median across seeds with
// the half-width of its 95% interval, and the change against the baseline
// (no-batch if it ran, else flush-mm, else the first).
func Costs(t *Table) ([]*TextTable, error) {
	var out []*TextTable
	wcol := t.Column("workload")
	if wcol < 0 {
		return nil, nil
	}
	var names []string
	for _, r := range t.Rows {
		if !slices.Contains(names, r[wcol]) {
			names = append(names, r[wcol])
		}
	}
	for _, w := range names {
		h := headlineOf(w)
		if t.Column(h.metric) < 0 {
			continue
		}
		sub, err := t.Where([]string{"workload=" + w})
		if err != nil {
			return nil, err
		}
		by := []string{"policy"}
		if hasArch(sub) {
			by = append(by, "arch")
		}
		if distinct(sub, "nested") > 1 {
			// The cost under today's nested fix; its verdicts are above.
			if today, err := sub.Where([]string{"nested=fullmm"}); err == nil && len(today.Rows) > 0 {
				sub = today
			} else {
				by = append(by, "nested")
			}
		}
		groups, err := Summarize(sub, by, []string{h.metric})
		if err != nil {
			return nil, err
		}
		slices.SortStableFunc(groups, func(a, b GroupSummary) int { return cmp.Compare(policyRank(a.Key[0]), policyRank(b.Key[0])) })
		var base *GroupSummary
		for _, name := range []string{"no-batch", "flush-mm"} {
			for i := range groups {
				if base == nil && groups[i].Key[0] == name {
					base = &groups[i]
				}
			}
		}
		if base == nil && len(groups) > 0 {
			base = &groups[0]
		}
		tab := &TextTable{Title: fmt.Sprintf("%s: %s", w, h.what), Header: []string{"policy", "median", "+/-95%", "vs " + base.Label()}}
		better := "lower is better"
		if h.higher {
			better = "higher is better"
		}
		valued := false
		for _, g := range groups {
			s, _ := g.Metric(h.metric)
			if s.N == 0 {
				continue
			}
			valued = true
			half := math.Max(s.Median-s.CILow, s.CIHigh-s.Median)
			change := "-"
			if b, _ := base.Metric(h.metric); g.Label() != base.Label() && b.N > 0 && b.Median != 0 {
				change = fmt.Sprintf("%+.1f%%", 100*(s.Median/b.Median-1))
			}
			tab.Rows = append(tab.Rows, []string{g.Label(), FormatValue(s.Median, s.Integer), FormatValue(half, s.Integer), change})
		}
		if !valued || allSame(tab.Rows) {
			continue // nothing to compare
		}
		tab.Notes = append(tab.Notes, fmt.Sprintf("Median over %s; +/-: the larger side of its 95%% interval; %s.", seedsPhrase(sub), better))
		out = append(out, tab)
	}
	return out, nil
}

// allSame reports whether every row has the same median (column 1).
func allSame(rows [][]string) bool {
	for _, r := range rows {
		if r[1] != rows[0][1] {
			return false
		}
	}
	return true
}

func distinct(t *Table, col string) int {
	c := t.Column(col)
	if c < 0 {
		return 0
	}
	seen := map[string]bool{}
	for _, r := range t.Rows {
		seen[r[c]] = true
	}
	return len(seen)
}

// seedsPhrase says which seeds t's runs used.
func seedsPhrase(t *Table) string {
	c := t.Column("seed")
	if c < 0 {
		return fmt.Sprintf("%d runs", len(t.Rows))
	}
	lo, hi := uint64(math.MaxUint64), uint64(0)
	for _, r := range t.Rows {
		if v, err := strconv.ParseUint(r[c], 10, 64); err == nil {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if lo > hi {
		return fmt.Sprintf("%d runs", len(t.Rows))
	}
	if lo == hi {
		return fmt.Sprintf("seed %d", lo)
	}
	return fmt.Sprintf("seeds %d-%d", lo, hi)
}

// Provenance is the line that says what produced a summary of t: the
// mmubench version of its runs, the command and the seeds.
func Provenance(t *Table, command string) string {
	version := "unknown version"
	if c := t.Column("version"); c >= 0 && len(t.Rows) > 0 {
		version = t.Rows[0][c]
	}
	return fmt.Sprintf("mmubench %s; %d runs, %s; %s", version, len(t.Rows), seedsPhrase(t), command)
}

// Wrap breaks s into lines of at most n columns at spaces (a word longer
// than n stays whole).
func Wrap(s string, n int) []string { return wrap(s, n) }

// wrap breaks s into lines of at most n columns at spaces.
func wrap(s string, n int) []string {
	var out []string
	line := ""
	for _, word := range strings.Fields(s) {
		if line != "" && len(line)+1+len(word) > n {
			out = append(out, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		out = append(out, line)
	}
	return out
}

// DetailTable is the per-metric statistics of groups (by Summarize over
// the columns by) as a TextTable: a cell per metric, "median [low, high]".
func DetailTable(by []string, groups []GroupSummary) *TextTable {
	t := &TextTable{Title: "Per group: median [95% interval of the median]", Header: append(slices.Clone(by), "runs", "violating")}
	if len(groups) > 0 {
		for _, s := range groups[0].Metrics {
			t.Header = append(t.Header, s.Metric)
		}
	}
	for _, g := range groups {
		viol := "-"
		if g.ViolationsKnown > 0 {
			viol = fmt.Sprintf("%d/%d", g.ViolationRuns, g.ViolationsKnown)
		}
		row := append(slices.Clone(g.Key), strconv.Itoa(g.Runs), viol)
		for _, s := range g.Metrics {
			c := "-"
			if s.N > 0 {
				c = fmt.Sprintf("%s [%s, %s]", FormatValue(s.Median, s.Integer), FormatValue(s.CILow, s.Integer), FormatValue(s.CIHigh, s.Integer))
			}
			row = append(row, c)
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// WriteGroups writes group statistics as CSV (a row per group: the
// grouping columns, runs, violating runs, then per metric its median, the
// interval and p95) or JSON (the GroupSummary values).
func WriteGroups(w io.Writer, format string, by []string, groups []GroupSummary) error {
	if format == "json" {
		// JSON has no NaN: a metric without values (N == 0) says so by N.
		clean := slices.Clone(groups)
		for i := range clean {
			clean[i].Metrics = slices.Clone(clean[i].Metrics)
			for j := range clean[i].Metrics {
				m := &clean[i].Metrics[j]
				for _, v := range []*float64{&m.Median, &m.P95, &m.CILow, &m.CIHigh, &m.CICoverage} {
					if math.IsNaN(*v) {
						*v = 0
					}
				}
			}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(clean)
	}
	cw := csv.NewWriter(w)
	header := append(slices.Clone(by), "runs", "violating_runs")
	if len(groups) > 0 {
		for _, s := range groups[0].Metrics {
			header = append(header, s.Metric+"_median", s.Metric+"_ci_low", s.Metric+"_ci_high", s.Metric+"_p95")
		}
	}
	cw.Write(header)
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	for _, g := range groups {
		row := append(slices.Clone(g.Key), strconv.Itoa(g.Runs), strconv.Itoa(g.ViolationRuns))
		for _, s := range g.Metrics {
			row = append(row, f(s.Median), f(s.CILow), f(s.CIHigh), f(s.P95))
		}
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}
