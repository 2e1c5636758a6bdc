package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"

	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/sched"
	"github.com/mmubench/mmubench/workloads"
)

// Sweep is a set of runs: groups of axes, each the cartesian product of its
// workloads × policies × nested × CPU counts × geometries, every point run
// for Seeds seeds from FirstSeed. Empty axes take the defaults of `run`.
type Sweep struct {
	Sched     string  `json:"sched"`                // det (default) or parallel
	Quantum   uint64  `json:"quantum,omitempty"`    // det mode: keep emulated time with this quantum (sched.Config.Quantum); 0 = PCT
	Seeds     int     `json:"seeds"`                // seeds per point (default 1)
	FirstSeed *uint64 `json:"first_seed,omitempty"` // default 1
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
	// Arch is the machine flavour of the group's runs (mmu.Arch: arm64,
	// the default, x86-invlpgb, x86-ipi), with its cost table.
	Arch string `json:"arch,omitempty"`
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
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("sweep file: something follows the sweep's JSON object")
	}
	return &s, nil
}

// Points expands the sweep into its validated points, in order: each
// group's cartesian product, each configuration for the group's (or the
// sweep's) seeds.
func (s *Sweep) Points() (*PointSet, error) {
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
	first := uint64(1)
	if s.FirstSeed != nil {
		first = *s.FirstSeed
	}
	if len(s.Groups) == 0 {
		return nil, fmt.Errorf("sweep: no groups")
	}
	ps := &PointSet{}
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
		if g.Seeds < 0 {
			return nil, fmt.Errorf("sweep group %d: %d seeds", gi+1, g.Seeds)
		}
		arch, err := mmu.ParseArch(g.Arch)
		if err != nil {
			return nil, fmt.Errorf("sweep group %d: %w", gi+1, err)
		}
		base.Machine.SetArch(arch)
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
								if g.MemMiB < 1 || g.MemMiB > mmu.MaxFrames>>8 {
									return nil, fmt.Errorf("sweep group %d: mem_mib %d (must be 1..%d)", gi+1, g.MemMiB, mmu.MaxFrames>>8)
								}
								cfg.Machine.Frames = g.MemMiB << 8
							}
							if err := geo.apply(&cfg.Machine); err != nil {
								return nil, fmt.Errorf("sweep group %d: %w", gi+1, err)
							}
							cfg.Machine.Sched.Seed = first
							if _, err := cfg.Validate(); err != nil {
								return nil, fmt.Errorf("sweep group %d: %w", gi+1, err)
							}
							if err := ps.add(cfg, first, cmp.Or(g.Seeds, seeds)); err != nil {
								return nil, fmt.Errorf("sweep group %d: %w", gi+1, err)
							}
						}
					}
				}
			}
		}
	}
	return ps, nil
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
