package mm_test

import (
	"sync/atomic"
	"testing"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
)

// A task migrates from CPU1 to CPU2: it runs on CPU2 after, in its mm,
// with a context switch charged on each CPU; the switch-out on CPU1
// executes __switch_to's DSB, which completes the TLBI CPU1 issued before
// it left — so CPU0's cached entry is gone. Reverted, the TLBI is still in
// flight after the migration, and CPU2's own DSB does not complete it.
func TestMigrate(t *testing.T) {
	for _, tc := range []struct {
		name     string
		revert   bool
		kernel   bool // a kernel thread (no mm) rather than a user thread
		wantDSBs uint64
	}{
		{"fixed/user", false, false, 1},
		{"fixed/kernel", false, true, 1},
		{"unfixed/user", true, false, 0},
		{"unfixed/kernel", true, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			held := 0 // unfixed: seeds where cpu0 still held the entry after the migration
			for seed := uint64(1); seed <= 10; seed++ {
				g := newRigWith(t, 3, "flush-mm", "fullmm", seed, func(c *mmu.Config) {
					// Each invalidation is applied when its target first sees it
					// or held until its issuer waits for it in a DSB.
					c.DetDelivery = mmu.DeliverHold
				})
				if tc.revert {
					g.k.Revert(mm.FixSwitchToDSB)
				}
				space, err := g.k.NewMM()
				must(t, err)
				writer := g.k.NewTask(g.m.CPU(0), space, "writer")
				var va uint64
				var filled, checked atomic.Bool
				cached := func() bool { // does CPU0 still hold va? (det: the caller holds the turn)
					n := 0
					g.m.CPU(0).CachedLeaves(space.ASID(), va, va+page, func(mmu.CachedLeaf) { n++ })
					return n > 0
				}
				var taskMM *mm.MM
				if !tc.kernel {
					taskMM = space
				}
				src, dst := g.m.CPU(1), g.m.CPU(2)
				mover := g.k.NewMovableTask(src, taskMM, "mover", func(tk *mm.Task) error {
					tk.Thread().Block("the writer's entry", filled.Load)
					before, dstBefore := *src.Counters(), *dst.Counters()
					tk.FlushTLBPageNosync(space, va)
					if err := tk.Migrate(dst); err != nil {
						return err
					}
					if tk.CPU() != dst || tk.Thread() != dst.Thread() {
						t.Errorf("after the migration the task runs on cpu%d", tk.CPU().ID())
					}
					if !tc.kernel && dst.ASID() != space.ASID() {
						t.Errorf("cpu2 runs ASID %d, want the task's %d", dst.ASID(), space.ASID())
					}
					after := src.Counters()
					cost := g.m.Config().Cost.ContextSwitch
					if d := after.DSBs - before.DSBs; d != tc.wantDSBs {
						t.Errorf("switch-out DSBs on cpu1: %d, want %d", d, tc.wantDSBs)
					}
					if after.Cycles-before.Cycles < cost || dst.Counters().Cycles-dstBefore.Cycles < cost {
						t.Errorf("a context switch is not charged on both CPUs")
					}
					stale := cached()
					if stale && !tc.revert {
						t.Errorf("seed %d: cpu0 holds the flushed entry after the switch-out DSB", seed)
					}
					if stale {
						held++
					}
					dst.DSBISH() // arch_tlbbatch_flush on the new CPU
					if cached() != stale {
						t.Errorf("seed %d: cpu2's DSB changed what cpu0 holds: it completes only cpu2's TLBIs", seed)
					}
					checked.Store(true)
					return nil
				})
				err = g.m.Run(func(c *mmu.CPU) {
					switch c.ID() {
					case 0:
						var err error
						if va, err = writer.Mmap(page, mm.ProtRead|mm.ProtWrite, false); err != nil {
							t.Error(err)
						}
						if err := writer.Store(va, 1); err != nil {
							t.Error(err)
						}
						filled.Store(true)
						for !checked.Load() { // spin: a blocked CPU would apply what is posted to it
							c.Yield()
						}
					case 1, 2:
						for {
							done, err := mover.Host(c)
							if err != nil {
								t.Error(err)
							}
							if done {
								return
							}
						}
					}
				})
				must(t, err)
				if n := g.k.Stats.Migrations.Load(); n != 1 {
					t.Errorf("%d migrations, want 1", n)
				}
			}
			if tc.revert && held == 0 {
				t.Errorf("unfixed: cpu0 never held the entry after the migration in 10 seeds")
			}
		})
	}
}

// Migration is refused to a task that cannot migrate, and to a CPU of
// another machine.
func TestMigrateErrors(t *testing.T) {
	g := newRig(t, 2, "flush-mm", "fullmm", 1)
	other := newRig(t, 2, "flush-mm", "fullmm", 1)
	plain := g.k.NewTask(g.m.CPU(0), nil, "plain")
	movable := g.k.NewMovableTask(g.m.CPU(1), nil, "movable", func(*mm.Task) error { return nil })
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"not movable", plain.Migrate(g.m.CPU(1))},
		{"not movable, at preemption", plain.MigrateAtPreemption(g.m.CPU(1))},
		{"another machine", movable.MigrateAtPreemption(other.m.CPU(0))},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if _, err := plain.Host(g.m.CPU(0)); err == nil {
		t.Errorf("Host of a task that cannot migrate: no error")
	}
}
