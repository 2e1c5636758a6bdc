package bench

import (
	"context"
	"io"
	"math"
	"strings"
	"testing"
)

// runCalibration runs the calibration configurations of one workload.
func runCalibration(t *testing.T, workload string, seeds int) []*Result {
	t.Helper()
	var points []Config
	for _, c := range CalibrationConfigs(CalibrateOptions{Seeds: seeds}) {
		if c.Workload == workload {
			points = append(points, c)
		}
	}
	ps := ConfigList(points)
	results, _, err := RunSweep(context.Background(), ps, ps.All(), io.Discard, SweepOptions{Keep: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if len(r.Errors) > 0 {
			t.Fatalf("%s under %s: %v", r.Config.Workload, r.Config.Policy, r.Errors)
		}
	}
	return results
}

// Barry Song's and Yicong Yang's figures: the pageout loop on both
// machines comes within each figure's target with the default cost table.
func TestCalibrationPageout(t *testing.T) {
	rows, err := CalibrationRows(runCalibration(t, "pageout-loop", 1))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 5 {
		t.Fatalf("%d pageout figures, want 5", len(rows))
	}
	for _, r := range rows {
		t.Logf("%s %s: published %.2f, model %.2f", r.Benchmark, r.Comparison, r.Pct, r.Model)
		if !r.Within() {
			t.Errorf("%s %s: model %.2f, published %.2f: off by %.2f pp (target %g)", r.Benchmark, r.Comparison, r.Model, r.Pct, r.Diff(), r.Target)
		}
	}
}

// The shell benchmark's one fitted constant, the computation per access
// (workloads/shell1.go), makes a single copy on the Kunpeng model run at
// Xin Hao's single-copy speed: 5 481 loops per minute.
func TestShell1SingleCopy(t *testing.T) {
	if testing.Short() {
		t.Skip("96 emulated CPUs")
	}
	m := Kunpeng920()
	m.Frames = 64 << 8 // 64 MiB: no reclaim
	c := calibrationConfig("unixbench-shell1", "no-batch", m, 1)
	c.Params.Threads = 1
	r, err := Run(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("one copy: %.1f loops per minute", r.Metrics["loops_per_minute"])
	const published = 5481
	if lpm := r.Metrics["loops_per_minute"]; math.Abs(lpm-published) > published/100 {
		t.Errorf("one copy runs %.0f loops per minute, published %d: refit the shell's computation per access", lpm, published)
	}
}

// Xin Hao's unixbench figures (one seed: the full calibration uses more).
// The model reproduces that the bare DSB gains a lot over no batching
// (more than published); it does not reproduce flush_tlb_mm's loss
// (results/calibration.md says why), but flush_tlb_mm's cost against the
// bare DSB must stay visible.
func TestCalibrationShell1(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("96 emulated CPUs for half a minute")
	}
	rows, err := CalibrationRows(runCalibration(t, "unixbench-shell1", 1))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, r := range rows {
		t.Logf("%s %s: published %.2f, model %.2f", r.Benchmark, r.Comparison, r.Pct, r.Model)
		got[strings.TrimSuffix(r.Comparison, "-vs-no-batch")] = r.Model
	}
	// The five-seed median is +61%, seed 1 +90%; the seeds spread from +55
	// to +90 (no-batch's reclaim is the noisy part).
	if d := got["dsb-only"]; d < 35 || d > 120 {
		t.Errorf("batching with a bare DSB gains %.1f%% over no batching, published +35.2%%", d)
	}
	if got["flush-mm"] >= got["dsb-only"] {
		t.Errorf("flush_tlb_mm in flush_tlb_batched_pending costs nothing against a bare DSB: %.1f%% vs %.1f%%", got["flush-mm"], got["dsb-only"])
	}
}

// A figure over several seeds is the change of the medians, and its spread
// is of the changes seed by seed, each comparing runs of the same seed.
func TestCalibrationRowsSpread(t *testing.T) {
	index := map[string][]float64{ // by seed 1, 2, 3
		"no-batch": {100, 80, 50},
		"flush-mm": {110, 120, 90},
		"dsb-only": {150, 100, 60},
	}
	var results []*Result
	for pol, v := range index {
		for i, x := range v {
			c := calibrationConfig("unixbench-shell1", pol, Kunpeng920(), uint64(i+1))
			results = append(results, &Result{Config: c, Metrics: map[string]float64{"index": x}})
		}
	}
	rows, err := CalibrationRows(results)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][3]float64{ // median change, lowest, highest seed
		"flush-mm-vs-no-batch": {100 * (110.0/80 - 1), 10, 80},
		"dsb-only-vs-no-batch": {100 * (100.0/80 - 1), 20, 50},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d (the pageout rows have no runs here)", len(rows), len(want))
	}
	for _, r := range rows {
		w := want[r.Comparison]
		got := [3]float64{r.Model, r.SeedLow, r.SeedHigh}
		for i := range got {
			if math.Abs(got[i]-w[i]) > 1e-9 {
				t.Errorf("%s: model, lowest, highest %v, want %v", r.Comparison, got, w)
				break
			}
		}
		if r.Seeds != 3 {
			t.Errorf("%s: %d seeds, want 3", r.Comparison, r.Seeds)
		}
	}
}
