package reclaim_test

import (
	"sync/atomic"
	"testing"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/policy"
	"github.com/mmubench/mmubench/reclaim"
	"github.com/mmubench/mmubench/sched"
)

// Memory pressure: a working set twice the size of memory, kswapd on its
// own CPU woken by the watermark, and every value coming back from swap.
func TestKswapdUnderPressure(t *testing.T) {
	for _, mode := range []sched.Mode{sched.Det, sched.Parallel} {
		for _, pol := range []string{"no-batch", "flush-mm", "range"} {
			t.Run(mode.String()+"/"+pol, func(t *testing.T) {
				cfg := mmu.DefaultConfig()
				// Each user's half of the buffer (128 pages) alone exceeds
				// memory, so each swaps however the two happen to overlap
				// (in parallel mode one may finish before the other starts).
				cfg.CPUs, cfg.Frames = 3, 112
				cfg.Sched = sched.Config{Mode: mode, Seed: 5}
				m, err := mmu.NewMachine(cfg)
				if err != nil {
					t.Fatal(err)
				}
				bp, _ := policy.Batch(pol)
				k, err := mm.New(m, mm.Config{Batch: bp, Nested: policy.NestedFullMM{}, SwapSlots: 256})
				if err != nil {
					t.Fatal(err)
				}
				r := reclaim.New(k, reclaim.Config{Low: 16, High: 48})
				space, _ := k.NewMM()
				users := []*mm.Task{k.NewTask(m.CPU(0), space, "user0"), k.NewTask(m.CPU(1), space, "user1")}
				kswapd := k.NewTask(m.CPU(2), nil, "kswapd")
				const pages = 256
				var mapped, done [2]latch
				var buf uint64
				err = m.Run(func(c *mmu.CPU) {
					if c.ID() == 2 {
						r.Kswapd(kswapd)
						return
					}
					u := users[c.ID()]
					if c.ID() == 0 {
						var err error
						if buf, err = u.Mmap(pages*4096, mm.ProtRead|mm.ProtWrite, false); err != nil {
							t.Error(err)
						}
						mapped[0].Set(u)
					} else {
						mapped[0].Wait(u)
					}
					half := uint64(c.ID()) * pages / 2
					for pass := uint64(0); pass < 3; pass++ {
						for i := half; i < half+pages/2; i++ {
							if pass > 0 {
								if v, err := u.Load(buf + i*4096); err != nil || v != (pass-1)<<16|i {
									t.Errorf("page %d pass %d: %#x, %v", i, pass, v, err)
									return
								}
							}
							if err := u.Store(buf+i*4096, pass<<16|i); err != nil {
								t.Error(err)
								return
							}
						}
					}
					done[c.ID()].Set(u)
					if done[0].is() && done[1].is() {
						r.Stop()
					}
				})
				if err != nil {
					t.Fatal(err)
				}
				if n := k.Oracle().Total(); n != 0 {
					t.Fatalf("violations: %v", k.Oracle().FirstAny())
				}
				back := k.Stats.SwapIns.Load() + k.Stats.SwapCacheHits.Load()
				if k.Stats.WrittenBack.Load() == 0 || back == 0 {
					t.Fatalf("no swapping: written back %d, faulted back %d", k.Stats.WrittenBack.Load(), back)
				}
			})
		}
	}
}

// latch: set once, waited on in both schedulers.
type latch struct {
	set atomic.Bool
	q   sched.WaitQueue
}

func (l *latch) Set(*mm.Task)    { l.set.Store(true); l.q.Notify() }
func (l *latch) Wait(u *mm.Task) { l.q.Wait(u.Thread(), "latch", l.set.Load) }
func (l *latch) is() bool        { return l.set.Load() }
