package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/montanaflynn/stats"

	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/sched"
)

// Published is a ratio a patch thread published, and how close the
// calibrated model should come to it.
type Published struct {
	Benchmark  string  `json:"benchmark"`
	Comparison string  `json:"comparison"`
	Pct        float64 `json:"published_pct"`
	Target     float64 `json:"target_pp"` // |model − published| the calibration aims for, in percentage points
	Source     string  `json:"source"`
}

// CalibrationRow is a published figure next to the model's.
type CalibrationRow struct {
	Published
	Model float64 `json:"model_pct"`
	// Seeds is how many seeds the figure is a median over; SeedLow and
	// SeedHigh are the lowest and highest figure of a single seed (a change
	// between policies compares runs of the same seed). A deterministic
	// single-CPU figure has one seed and no spread.
	Seeds    int     `json:"seeds"`
	SeedLow  float64 `json:"seed_low_pct"`
	SeedHigh float64 `json:"seed_high_pct"`
}

// Diff is the model's figure minus the published one, in percentage points.
func (r CalibrationRow) Diff() float64 { return r.Model - r.Pct }

// Within reports whether the model meets the row's target.
func (r CalibrationRow) Within() bool { return math.Abs(r.Diff()) <= r.Target }

// The published figures (docs/kernel-model.md §4 and the threads they come from).
// Time changes are negative when faster; index changes positive when better.
var published = []Published{
	{"pageout-loop", "batched-vs-no-batch", -6.1, 2, "43b3dfdd0455: Snapdragon 888, 14.69 s -> 13.80 s"},
	{"pageout-loop", "dsb-share-of-ptep_clear_flush", 95, 2, "43b3dfdd0455: perf annotate, 95% of ptep_clear_flush in the final dsb()"},
	{"pageout-loop", "ptep_clear_flush-share", 5.36, 2, "43b3dfdd0455: perf, 5.36% of cycles in ptep_clear_flush"},
	{"pageout-loop-100cpu", "ptep_clear_flush-share", 16.99, 3, "43b3dfdd0455: Yicong Yang, Kunpeng 920, 16.99% in ptep_clear_flush"},
	{"swap-bench", "batched-vs-no-batch", -12.5, 2, "43b3dfdd0455: Yicong Yang, Kunpeng 920, `time ./swap_bench` 13.460 s -> 11.771 s"},
	{"unixbench-shell1", "flush-mm-vs-no-batch", -5.5, 5, "Xin Hao, Kunpeng 920, shell1 96 copies: 19048.5 -> 18003.2"},
	{"unixbench-shell1", "dsb-only-vs-no-batch", 35.2, 5, "Xin Hao, Kunpeng 920, shell1 96 copies: 19048.5 -> 25761.6"},
}

// Snapdragon888 is Barry Song's phone: 8 CPUs; the benchmark ran on a
// Cortex-A78 (taskset -c 4): L1 data TLB 32 entries fully associative,
// L2 TLB 1024 entries 4-way, a 64-entry walk cache.
func Snapdragon888() mmu.Config {
	c := mmu.DefaultConfig()
	c.CPUs = 8
	c.L1 = mmu.TLBGeometry{Entries: 32, Ways: 32}
	c.L2 = mmu.TLBGeometry{Entries: 1024, Ways: 4}
	c.WalkCache = mmu.TLBGeometry{Entries: 64, Ways: 4}
	c.KPTI = true
	return c
}

// Kunpeng920 is the server of Yicong Yang's and Xin Hao's runs: 96 CPUs
// (Xin Hao's "96 CPUs in system"; Yicong Yang's was "around 100 cores").
// Its TaiShan v110 cores' TLBs are not documented: the default
// (Neoverse N1) geometry stands in.
func Kunpeng920() mmu.Config {
	c := mmu.DefaultConfig()
	c.CPUs = 96
	c.KPTI = true
	return c
}

// Shell1MemMiB is the memory of the unixbench-shell1 runs: the published
// runs reclaimed (batching changed the score), so the model's copies run
// under steady reclaim — below the ~24 MiB the 94 copies need, above the
// ~20 MiB where they thrash (results/calibration.md shows the figures
// across that range).
const Shell1MemMiB = 22.0

// CalibrationQuantum is the clocked scheduler's quantum of the calibration
// runs: CPUs keep within 64 Ki cycles (26 µs at 2.5 GHz) of each other, so
// that what they do to each other happens at the times it would.
const CalibrationQuantum = 1 << 16

// CalibrateOptions control Calibrate.
type CalibrateOptions struct {
	Seeds    int // seeds of each multi-CPU point (0: 3)
	Jobs     int // runs at once (0: host cores)
	Progress func(int, int)
	Cost     *mmu.CostModel // nil: mmu.DefaultCost
	Out      io.Writer      // the runs' CSV rows (nil: discarded)
	// Shell1MemMiB is the memory of the unixbench-shell1 runs (0:
	// Shell1MemMiB, the constant).
	Shell1MemMiB float64
}

// CalibrationConfigs are the runs Calibrate makes, each seed a config.
func CalibrationConfigs(opt CalibrateOptions) []Config {
	seeds := opt.Seeds
	if seeds <= 0 {
		seeds = 5
	}
	mk := func(workload, pol string, m mmu.Config, seed uint64) Config {
		if opt.Cost != nil {
			m.Cost = *opt.Cost
		}
		return calibrationConfig(workload, pol, m, seed)
	}
	var out []Config
	for _, pol := range []string{"no-batch", "dsb-only"} {
		// One CPU works, the others idle: every seed gives the same run.
		out = append(out, mk("pageout-loop", pol, Snapdragon888(), 1))
		out = append(out, mk("pageout-loop", pol, Kunpeng920(), 1))
	}
	for _, pol := range []string{"no-batch", "flush-mm", "dsb-only"} {
		m := Kunpeng920()
		m.Frames = int(cmp.Or(opt.Shell1MemMiB, Shell1MemMiB) * (1 << 8))
		for s := 1; s <= seeds; s++ {
			out = append(out, mk("unixbench-shell1", pol, m, uint64(s)))
		}
	}
	return out
}

// calibrationConfig is one calibration run: workload under pol on machine
// m, clocked det scheduler with the calibration quantum.
func calibrationConfig(workload, pol string, m mmu.Config, seed uint64) Config {
	c := DefaultConfig()
	c.Workload, c.Policy, c.Nested = workload, pol, "fullmm"
	m.Sched = sched.Config{Mode: sched.Det, Seed: seed, Quantum: CalibrationQuantum}
	c.Machine = m
	return c
}

// Calibrate runs the published benchmarks on the model of the machines
// they were published for, under the policies they compared, and returns
// each published ratio next to the model's (medians across seeds).
func Calibrate(ctx context.Context, opt CalibrateOptions) ([]CalibrationRow, []*Result, error) {
	points := CalibrationConfigs(opt)
	out := opt.Out
	if out == nil {
		out = io.Discard
	}
	ps := ConfigList(points)
	results, _, err := RunSweep(ctx, ps, ps.All(), out, SweepOptions{Jobs: opt.Jobs, Progress: opt.Progress, Keep: true})
	if err != nil {
		return nil, results, err
	}
	for _, r := range results {
		if len(r.Errors) > 0 {
			return nil, results, fmt.Errorf("%s under %s on %d CPUs, seed %d: %s", r.Config.Workload, r.Config.Policy,
				r.Config.Machine.CPUs, r.Config.Machine.Sched.Seed, r.Errors[0])
		}
	}
	rows, err := CalibrationRows(results)
	if err == nil && len(rows) != len(published) {
		err = fmt.Errorf("calibration: %d of %d figures computed", len(rows), len(published))
	}
	return rows, results, err
}

// CalibrationRows computes the published figures the results have runs for
// (those of CalibrationConfigs), in the order of the published list.
func CalibrationRows(results []*Result) ([]CalibrationRow, error) {
	// bySeed is metric of each run of workload, policy on cpus CPUs, by seed.
	bySeed := func(workload, pol string, cpus int, metric string) (map[uint64]float64, error) {
		v := map[uint64]float64{}
		for _, r := range results {
			if r.Config.Workload == workload && r.Config.Policy == pol && r.Config.Machine.CPUs == cpus {
				x, ok := r.Metrics[metric]
				if !ok {
					return nil, fmt.Errorf("%s under %s: no %s", workload, pol, metric)
				}
				v[r.Config.Machine.Sched.Seed] = x
			}
		}
		if len(v) == 0 {
			return nil, fmt.Errorf("%s under %s on %d CPUs: %w", workload, pol, cpus, errNoRuns)
		}
		return v, nil
	}
	median := func(workload, pol string, cpus int, metric string) (figure, error) {
		v, err := bySeed(workload, pol, cpus, metric)
		if err != nil {
			return figure{}, err
		}
		return newFigure(v)
	}
	// change is the median's change from base to pol; its spread is of
	// the changes seed by seed.
	change := func(workload string, cpus int, metric, pol, base string) (figure, error) {
		a, err := bySeed(workload, pol, cpus, metric)
		if err != nil {
			return figure{}, err
		}
		b, err := bySeed(workload, base, cpus, metric)
		if err != nil {
			return figure{}, err
		}
		ma, err := newFigure(a)
		if err != nil {
			return figure{}, err
		}
		mb, err := newFigure(b)
		if err != nil {
			return figure{}, err
		}
		per := map[uint64]float64{}
		for seed, x := range a {
			if y, ok := b[seed]; ok {
				per[seed] = 100 * (x/y - 1)
			}
		}
		f, err := newFigure(per)
		if err != nil {
			return figure{}, err
		}
		f.median = 100 * (ma.median/mb.median - 1) // the change of the medians, as published figures compare
		return f, nil
	}
	sd, kp := Snapdragon888().CPUs, Kunpeng920().CPUs
	model := []func() (figure, error){
		func() (figure, error) { return change("pageout-loop", sd, "cycles_per_iter", "dsb-only", "no-batch") },
		func() (figure, error) { return median("pageout-loop", "no-batch", sd, "ptep_clear_flush_dsb_pct") },
		func() (figure, error) { return median("pageout-loop", "no-batch", sd, "ptep_clear_flush_pct") },
		func() (figure, error) { return median("pageout-loop", "no-batch", kp, "ptep_clear_flush_pct") },
		func() (figure, error) { return change("pageout-loop", kp, "cycles_per_iter", "dsb-only", "no-batch") },
		func() (figure, error) { return change("unixbench-shell1", kp, "index", "flush-mm", "no-batch") },
		func() (figure, error) { return change("unixbench-shell1", kp, "index", "dsb-only", "no-batch") },
	}
	var rows []CalibrationRow
	for i, p := range published {
		v, err := model[i]()
		if errors.Is(err, errNoRuns) {
			continue
		}
		if err != nil {
			return nil, err
		}
		rows = append(rows, CalibrationRow{Published: p, Model: v.median, Seeds: v.seeds, SeedLow: v.low, SeedHigh: v.high})
	}
	return rows, nil
}

// figure is a model figure: its median over the seeds and their range.
type figure struct {
	median, low, high float64
	seeds             int
}

// newFigure summarises the values of each seed.
func newFigure(v map[uint64]float64) (figure, error) {
	xs := make([]float64, 0, len(v))
	for _, x := range v {
		xs = append(xs, x)
	}
	if len(xs) == 0 {
		return figure{}, errNoRuns
	}
	med, err := stats.Median(xs)
	if err != nil {
		return figure{}, err
	}
	lo, _ := stats.Min(xs)
	hi, _ := stats.Max(xs)
	return figure{median: med, low: lo, high: hi, seeds: len(xs)}, nil
}

// errNoRuns: a figure whose runs are not among the results.
var errNoRuns = errors.New("no runs")
