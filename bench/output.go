package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/mmubench/mmubench/mm"
)

// CSVHeader is the header row of a results CSV. The first columns are
// fixed (scripts rely on them); more may follow.
var CSVHeader = []string{
	"workload", "policy", "nested", "cpus", "sched", "seed",
	"accesses", "l1_hits", "l1_misses", "l2_hits", "l2_misses", "walks", "miss_rate",
	"tlbi", "dsb", "flush_mm", "range_flushes", "faults",
	"violations", "protection_violations", "lost_writes", "use_after_free",
	"emu_cycles", "wall_ns",
	// Beyond the fixed columns: what reproduces and explains the row.
	"rounds", "l1_entries", "l1_ways", "l2_entries", "l2_ways", "walk_cache", "replacement",
	"dsb_wait_cycles", "entries_removed", "batched_pending", "nested_flushes", "det_steps",
	"first_violation", "errors", "version",
	// Workload figures, empty where a workload does not report them.
	"cycles_per_iter", "hot_miss_rate",
	// The workload's parameters.
	"pages", "accesses_per_thread", "threads", "write_pct",
	// Figures of the calibrated benchmarks, and the kernel events behind them.
	"ptep_clear_flush_pct", "ptep_clear_flush_dsb_pct", "loops_per_minute", "index", "accesses_per_sec",
	"unmapped_ptes", "forks", "file_reads", "written_back", "quantum",
	// Ryan Roberts' side effect: walks that refilled what a
	// flush_tlb_batched_pending flush removed, their cycles, and their share
	// of the victim threads' cycles (of all CPUs' where the workload names no
	// victims).
	"flush_refills", "flush_lost_cycles", "flush_overhead_pct",
	// More workload parameters.
	"victim", "gap", "compute",
	// The TLB-state invariant at syscall return (mm/invariant.go), and
	// which racer of a race workload went first.
	"stale_tlb", "order",
	// The form of the kernel code a catalogue race ran (before or after
	// its fix).
	"variant",
	// The machine flavour (mmu.Arch), empty for arm64.
	"arch",
}

// TextColumns are the CSV columns that hold names, not numbers.
var TextColumns = map[string]bool{
	"workload": true, "policy": true, "nested": true, "sched": true, "walk_cache": true, "replacement": true,
	"first_violation": true, "errors": true, "version": true, "victim": true, "order": true, "variant": true, "arch": true, "config": true,
}

// hasArch reports whether some run of t was not on arm64 (the arch
// column, empty for arm64, names another flavour): the summaries then
// keep the flavours apart.
func hasArch(t *Table) bool {
	c := t.Column("arch")
	if c < 0 {
		return false
	}
	for _, r := range t.Rows {
		if r[c] != "" {
			return true
		}
	}
	return false
}

// lateMetricColumns are the workload figures after the parameters.
var lateMetricColumns = []string{"ptep_clear_flush_pct", "ptep_clear_flush_dsb_pct", "loops_per_minute", "index", "accesses_per_sec"}

// metricColumns are the workload figures with a CSV column, in order.
var metricColumns = []string{"cycles_per_iter", "hot_miss_rate"}

// CSVRow renders r in CSVHeader's order.
func (r *Result) CSVRow() []string {
	c := r.Config.Machine
	t := &r.Total
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	first := ""
	if r.First != nil {
		first = r.First.String()
	}
	errs := ""
	for i, e := range r.Errors {
		if i > 0 {
			errs += "; "
		}
		errs += e
	}
	row := []string{
		r.Config.Workload, r.Config.Policy, r.Config.Nested, strconv.Itoa(c.CPUs), c.Sched.Mode.String(), u(c.Sched.Seed),
		u(t.Accesses), u(t.L1Hits), u(t.L1Misses), u(t.L2Hits), u(t.L2Misses), u(t.Walks),
		strconv.FormatFloat(r.MissRate(), 'f', 6, 64),
		u(t.TLBIs()), u(t.DSBs), u(r.Kernel["flush_mm"]), u(r.Kernel["range_flushes"]), u(t.FaultCount()),
		u(r.ViolationCount()), u(r.Violations[mm.ProtectionViolation]), u(r.Violations[mm.LostWrite]), u(r.Violations[mm.UseAfterFree]),
		u(t.Cycles), strconv.FormatInt(r.WallNs, 10),
		strconv.Itoa(r.Rounds), strconv.Itoa(c.L1.Entries), strconv.Itoa(c.L1.Ways), strconv.Itoa(c.L2.Entries), strconv.Itoa(c.L2.Ways),
		c.WalkCache.String(), c.Replacement.String(),
		u(t.DSBWaitCycles), u(t.EntriesRemoved), u(r.Kernel["batched_pending"]), u(r.Kernel["nested_flushes"]), u(r.Steps),
		first, errs, r.Version,
	}
	metrics := func(names []string) {
		for _, m := range names {
			if v, ok := r.Metrics[m]; ok {
				row = append(row, strconv.FormatFloat(v, 'f', 6, 64))
			} else {
				row = append(row, "")
			}
		}
	}
	metrics(metricColumns)
	p := r.Params
	row = append(row, strconv.Itoa(p.Pages), strconv.FormatInt(p.Accesses, 10), strconv.Itoa(p.Threads), strconv.Itoa(p.WritePct))
	metrics(lateMetricColumns)
	row = append(row, u(r.Kernel["unmapped_ptes"]), u(r.Kernel["forks"]), u(r.Kernel["file_reads"]), u(r.Kernel["written_back"]),
		u(c.Sched.Quantum))
	row = append(row, u(t.FlushRefills), u(t.FlushLostCycles), strconv.FormatFloat(r.FlushOverheadPct(), 'f', 6, 64))
	return append(row, p.Victim, strconv.FormatInt(p.Gap, 10), strconv.FormatInt(p.Compute, 10),
		u(r.Violations[mm.StaleTLB]), p.Order, p.Variant, string(c.Arch))
}

// Writer writes results in one of the formats, row by row.
type Writer interface {
	Write(r *Result) error
	Close() error
}

// NewWriter returns a writer of format "csv", "json" (one object per line)
// or "table" (rendered at Close).
func NewWriter(w io.Writer, format string) (Writer, error) {
	switch format {
	case "csv":
		cw := csv.NewWriter(w)
		if err := cw.Write(CSVHeader); err != nil {
			return nil, err
		}
		return &csvWriter{cw}, nil
	case "json":
		return &jsonWriter{json.NewEncoder(w)}, nil
	case "table":
		return &tableWriter{w: w}, nil
	}
	return nil, fmt.Errorf("unknown format %q (valid: table, csv, json)", format)
}

type csvWriter struct{ w *csv.Writer }

func (c *csvWriter) Write(r *Result) error {
	if err := c.w.Write(r.CSVRow()); err != nil {
		return err
	}
	c.w.Flush()
	return c.w.Error()
}

func (c *csvWriter) Close() error { c.w.Flush(); return c.w.Error() }

type jsonWriter struct{ e *json.Encoder }

func (j *jsonWriter) Write(r *Result) error { return j.e.Encode(r) }
func (j *jsonWriter) Close() error          { return nil }

type tableWriter struct {
	w       io.Writer
	command string
	results []*Result
}

// SetCommand names the command line a table writer's output says produced
// it (a no-op for the other formats).
func SetCommand(w Writer, command string) {
	if t, ok := w.(*tableWriter); ok {
		t.command = command
	}
}

func (t *tableWriter) Write(r *Result) error {
	t.results = append(t.results, r)
	return nil
}

// runFigures are the figures a run's table shows, in order, when they have
// values (and, for several runs, differ between them).
var runFigures = []struct{ col, label string }{
	{"violations", "violations"}, {"stale_tlb", "stale TLB"}, {"protection_violations", "protection"},
	{"lost_writes", "lost writes"}, {"use_after_free", "use after free"},
	{"accesses", "accesses"}, {"miss_rate", "miss rate"}, {"tlbi", "TLBIs"}, {"dsb", "DSBs"},
	{"flush_mm", "flush_tlb_mm"}, {"batched_pending", "pending found"}, {"faults", "faults"},
	{"emu_cycles", "cycles"}, {"cycles_per_iter", "cycles/iter"}, {"flush_refills", "flush refills"},
	{"flush_overhead_pct", "flush overhead %"}, {"hot_miss_rate", "hot miss rate"}, {"index", "index"},
	{"loops_per_minute", "loops/min"}, {"accesses_per_sec", "accesses/s"}, {"ptep_clear_flush_pct", "ptep_clear_flush %"},
}

// Close prints one run as a short block (its configuration, then its
// violations with the first named, then the figures that have values) and
// several as a narrow table of the figures that differ between them; each
// after the line that says what produced it, all within 80 columns.
func (t *tableWriter) Close() error {
	if len(t.results) == 0 {
		return nil
	}
	rows := make([]map[string]string, len(t.results))
	for i, r := range t.results {
		rows[i] = map[string]string{}
		for j, v := range r.CSVRow() {
			rows[i][CSVHeader[j]] = v
		}
	}
	first, last := rows[0]["seed"], rows[len(rows)-1]["seed"]
	seeds := "seed " + first
	if len(rows) > 1 {
		seeds = "seeds " + first + "-" + last
	}
	prov := fmt.Sprintf("mmubench %s; %s", t.results[0].Version, seeds)
	if t.command != "" {
		prov += "; " + t.command
	}
	var b strings.Builder
	for _, l := range wrap(prov, 80) {
		b.WriteString(l + "\n")
	}
	r0 := rows[0]
	ident := fmt.Sprintf("%s  policy=%s nested=%s  cpus=%s %s", r0["workload"], r0["policy"], r0["nested"], r0["cpus"], r0["sched"])
	if o := r0["order"]; o != "" && len(rows) == 1 {
		ident += " order=" + o
	}
	if v := t.results[0].Params.Variant; v != "" {
		ident += " variant=" + v
	}
	if a := t.results[0].Config.Machine.Arch; a != "" {
		ident += " arch=" + string(a)
	}
	if len(rows) == 1 {
		ident += " seed=" + first
	}
	for _, l := range wrap(ident, 80) {
		b.WriteString(l + "\n")
	}
	if len(rows) == 1 {
		t.block(&b, t.results[0], r0)
	} else if err := t.table(&b, rows); err != nil {
		return err
	}
	_, err := io.WriteString(t.w, b.String())
	return err
}

func has(v string) bool { return v != "" && v != "0" && v != "0.000000" }

// block writes one run's figures, a few to a line.
func (t *tableWriter) block(b *strings.Builder, r *Result, row map[string]string) {
	if r.First != nil {
		for _, l := range wrap("first: "+r.First.String(), 80) {
			b.WriteString(l + "\n")
		}
	}
	for _, e := range r.Errors {
		for _, l := range wrap("error: "+e, 80) {
			b.WriteString(l + "\n")
		}
	}
	line := ""
	for _, f := range runFigures {
		v := row[f.col]
		if !has(v) && f.col != "violations" {
			continue
		}
		item := f.label + " " + cell(v)
		if line != "" && len(line)+3+len(item) > 80 {
			b.WriteString(line + "\n")
			line = ""
		}
		if line != "" {
			line += " | "
		}
		line += item
	}
	if line != "" {
		b.WriteString(line + "\n")
	}
}

// trimFloat shortens a CSV float to 4 significant digits.
func trimFloat(v string) string {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return v
	}
	return FormatValue(f, false)
}

// table writes several runs: the seed, and the figures that differ
// between them, as many as fit in 80 columns.
func (t *tableWriter) table(b *strings.Builder, rows []map[string]string) error {
	header := []string{"seed"}
	cols := []string{"seed"}
	for _, k := range []string{"order", "workload", "policy", "nested", "cpus"} {
		if differs(rows, k) {
			header, cols = append(header, k), append(cols, k)
		}
	}
	width := func(col, label string) int {
		n := len(label)
		for _, r := range rows {
			n = max(n, len(cell(r[col])))
		}
		return n + 3
	}
	used := 1
	for _, c := range cols {
		used += width(c, c)
	}
	for _, f := range runFigures {
		if !differs(rows, f.col) && f.col != "violations" {
			continue
		}
		if w := width(f.col, f.label); used+w <= 80 {
			header, cols = append(header, f.label), append(cols, f.col)
			used += w
		}
	}
	out := make([][]string, len(rows))
	for i, r := range rows {
		for _, c := range cols {
			out[i] = append(out[i], cell(r[c]))
		}
	}
	tt := &TextTable{Header: header, Rows: out}
	for _, r := range t.results {
		if r.First != nil {
			tt.Notes = append(tt.Notes, fmt.Sprintf("first violation (seed %d): %v", r.Config.Machine.Sched.Seed, r.First))
			break
		}
	}
	var buf strings.Builder
	if err := tt.renderText(&buf); err != nil {
		return err
	}
	b.WriteString(strings.TrimPrefix(buf.String(), "\n\n"))
	return nil
}

func cell(v string) string {
	if strings.Contains(v, ".") {
		return trimFloat(v)
	}
	return v
}

func differs(rows []map[string]string, col string) bool {
	for _, r := range rows[1:] {
		if r[col] != rows[0][col] {
			return true
		}
	}
	return false
}
