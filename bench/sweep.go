package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	gsync "gvisor.dev/gvisor/pkg/sync"

	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/sched"
	"github.com/mmubench/mmubench/workloads"
)

// Sweep is a set of runs: groups of axes, each the cartesian product of its
// workloads × policies × nested × CPU counts × geometries, every point run
// for Seeds seeds from FirstSeed. Empty axes take the defaults of `run`.
type Sweep struct {
	Sched     string  `json:"sched"`             // det (default) or parallel
	Quantum   uint64  `json:"quantum,omitempty"` // det mode: keep emulated time with this quantum (sched.Config.Quantum); 0 = PCT
	Seeds     int     `json:"seeds"`             // seeds per point (default 1)
	FirstSeed uint64  `json:"first_seed"`        // default 1
	Groups    []Group `json:"groups"`
}

// Group is one cartesian product of axes.
type Group struct {
	Workloads  []string         `json:"workloads"`
	Policies   []string         `json:"policies,omitempty"`
	Nested     []string         `json:"nested,omitempty"`
	CPUs       []int            `json:"cpus,omitempty"`
	Geometries []Geometry       `json:"geometries,omitempty"`
	Rounds     int              `json:"rounds,omitempty"`
	MemMiB     int              `json:"mem_mib,omitempty"`
	Params     workloads.Params `json:"params,omitempty"`
	// Quantum and Seeds, if non-zero, override the sweep's for this group:
	// cost studies keep emulated time and need fewer seeds, race groups
	// use PCT and many.
	Quantum uint64 `json:"quantum,omitempty"`
	Seeds   int    `json:"seeds,omitempty"`
}

// Geometry is one TLB configuration of a sweep axis.
type Geometry struct {
	L1          string `json:"l1"`
	L2          string `json:"l2"`
	WalkCache   string `json:"walk_cache"`
	Replacement string `json:"replacement,omitempty"`
}

// LoadSweep reads a sweep file (JSON); unknown fields are errors.
func LoadSweep(r io.Reader) (*Sweep, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var s Sweep
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("sweep file: %w", err)
	}
	return &s, nil
}

// Points expands the sweep into validated run configurations, in order.
func (s *Sweep) Points() ([]Config, error) {
	mode := sched.Det
	if s.Sched != "" {
		m, err := sched.ParseMode(s.Sched)
		if err != nil {
			return nil, err
		}
		mode = m
	}
	if s.Seeds < 0 {
		return nil, fmt.Errorf("sweep: %d seeds", s.Seeds)
	}
	seeds := max(s.Seeds, 1)
	first := s.FirstSeed
	if first == 0 {
		first = 1
	}
	if len(s.Groups) == 0 {
		return nil, fmt.Errorf("sweep: no groups")
	}
	var out []Config
	for gi, g := range s.Groups {
		base := DefaultConfig()
		orDefault := func(v []string, d string) []string {
			if len(v) == 0 {
				return []string{d}
			}
			return v
		}
		cpus := g.CPUs
		if len(cpus) == 0 {
			cpus = []int{base.Machine.CPUs}
		}
		geoms := g.Geometries
		if len(geoms) == 0 {
			geoms = []Geometry{{}}
		}
		if len(g.Workloads) == 0 {
			return nil, fmt.Errorf("sweep group %d: no workloads", gi+1)
		}
		for _, w := range g.Workloads {
			for _, p := range orDefault(g.Policies, base.Policy) {
				for _, n := range orDefault(g.Nested, base.Nested) {
					for _, c := range cpus {
						for _, geo := range geoms {
							cfg := base
							cfg.Workload, cfg.Policy, cfg.Nested = w, p, n
							cfg.Rounds, cfg.Params = g.Rounds, g.Params
							cfg.Machine.CPUs = c
							cfg.Machine.Sched.Mode = mode
							cfg.Machine.Sched.Quantum = cmp.Or(g.Quantum, s.Quantum)
							if g.MemMiB != 0 {
								cfg.Machine.Frames = g.MemMiB << 8
							}
							if err := geo.apply(&cfg.Machine); err != nil {
								return nil, fmt.Errorf("sweep group %d: %w", gi+1, err)
							}
							if _, err := cfg.Validate(); err != nil {
								return nil, fmt.Errorf("sweep group %d: %w", gi+1, err)
							}
							for k := 0; k < cmp.Or(g.Seeds, seeds); k++ {
								cfg.Machine.Sched.Seed = first + uint64(k)
								out = append(out, cfg)
							}
						}
					}
				}
			}
		}
	}
	return out, nil
}

func (g Geometry) apply(m *mmu.Config) error {
	var err error
	if g.L1 != "" {
		if m.L1, err = ParseGeometry(g.L1, false); err != nil {
			return err
		}
	}
	if g.L2 != "" {
		if m.L2, err = ParseGeometry(g.L2, true); err != nil {
			return err
		}
	}
	if g.WalkCache != "" {
		if m.WalkCache, err = ParseGeometry(g.WalkCache, true); err != nil {
			return err
		}
	}
	if g.Replacement != "" {
		if m.Replacement, err = mmu.ParseReplacement(g.Replacement); err != nil {
			return err
		}
	}
	return nil
}

// Key identifies a point of a sweep: its configuration as compact JSON,
// which is also the CSV's last column (what reproduces the row).
func (c *Config) Key() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// SweepOptions control RunSweep.
type SweepOptions struct {
	Jobs int // points run at once (0: host cores)
	// Reproducible writes wall_ns as 0 and the version without the VCS
	// revision, so a det-mode report regenerates bit for bit.
	Reproducible bool
	// Progress is called after each point with how many are done.
	Progress func(done, total int)
}

// RunSweep runs points not yet in done (keys of finished points), appending
// each result row to out as it finishes, whole. On ctx's cancellation it
// stops starting points, lets the running ones finish and returns
// ctx.Err(); the rows written stay.
func RunSweep(ctx context.Context, points []Config, done map[string]bool, out io.Writer, opt SweepOptions) ([]*Result, error) {
	jobs := opt.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	var todo []Config
	for _, p := range points {
		if !done[p.Key()] {
			todo = append(todo, p)
		}
	}
	var (
		mu       gsync.Mutex
		results  []*Result
		firstErr error
		finished = len(points) - len(todo)
	)
	work := make(chan Config)
	var wg gsync.WaitGroup
	for i := 0; i < jobs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for cfg := range work {
				r, err := Run(cfg)
				mu.Lock()
				if err == nil {
					if opt.Reproducible {
						r.WallNs, r.Version = 0, BaseVersion
					}
					err = writeRow(out, r)
					results = append(results, r)
				}
				if err != nil && firstErr == nil {
					firstErr = err
				}
				finished++
				if opt.Progress != nil {
					opt.Progress(finished, len(points))
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, p := range todo {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed {
			break
		}
		select {
		case work <- p:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return results, firstErr
	}
	return results, ctx.Err()
}

// writeRow writes one CSV row (with the config key) in a single Write, so
// a kill can tear at most the last line, which ReadDone drops.
func writeRow(w io.Writer, r *Result) error {
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	row := append(r.CSVRow(), r.Config.Key())
	if err := cw.Write(row); err != nil {
		return err
	}
	cw.Flush()
	_, err := w.Write(buf.Bytes())
	return err
}

// SweepHeader is the header of a sweep's CSV: CSVHeader and the config key.
func SweepHeader() []string { return append(append([]string(nil), CSVHeader...), "config") }

// ReadDone reads a sweep CSV (possibly cut short by an interruption) and
// returns the keys of its complete rows and the byte length of its
// complete part: a torn last line is not counted.
func ReadDone(data []byte) (map[string]bool, int, error) {
	done := map[string]bool{}
	end := bytes.LastIndexByte(data, '\n') + 1 // drop a torn last line
	r := csv.NewReader(bytes.NewReader(data[:end]))
	header, err := r.Read()
	if err == io.EOF {
		return done, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading sweep CSV header: %w", err)
	}
	if len(header) != len(SweepHeader()) || header[len(header)-1] != "config" {
		return nil, 0, fmt.Errorf("not a sweep CSV of this version (header has %d columns, want %d ending in config)", len(header), len(SweepHeader()))
	}
	for {
		row, err := r.Read()
		if err == io.EOF {
			return done, end, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, 0, fmt.Errorf("sweep CSV line %d: %v", pe.Line, pe.Err)
			}
			return nil, 0, err
		}
		done[row[len(row)-1]] = true
	}
}

// AtomicWrite writes path whole or not at all: to a temporary file in the
// same directory, then a rename.
func AtomicWrite(path string, write func(w io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".mmubench-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := write(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil { // CreateTemp makes it 0600
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// FinishSweep writes the completed sweep journal partial to path, whole,
// with its rows in the order of points (the journal has them in the order
// they finished, which depends on the jobs), and removes the journal.
func FinishSweep(partial, path string, points []Config) error {
	data, err := os.ReadFile(partial)
	if err != nil {
		return err
	}
	r := csv.NewReader(bytes.NewReader(data))
	rows, err := r.ReadAll()
	if err != nil {
		return fmt.Errorf("%s: %w", partial, err)
	}
	if len(rows) == 0 {
		return fmt.Errorf("%s: empty", partial)
	}
	order := make(map[string]int, len(points))
	for i, p := range points {
		order[p.Key()] = i
	}
	body := rows[1:]
	slices.SortStableFunc(body, func(a, b []string) int {
		return cmp.Compare(order[a[len(a)-1]], order[b[len(b)-1]])
	})
	if err := AtomicWrite(path, func(w io.Writer) error {
		cw := csv.NewWriter(w)
		if err := cw.WriteAll(rows); err != nil {
			return err
		}
		return cw.Error()
	}); err != nil {
		return err
	}
	return os.Remove(partial)
}
