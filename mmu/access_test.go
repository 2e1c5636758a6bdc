package mmu

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mmubench/mmubench/pagetable"
	"github.com/mmubench/mmubench/sched"
)

// on runs body on CPU 0 of a one-CPU machine with one address space of n
// pages mapped with attrs.
func on(t *testing.T, n int, attrs pagetable.PTE, body func(c *CPU, sp *space)) *Machine {
	t.Helper()
	m := newMachine(t, 1, sched.Det, 1, nil)
	sp := mapPages(t, m, 1, testBase, n, attrs)
	if err := m.Run(func(c *CPU) { sp.enter(c); body(c, sp) }); err != nil {
		t.Fatal(err)
	}
	return m
}

func slot(t *testing.T, sp *space, i int) pagetable.Slot {
	t.Helper()
	s, ok := sp.tables.SlotOf(sp.va(i))
	if !ok {
		t.Fatal("no slot")
	}
	return s
}

func TestHardwareDirty(t *testing.T) {
	t.Run("cached-writable-entry-leaves-descriptor-untouched", func(t *testing.T) {
		on(t, 1, userRW, func(c *CPU, sp *space) {
			c.Store(sp.va(0), 1) // the entry becomes writable (hardware dirty)
			s := slot(t, sp, 0)
			// The kernel cleans the PTE (as MADV_FREE does) but flushes nothing.
			clean := s.Load().MkClean()
			s.Store(clean)
			if f := c.Store(sp.va(0), 2); f != FaultNone {
				t.Fatalf("store faulted: %v", f)
			}
			if got := s.Load(); got != clean {
				t.Fatalf("descriptor changed from %v to %v: a store through a writable entry must not touch it", clean, got)
			}
			if v, _ := c.Load(sp.va(0)); v != 2 {
				t.Fatalf("load = %d, want 2", v)
			}
		})
	})
	t.Run("clean-dbm-entry-sets-dirty-in-memory", func(t *testing.T) {
		m := on(t, 1, userRW, func(c *CPU, sp *space) {
			c.Load(sp.va(0)) // cache a read-only (clean) DBM entry
			if slot(t, sp, 0).Load().HWDirty() {
				t.Fatal("descriptor dirty before any store")
			}
			if f := c.Store(sp.va(0), 5); f != FaultNone {
				t.Fatalf("store faulted: %v", f)
			}
			if d := slot(t, sp, 0).Load(); !d.HWDirty() || !d.Dirty() {
				t.Fatalf("descriptor %v not dirty after a store", d)
			}
			// Later stores go straight through the now-writable entry.
			c.Store(sp.va(0), 6)
		})
		if got := m.Counters().DirtyUpdates; got != 1 {
			t.Fatalf("%d hardware dirty updates, want 1", got)
		}
	})
	t.Run("invalidated-meanwhile-faults", func(t *testing.T) {
		on(t, 1, userRW, func(c *CPU, sp *space) {
			c.Load(sp.va(0))
			slot(t, sp, 0).Store(0) // the kernel clears the PTE; no TLBI yet
			if f := c.Store(sp.va(0), 1); f != FaultTranslation {
				t.Fatalf("store through a clean DBM entry of a cleared descriptor: %v, want translation fault", f)
			}
			if d := slot(t, sp, 0).Load(); d != 0 {
				t.Fatalf("descriptor became %v", d)
			}
		})
	})
	t.Run("write-protected-meanwhile-faults", func(t *testing.T) {
		on(t, 1, userRW, func(c *CPU, sp *space) {
			c.Load(sp.va(0))
			s := slot(t, sp, 0)
			s.Store(s.Load().Wrprotect())
			if f := c.Store(sp.va(0), 1); f != FaultPermission {
				t.Fatalf("got %v, want permission fault", f)
			}
		})
	})
}

func TestAccessFlagSetByWalk(t *testing.T) {
	m := on(t, 1, userRW&^pagetable.PTEAF, func(c *CPU, sp *space) {
		if slot(t, sp, 0).Load().Young() {
			t.Fatal("young before access")
		}
		if _, f := c.Load(sp.va(0)); f != FaultNone {
			t.Fatalf("load faulted: %v", f)
		}
		if !slot(t, sp, 0).Load().Young() {
			t.Fatal("AF not set in memory by the walk")
		}
	})
	if got := m.Counters().AFUpdates; got != 1 {
		t.Fatalf("%d AF updates, want 1", got)
	}
}

func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		attrs pagetable.PTE
		va    func(sp *space) uint64
		write bool
		want  Fault
	}{
		{"unmapped", userRW, func(sp *space) uint64 { return sp.va(5) }, false, FaultTranslation},
		{"kernel-only", userRW &^ pagetable.PTEUser, func(sp *space) uint64 { return sp.va(0) }, false, FaultPermission},
		{"read-only", userRW &^ pagetable.PTEDBM, func(sp *space) uint64 { return sp.va(0) }, true, FaultPermission},
		{"read-only-load-ok", userRW &^ pagetable.PTEDBM, func(sp *space) uint64 { return sp.va(0) }, false, FaultNone},
		{"unaligned", userRW, func(sp *space) uint64 { return sp.va(0) + 3 }, false, FaultAlignment},
		{"beyond-48-bits", userRW, func(sp *space) uint64 { return 1 << 50 }, false, FaultAddressSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := on(t, 1, tc.attrs, func(c *CPU, sp *space) {
				var f Fault
				if tc.write {
					f = c.Store(tc.va(sp), 1)
				} else {
					_, f = c.Load(tc.va(sp))
				}
				if f != tc.want {
					t.Fatalf("got %v, want %v", f, tc.want)
				}
			})
			if tc.want != FaultNone && m.Counters().Faults[tc.want] != 1 {
				t.Fatalf("fault counters %v", m.Counters().Faults)
			}
		})
	}
}

type staleLog struct{ events, tables []uint64 }

func (l *staleLog) StaleFrame(c *CPU, va, pfn uint64, write bool) { l.events = append(l.events, pfn) }
func (l *staleLog) StaleTable(c *CPU, va, pfn uint64, level int) {
	l.tables = append(l.tables, pfn)
}

// A walk that starts from a walk-cache entry to a table frame freed since
// (the table unlinked and freed without a TLBI) is seen by the oracle.
func TestStaleWalkCacheTableSeen(t *testing.T) {
	m := newMachine(t, 1, sched.Det, 1, nil)
	sp := mapPages(t, m, 1, testBase, 2, userRW)
	log := &staleLog{}
	m.SetObserver(log)
	var l3 uint64
	err := m.Run(func(c *CPU) {
		sp.enter(c)
		c.Load(sp.va(0)) // caches the path to the level-3 table
		l3 = sp.tables.Walk(sp.va(0)).Tables[3]
		sp.tables.Unmap(sp.va(0))
		sp.tables.Unmap(sp.va(1))
		if n := sp.tables.FreeEmpty(sp.va(0), sp.va(0)+1<<21, nil); n == 0 {
			t.Fatal("the level-3 table was not freed")
		}
		c.Load(sp.va(1)) // never cached: walks from the stale walk-cache entry
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(log.tables) != 1 || log.tables[0] != l3 || m.Counters().StaleTableWalks != 1 {
		t.Fatalf("oracle saw tables %v (want [%#x]), counter %d", log.tables, l3, m.Counters().StaleTableWalks)
	}
}

// A store through a stale entry into a freed frame is seen by the oracle.
func TestUseAfterFreeSeen(t *testing.T) {
	m := newMachine(t, 1, sched.Det, 1, nil)
	sp := mapPages(t, m, 1, testBase, 1, userRW)
	log := &staleLog{}
	m.SetObserver(log)
	err := m.Run(func(c *CPU) {
		sp.enter(c)
		c.Store(sp.va(0), 1)
		sp.tables.Unmap(sp.va(0)) // no TLBI: the entry is stale
		if err := m.Phys().Free(sp.frames[0]); err != nil {
			t.Fatal(err)
		}
		if f := c.Store(sp.va(0), 2); f != FaultNone {
			t.Fatalf("store through the stale entry faulted: %v", f)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(log.events) != 1 || log.events[0] != sp.frames[0] || m.Counters().StaleFrameAccesses != 1 {
		t.Fatalf("oracle saw %v, counter %d", log.events, m.Counters().StaleFrameAccesses)
	}
}

func TestPhysGenerations(t *testing.T) {
	p, err := NewPhys(4)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := p.Alloc()
	g := p.Gen(f)
	if g&1 != 1 || !p.Allocated(f) {
		t.Fatalf("allocated frame has generation %d", g)
	}
	if err := p.Free(f); err != nil {
		t.Fatal(err)
	}
	if p.Gen(f) == g || p.Allocated(f) {
		t.Fatal("free did not change the generation")
	}
	if err := p.Free(f); err == nil || !strings.Contains(err.Error(), "double free") {
		t.Fatalf("double free: %v", err)
	}
	f2, _ := p.Alloc()
	if f2 != f || p.Gen(f2) == g {
		t.Fatalf("reuse: frame %d gen %d (was %d)", f2, p.Gen(f2), g)
	}
	for i := 0; i < 2; i++ {
		p.Alloc()
	}
	if _, err := p.Alloc(); err != ErrNoMemory {
		t.Fatalf("alloc beyond memory: %v", err)
	}
	if err := p.Free(0); err == nil {
		t.Fatal("frame 0 freed")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"default", func(*Config) {}, ""},
		{"no-l2-no-walk-cache", func(c *Config) { c.L2, c.WalkCache = TLBGeometry{}, TLBGeometry{} }, ""},
		{"zero-cpus", func(c *Config) { c.CPUs = 0 }, "0 CPUs"},
		{"too-many-cpus", func(c *Config) { c.CPUs = MaxCPUs + 1 }, "129 CPUs"},
		{"ways-not-dividing", func(c *Config) { c.L2 = TLBGeometry{Entries: 1280, Ways: 3} }, "L2 TLB"},
		{"sets-not-pow2", func(c *Config) { c.L2 = TLBGeometry{Entries: 1200, Ways: 5} }, "L2 TLB"},
		{"zero-l1", func(c *Config) { c.L1 = TLBGeometry{} }, "L1 TLB"},
		{"plru-5-way", func(c *Config) { c.Replacement = ReplPLRU }, "L1 TLB"},
		{"bad-delivery", func(c *Config) { c.DeliverNum = 3; c.DeliverDen = 2 }, "delivery"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mod(&cfg)
			err := cfg.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tc.want)
			}
		})
	}
}

// Every access through an entry whose frame was freed, or freed and reused,
// is reported, on every path an L1 entry is used by: the inlined hit of a
// fully associative L1 (hitL1), a set associative L1 (translate's own
// lookup), an entry copied from the L2 TLB after an L1 eviction; loads and
// stores alike.
func TestStaleFrameEveryPath(t *testing.T) {
	for _, path := range []string{"l1-indexed", "l1-set-assoc", "l2-copy"} {
		for _, reuse := range []bool{false, true} {
			for _, store := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/reuse=%v/store=%v", path, reuse, store), func(t *testing.T) {
					testStaleFrame(t, path, reuse, store)
				})
			}
		}
	}
}

func testStaleFrame(t *testing.T, path string, reuse, store bool) {
	m := newMachine(t, 1, sched.Det, 1, func(c *Config) {
		if path == "l1-set-assoc" {
			c.L1 = TLBGeometry{Entries: 64, Ways: 4}
		}
	})
	sp := mapPages(t, m, 1, testBase, 64, userRW)
	log := &staleLog{}
	m.SetObserver(log)
	access := func(c *CPU, i int) Fault {
		if store {
			return c.Store(sp.va(i), 7)
		}
		_, f := c.Load(sp.va(i))
		return f
	}
	err := m.Run(func(c *CPU) {
		sp.enter(c)
		if f := c.Store(sp.va(0), 1); f != FaultNone { // writable, dirty: no DBM update later
			t.Fatal(f)
		}
		if path == "l2-copy" {
			for i := 1; i < 64; i++ { // push page 0 out of the 48-entry L1, not the L2
				c.Load(sp.va(i))
			}
		}
		sp.tables.Unmap(sp.va(0)) // no TLBI: the entries are stale
		if err := m.Phys().Free(sp.frames[0]); err != nil {
			t.Fatal(err)
		}
		if reuse {
			if f, err := m.Phys().Alloc(); err != nil || f != sp.frames[0] {
				t.Fatalf("reuse: frame %d, %v", f, err)
			}
		}
		walks, l2 := c.ctr.Walks, c.ctr.L2Hits
		for range 3 {
			if f := access(c, 0); f != FaultNone {
				t.Fatalf("access through the stale entry faulted: %v", f)
			}
		}
		if c.ctr.Walks != walks || (path == "l2-copy") != (c.ctr.L2Hits == l2+1) {
			t.Errorf("walks %d -> %d, L2 hits %d -> %d: not the path under test", walks, c.ctr.Walks, l2, c.ctr.L2Hits)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(log.events) != 3 || log.events[0] != sp.frames[0] || m.Counters().StaleFrameAccesses != 3 {
		t.Fatalf("oracle saw %v, counter %d; want frame %d three times", log.events, m.Counters().StaleFrameAccesses, sp.frames[0])
	}
}

// The L1 hit path's free count (freeepoch.go): an entry whose frame is
// freed, or freed and reused, after the L1 was verified is still reported on
// every access — while the count has moved, after the L1 is verified again
// (the entry marked), and after further frees of other frames.
func TestStaleFrameAcrossVerify(t *testing.T) {
	for _, reuse := range []bool{false, true} {
		m := newMachine(t, 1, sched.Parallel, 1, nil)
		sp := mapPages(t, m, 1, testBase, 8, userRW)
		spare, err := m.Phys().Alloc()
		if err != nil {
			t.Fatal(err)
		}
		log := &staleLog{}
		m.SetObserver(log)
		const rounds = 300
		err = m.Run(func(c *CPU) {
			sp.enter(c)
			for range 200 { // fills, and a verified L1: the comparison-free hit
				for i := range 8 {
					c.Load(sp.va(i))
				}
			}
			if c.l1Epoch != m.Phys().frees.Load() {
				t.Error("the L1 was never verified")
			}
			sp.tables.Unmap(sp.va(0)) // no TLBI: the entry is stale
			if err := m.Phys().Free(sp.frames[0]); err != nil {
				t.Fatal(err)
			}
			if reuse {
				if f, err := m.Phys().Alloc(); err != nil || f != sp.frames[0] {
					t.Fatalf("reuse: frame %d, %v", f, err)
				}
			}
			for n := range rounds {
				if n == rounds/2 { // another free moves the count again
					if err := m.Phys().Free(spare); err != nil {
						t.Fatal(err)
					}
				}
				if _, f := c.Load(sp.va(0)); f != FaultNone {
					t.Fatalf("load through the stale entry faulted: %v", f)
				}
				for i := 1; i < 8; i++ {
					c.Load(sp.va(i))
				}
			}
			if c.l1Epoch != m.Phys().frees.Load() {
				t.Error("the L1 was not verified again")
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := m.Counters().StaleFrameAccesses; len(log.events) != rounds || n != rounds {
			t.Fatalf("reuse=%v: oracle saw %d reports, counter %d; want %d", reuse, len(log.events), n, rounds)
		}
	}
}
