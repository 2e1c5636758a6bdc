package mmu

import (
	"fmt"
	"testing"

	"github.com/mmubench/mmubench/sched"
)

// completionRun is the scenario of the completion rule: CPU2 caches page P;
// CPU0 clears P's descriptor and issues TLBI VALE1IS; CPU1 then executes DSB
// ISH; then CPU2 loads P. If issuerDSB, CPU0 executes DSB ISH itself before
// CPU2 loads. It reports whether CPU2's load hit the old translation.
func completionRun(t *testing.T, seed uint64, issuerDSB bool) bool {
	m := newMachine(t, 3, sched.Det, seed, func(c *Config) { c.Sched.ChangeEvery = 4 })
	sp := mapPages(t, m, 1, testBase, 1, userRW)
	p := sp.va(0)
	var cached, issued, synced flag
	stale := false
	err := m.Run(func(c *CPU) {
		sp.enter(c)
		switch c.ID() {
		case 0:
			cached.Wait(c, "cached")
			sp.tables.Unmap(p)
			c.TLBIVALE1IS(sp.asid, p)
			if issuerDSB {
				c.DSBISH()
			}
			issued.Set()
		case 1:
			issued.Wait(c, "issued")
			c.DSBISH() // completes nothing of CPU0's
			synced.Set()
		case 2:
			if _, f := c.Load(p); f != FaultNone {
				t.Errorf("seed %d: first load faulted: %v", seed, f)
			}
			cached.Set()
			synced.Wait(c, "synced")
			_, f := c.Load(p)
			stale = f == FaultNone
		}
	})
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	return stale
}

func TestCompletionRule(t *testing.T) {
	const seeds = 500
	t.Run("other-cpu-dsb-does-not-complete", func(t *testing.T) {
		n := 0
		for s := uint64(0); s < seeds; s++ {
			if completionRun(t, s, false) {
				n++
			}
		}
		t.Logf("CPU2 hit the invalidated entry after CPU1's DSB in %d of %d seeds", n, seeds)
		if n == 0 {
			t.Fatal("no seed let CPU2 hit the old entry: the delivery model is not asynchronous")
		}
	})
	t.Run("issuer-dsb-completes", func(t *testing.T) {
		for s := uint64(0); s < seeds; s++ {
			if completionRun(t, s, true) {
				t.Fatalf("seed %d: CPU2 hit the old entry after CPU0's own DSB", s)
			}
		}
	})
}

// The same rule in parallel mode: after the issuer's DSB no CPU may hit.
func TestCompletionRuleParallel(t *testing.T) {
	for i := 0; i < 50; i++ {
		m := newMachine(t, 3, sched.Parallel, uint64(i), func(c *Config) { c.Latency = 1000 })
		sp := mapPages(t, m, 1, testBase, 1, userRW)
		p := sp.va(0)
		var cached, done flag
		err := m.Run(func(c *CPU) {
			sp.enter(c)
			switch c.ID() {
			case 0:
				cached.Wait(c, "cached")
				sp.tables.Unmap(p)
				c.TLBIVALE1IS(sp.asid, p)
				c.DSBISH()
				done.Set()
			case 2:
				c.Load(p)
				cached.Set()
				done.Wait(c, "done")
				if _, f := c.Load(p); f == FaultNone {
					t.Errorf("run %d: CPU2 hit after the issuer's DSB", i)
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Each TLBI removes exactly what it names. CPU1 caches pages of two ASIDs;
// CPU0 issues the operation and a DSB; CPU1 then probes each page.
func TestTLBIScope(t *testing.T) {
	type probe struct {
		asid uint16
		page int
	}
	all := []probe{{1, 0}, {1, 1}, {1, 2}, {1, 3}, {2, 0}, {2, 1}}
	for _, tc := range []struct {
		name  string
		op    func(c *CPU, a, b *space)
		gone  []probe // pages that must miss afterwards
		walkC bool    // the walk cache entry for asid 1 page 0 must be gone too
	}{
		{"VALE1IS", func(c *CPU, a, b *space) { c.TLBIVALE1IS(1, a.va(0)) }, []probe{{1, 0}}, false},
		{"VAE1IS", func(c *CPU, a, b *space) { c.TLBIVAE1IS(1, a.va(0)) }, []probe{{1, 0}}, true},
		{"ASIDE1IS", func(c *CPU, a, b *space) { c.TLBIASIDE1IS(1) }, []probe{{1, 0}, {1, 1}, {1, 2}, {1, 3}}, true},
		{"VMALLE1IS", func(c *CPU, a, b *space) { c.TLBIVMALLE1IS() }, all, true},
		{"RVALE1IS", func(c *CPU, a, b *space) { c.TLBIRVALE1IS(1, a.va(1), 2) }, []probe{{1, 1}, {1, 2}}, false},
		{"VALE1-local", func(c *CPU, a, b *space) { c.TLBIVALE1(1, a.va(0)) }, nil, false},
	} {
		for _, mode := range []sched.Mode{sched.Det, sched.Parallel} {
			t.Run(tc.name+"/"+mode.String(), func(t *testing.T) {
				m := newMachine(t, 2, mode, 7, nil)
				a := mapPages(t, m, 1, testBase, 4, userRW)
				b := mapPages(t, m, 2, testBase, 2, userRW)
				spaces := map[uint16]*space{1: a, 2: b}
				var cached, flushed flag
				err := m.Run(func(c *CPU) {
					if c.ID() == 0 {
						cached.Wait(c, "cached")
						tc.op(c, a, b)
						c.DSBISH()
						flushed.Set()
						return
					}
					for _, p := range all {
						spaces[p.asid].enter(c)
						c.Load(spaces[p.asid].va(p.page))
					}
					cached.Set()
					flushed.Wait(c, "flushed")
					for _, p := range all {
						sp := spaces[p.asid]
						sp.enter(c)
						wc := c.ctr.WalkCacheHits
						hit, _ := hits(c, sp.va(p.page))
						wantGone := false
						for _, g := range tc.gone {
							wantGone = wantGone || g == p
						}
						if hit == wantGone {
							t.Errorf("asid %d page %d: hit=%v after %s", p.asid, p.page, hit, tc.name)
						}
						if p == (probe{1, 0}) && wantGone && tc.walkC != (c.ctr.WalkCacheHits == wc) {
							t.Errorf("walk cache after %s: hit=%v, want %v", tc.name, c.ctr.WalkCacheHits != wc, !tc.walkC)
						}
					}
				})
				if err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// A local TLBI touches only the issuing CPU.
func TestLocalTLBIStaysLocal(t *testing.T) {
	m := newMachine(t, 2, sched.Det, 1, nil)
	sp := mapPages(t, m, 1, testBase, 1, userRW)
	var cached, flushed flag
	err := m.Run(func(c *CPU) {
		sp.enter(c)
		c.Load(sp.va(0))
		if c.ID() == 0 {
			cached.Wait(c, "cached")
			c.TLBIVALE1(1, sp.va(0))
			c.DSBISH()
			if hit, _ := hits(c, sp.va(0)); hit {
				t.Error("issuer still hits after its local TLBI + DSB")
			}
			flushed.Set()
			return
		}
		cached.Set()
		flushed.Wait(c, "flushed")
		if hit, _ := hits(c, sp.va(0)); !hit {
			t.Error("a local TLBI on CPU0 removed CPU1's entry")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A DSB completes even when a target is blocked on a lock for the whole
// time: a blocked CPU still applies what is addressed to it.
func TestDSBWithBlockedTarget(t *testing.T) {
	for _, mode := range []sched.Mode{sched.Det, sched.Parallel} {
		for seed := uint64(0); seed < 20; seed++ {
			m := newMachine(t, 3, mode, seed, nil)
			sp := mapPages(t, m, 1, testBase, 1, userRW)
			var lock sched.Mutex
			var held, cached, done flag
			err := m.Run(func(c *CPU) {
				sp.enter(c)
				switch c.ID() {
				case 0:
					lock.Lock(c.Thread())
					held.Set()
					done.Wait(c, "done")
					lock.Unlock(c.Thread())
				case 1:
					c.Load(sp.va(0))
					cached.Set()
					held.Wait(c, "held")
					lock.Lock(c.Thread()) // blocks until CPU2's DSB is done
					lock.Unlock(c.Thread())
				case 2:
					cached.Wait(c, "cached")
					held.Wait(c, "held")
					c.TLBIVMALLE1IS()
					c.DSBISH()
					done.Set()
				}
			})
			if err != nil {
				t.Fatalf("%v seed %d: %v", mode, seed, err)
			}
		}
	}
}

// The same seed gives identical counters and schedule; different seeds give
// different schedules.
func TestDeterminism(t *testing.T) {
	var lastTrace *sched.Trace
	run := func(seed uint64, replay *sched.Trace) (Counters, string) {
		m := newMachine(t, 4, sched.Det, seed, func(c *Config) {
			c.Sched.Record = true
			c.Sched.Replay = replay
			c.Sched.ChangeEvery = 20
			c.L1 = TLBGeometry{Entries: 8, Ways: 8}
			c.L2 = TLBGeometry{Entries: 32, Ways: 4}
		})
		sp := mapPages(t, m, 1, testBase, 64, userRW)
		if err := m.Run(func(c *CPU) {
			sp.enter(c)
			for i := 0; i < 400; i++ {
				p := sp.va((i*7 + c.ID()*13) % 64)
				if c.ID() == 0 && i%50 == 0 {
					c.TLBIVALE1IS(1, p)
					c.DSBISH()
				} else if i%3 == 0 {
					c.Store(p, uint64(i))
				} else {
					c.Load(p)
				}
			}
		}); err != nil {
			t.Fatal(err)
		}
		lastTrace = m.Scheduler().Trace()
		return m.Counters(), fmt.Sprint(lastTrace.Events)
	}
	traces := map[string]bool{}
	for seed := uint64(0); seed < 10; seed++ {
		c1, t1 := run(seed, nil)
		c2, t2 := run(seed, nil)
		if c1 != c2 || t1 != t2 {
			t.Fatalf("seed %d: two runs differ:\n%+v\n%+v", seed, c1, c2)
		}
		traces[t1] = true
		// The recorded choices replay the run without the seed.
		c3, _ := run(seed+1000, lastTrace)
		if c3 != c1 {
			t.Fatalf("seed %d: replayed trace gave different counters:\n%+v\n%+v", seed, c1, c3)
		}
	}
	if len(traces) < 9 {
		t.Fatalf("10 seeds gave %d distinct schedules", len(traces))
	}
}

// Parallel mode: 8 CPUs hammer shared pages while a 9th unmaps, remaps and
// invalidates them. Run under -race; afterwards, every CPU's view agrees.
func TestParallelHammer(t *testing.T) {
	const pages = 16
	m := newMachine(t, 9, sched.Parallel, 1, func(c *Config) { c.Latency = 64 })
	sp := mapPages(t, m, 1, testBase, pages, userRW)
	var stop flag
	err := m.Run(func(c *CPU) {
		sp.enter(c)
		if c.ID() == 8 {
			for round := 0; round < 300; round++ {
				i := round % pages
				old, _ := sp.tables.Unmap(sp.va(i))
				c.DSBISHST()
				c.TLBIVALE1IS(1, sp.va(i))
				c.DSBISH()
				if err := sp.tables.Map(sp.va(i), old.MkClean()); err != nil {
					t.Error(err)
				}
			}
			c.TLBIASIDE1IS(1)
			c.DSBISH()
			stop.Set()
			return
		}
		for i := 0; !stop.set.Load(); i++ {
			va := sp.va((i*5 + c.ID()) % pages)
			if i%2 == 0 {
				c.Store(va+8*uint64(c.ID()), uint64(i))
			} else {
				c.Load(va)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	sum := m.Counters()
	if sum.Accesses == 0 || sum.InvalsApplied != 9*(300+1) {
		t.Fatalf("accesses %d, invalidations applied %d (want %d)", sum.Accesses, sum.InvalsApplied, 9*301)
	}
	for i := 0; i < 9; i++ {
		if n := m.CPU(i).outstanding.Load(); n != 0 {
			t.Fatalf("cpu%d has %d outstanding invalidations after the run", i, n)
		}
	}
}

// A target that only spins (yield points, no accesses) still applies an
// invalidation that falls due after a latency: the issuer's DSB completes.
func TestDSBWithSpinningTarget(t *testing.T) {
	m := newMachine(t, 2, sched.Parallel, 1, func(c *Config) { c.Latency = 5000 })
	sp := mapPages(t, m, 1, testBase, 1, userRW)
	var cached, done flag
	err := m.Run(func(c *CPU) {
		sp.enter(c)
		if c.ID() == 1 {
			c.Load(sp.va(0))
			cached.Set()
			for !done.set.Load() {
				c.Yield()
			}
			return
		}
		cached.Wait(c, "cached")
		c.TLBIVMALLE1IS()
		c.DSBISH() // hangs if spinning CPU 1 never reaches the deadline
		done.Set()
	})
	if err != nil {
		t.Fatal(err)
	}
}
