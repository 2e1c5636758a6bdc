package reclaim_test

import (
	"testing"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/policy"
	"github.com/mmubench/mmubench/reclaim"
	"github.com/mmubench/mmubench/sched"
)

// A reclaiming task asked to migrate moves at the preemption point after
// try_to_unmap: it ends the batch and pages the folio out on the other
// CPU, and the data comes back from swap there. Not asked, it stays.
func TestShrinkMigrates(t *testing.T) {
	for _, tc := range []struct {
		name    string
		migrate bool
	}{{"asked", true}, {"not asked", false}} {
		for _, mode := range []sched.Mode{sched.Det, sched.Parallel} {
			t.Run(tc.name+"/"+mode.String(), func(t *testing.T) {
				cfg := mmu.DefaultConfig()
				cfg.CPUs, cfg.Frames = 2, 128
				cfg.Sched = sched.Config{Mode: mode, Seed: 3}
				m, err := mmu.NewMachine(cfg)
				if err != nil {
					t.Fatal(err)
				}
				k, err := mm.New(m, mm.Config{Batch: policy.FlushMM{}, Nested: policy.NestedFullMM{}})
				if err != nil {
					t.Fatal(err)
				}
				r := reclaim.New(k, reclaim.Config{})
				space, _ := k.NewMM()
				wantCPU := 0
				if tc.migrate {
					wantCPU = 1
				}
				task := k.NewMovableTask(m.CPU(0), space, "reclaimer", func(tk *mm.Task) error {
					va, err := tk.Mmap(4096, mm.ProtRead|mm.ProtWrite, false)
					if err != nil {
						return err
					}
					if err := tk.Store(va, 42); err != nil {
						return err
					}
					pte, _ := space.Tables().Lookup(va)
					if !k.FolioGet(pte.PFN()) {
						t.Error("no folio to reclaim")
						return nil
					}
					if tc.migrate {
						if err := tk.MigrateAtPreemption(m.CPU(1)); err != nil {
							return err
						}
					}
					r.ReclaimPages(tk, []uint64{pte.PFN()})
					if tk.CPU().ID() != wantCPU {
						t.Errorf("reclaim ended on cpu%d, want cpu%d", tk.CPU().ID(), wantCPU)
					}
					if pte, _ := space.Tables().Lookup(va); pte.Valid() {
						t.Errorf("the page is still mapped")
					}
					if v, err := tk.Load(va); err != nil || v != 42 {
						t.Errorf("after swap-in: %d, %v", v, err)
					}
					return nil
				})
				err = m.Run(func(c *mmu.CPU) {
					for {
						done, err := task.Host(c)
						if err != nil {
							t.Error(err)
						}
						if done {
							return
						}
					}
				})
				if err != nil {
					t.Fatal(err)
				}
				if n := k.Stats.Migrations.Load(); n != uint64(wantCPU) {
					t.Errorf("%d migrations, want %d", n, wantCPU)
				}
			})
		}
	}
}
