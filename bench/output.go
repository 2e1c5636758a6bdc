package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/olekukonko/tablewriter"

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
}

// TextColumns are the CSV columns that hold names, not numbers.
var TextColumns = map[string]bool{
	"workload": true, "policy": true, "nested": true, "sched": true, "walk_cache": true, "replacement": true,
	"first_violation": true, "errors": true, "version": true, "victim": true, "order": true, "config": true,
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
		u(r.Violations[mm.StaleTLB]), p.Order)
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
	w    io.Writer
	rows [][]string
}

// tableColumns are the CSV columns a terminal table shows.
var tableColumns = []string{"workload", "policy", "nested", "cpus", "sched", "seed", "accesses", "miss_rate",
	"tlbi", "dsb", "flush_mm", "violations", "protection_violations", "lost_writes", "use_after_free", "stale_tlb", "emu_cycles"}

func (t *tableWriter) Write(r *Result) error {
	row := r.CSVRow()
	var out []string
	for _, col := range tableColumns {
		for i, h := range CSVHeader {
			if h == col {
				out = append(out, row[i])
			}
		}
	}
	t.rows = append(t.rows, out)
	return nil
}

func (t *tableWriter) Close() error {
	tw := tablewriter.NewWriter(t.w)
	tw.Header(tableColumns)
	if err := tw.Bulk(t.rows); err != nil {
		return err
	}
	if err := tw.Render(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(t.w)
	return err
}
