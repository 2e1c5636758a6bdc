package mm_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/policy"
	"github.com/mmubench/mmubench/reclaim"
	"github.com/mmubench/mmubench/sched"
)

// rig is a small machine with a kernel and reclaim, in det mode.
type rig struct {
	m *mmu.Machine
	k *mm.Kernel
	r *reclaim.Reclaim
}

func newRig(t *testing.T, cpus int, batch, nested string, seed uint64) *rig {
	return newRigWith(t, cpus, batch, nested, seed, nil)
}

// newRigWith is newRig with the machine's configuration adjusted by mod.
func newRigWith(t *testing.T, cpus int, batch, nested string, seed uint64, mod func(*mmu.Config)) *rig {
	t.Helper()
	cfg := mmu.DefaultConfig()
	cfg.CPUs = cpus
	cfg.Frames = 1024
	cfg.Sched = sched.Config{Mode: sched.Det, Seed: seed}
	if mod != nil {
		mod(&cfg)
	}
	m, err := mmu.NewMachine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	bp, err := policy.Batch(batch)
	if err != nil {
		t.Fatal(err)
	}
	np, err := policy.Nested(nested)
	if err != nil {
		t.Fatal(err)
	}
	k, err := mm.New(m, mm.Config{Batch: bp, Nested: np})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{m: m, k: k, r: reclaim.New(k, reclaim.Config{})}
}

// single runs body as the only task of a fresh mm on CPU 0.
func (g *rig) single(t *testing.T, body func(tk *mm.Task)) {
	t.Helper()
	space, err := g.k.NewMM()
	if err != nil {
		t.Fatal(err)
	}
	tk := g.k.NewTask(g.m.CPU(0), space, "test")
	if err := g.m.Run(func(c *mmu.CPU) {
		if c.ID() == 0 {
			body(tk)
		}
	}); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

const page = 4096

func pfnOf(t *testing.T, tk *mm.Task, va uint64) uint64 {
	t.Helper()
	pte, ok := tk.MM().Tables().Lookup(va)
	if !ok {
		t.Fatalf("%#x not mapped", va)
	}
	return pte.PFN()
}

func TestTLBFlushBatchedEncoding(t *testing.T) {
	for _, tc := range []struct {
		name        string
		start       int32
		wantPending int32
		wantFlushed int32
	}{
		{"first", 0, 1, 0},
		{"after-a-flush", 5 | 5<<mm.TLBFlushBatchFlushedShift, 6, 5},
		{"at-large", mm.TLBFlushBatchPendingLarge | 7<<mm.TLBFlushBatchFlushedShift, mm.TLBFlushBatchPendingLarge + 1, 7},
		{"past-large-resets", (mm.TLBFlushBatchPendingLarge + 1) | 9<<mm.TLBFlushBatchFlushedShift, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v atomic.Int32
			v.Store(tc.start)
			mm.IncTLBFlushBatched(&v)
			p, f := mm.BatchedPending(v.Load())
			if p != tc.wantPending || f != tc.wantFlushed {
				t.Fatalf("pending, flushed = %d, %d; want %d, %d", p, f, tc.wantPending, tc.wantFlushed)
			}
		})
	}
	// Pending never catches up with flushed by wrapping: from any state,
	// after an increment, pending != flushed.
	for pending := int32(0); pending <= mm.TLBFlushBatchPendingMask; pending += 97 {
		var v atomic.Int32
		v.Store(pending | pending<<mm.TLBFlushBatchFlushedShift)
		mm.IncTLBFlushBatched(&v)
		if p, f := mm.BatchedPending(v.Load()); p == f {
			t.Fatalf("from %d/%d an increment left pending == flushed", pending, pending)
		}
	}
}

// Demand-zero, protection, swap out and back in, and munmap, as a program
// sees them.
func TestFaultsAndSwap(t *testing.T) {
	g := newRig(t, 1, "flush-mm", "fullmm", 1)
	g.single(t, func(tk *mm.Task) {
		va, err := tk.Mmap(4*page, mm.ProtRead|mm.ProtWrite, false)
		must(t, err)
		if v, err := tk.Load(va + 8); err != nil || v != 0 {
			t.Fatalf("demand-zero load = %d, %v", v, err)
		}
		for i := uint64(0); i < 4; i++ {
			must(t, tk.Store(va+i*page, 100+i))
		}
		// Page everything out; it must come back.
		must(t, tk.Madvise(va, 4*page, mm.MadvPageout))
		if got := g.k.Stats.WrittenBack.Load(); got != 4 {
			t.Fatalf("%d pages written back, want 4", got)
		}
		for i := uint64(0); i < 4; i++ {
			if v, err := tk.Load(va + i*page); err != nil || v != 100+i {
				t.Fatalf("page %d after swap-in = %d, %v", i, v, err)
			}
		}
		must(t, tk.Mprotect(va, page, mm.ProtRead))
		var segv *mm.SegvError
		if err := tk.Store(va, 1); !errors.As(err, &segv) {
			t.Fatalf("store to a PROT_READ page: %v", err)
		}
		must(t, tk.Mprotect(va, page, mm.ProtRead|mm.ProtWrite))
		must(t, tk.Store(va, 1))
		must(t, tk.Munmap(va, 4*page))
		if _, err := tk.Load(va); !errors.As(err, &segv) {
			t.Fatalf("load after munmap: %v", err)
		}
		if tk.MM().Tables().Walk(va).OK {
			t.Fatal("still mapped after munmap")
		}
	})
	if n := g.k.Oracle().Total(); n != 0 {
		t.Fatalf("%d violations in a correct single-threaded program: %v", n, g.k.Oracle().FirstAny())
	}
	if g.k.SwapUsed() != 0 {
		t.Fatalf("%d swap slots leaked", g.k.SwapUsed())
	}
}

// try_to_unmap_one moves a PTE's dirty state to the folio.
func TestDirtyTransferToFolio(t *testing.T) {
	g := newRig(t, 1, "flush-mm", "fullmm", 1)
	g.single(t, func(tk *mm.Task) {
		va, err := tk.Mmap(2*page, mm.ProtRead|mm.ProtWrite, false)
		must(t, err)
		must(t, tk.Store(va, 1))    // hardware-dirty PTE
		_, err = tk.Load(va + page) // clean PTE
		must(t, err)
		for i, wantDirty := range []bool{true, false} {
			pfn := pfnOf(t, tk, va+uint64(i)*page)
			if !g.k.FolioGet(pfn) { // isolate, as reclaim does
				t.Fatal("folio not allocated")
			}
			slot, err := g.k.AllocSwapSlot()
			must(t, err)
			if !tk.TryToUnmap(pfn, slot, false) {
				t.Fatalf("page %d: not unmapped", i)
			}
			if got := g.k.FolioTestDirty(pfn); got != wantDirty {
				t.Fatalf("page %d: folio dirty = %v, want %v", i, got, wantDirty)
			}
			g.k.Pageout(tk, pfn, slot)
			g.k.SwapCacheRelease(slot, pfn)
			g.k.FolioPut(tk, pfn)
		}
		if v, err := tk.Load(va); err != nil || v != 1 {
			t.Fatalf("after swap-in: %d, %v", v, err)
		}
	})
}

// A clean lazy-free folio is discarded and reads as zero; one written
// after MADV_FREE is kept.
func TestLazyfreeDiscard(t *testing.T) {
	g := newRig(t, 1, "flush-mm", "fullmm", 1)
	g.single(t, func(tk *mm.Task) {
		va, err := tk.Mmap(2*page, mm.ProtRead|mm.ProtWrite, false)
		must(t, err)
		must(t, tk.Store(va, 11))
		must(t, tk.Store(va+page, 22))
		must(t, tk.Madvise(va, 2*page, mm.MadvFree))
		must(t, tk.Store(va+page, 33)) // cancels the free of the second page
		must(t, tk.Madvise(va, 2*page, mm.MadvPageout))
		if v, _ := tk.Load(va); v != 0 {
			t.Fatalf("discarded lazy-free page reads %d, want 0", v)
		}
		if v, _ := tk.Load(va + page); v != 33 {
			t.Fatalf("rewritten lazy-free page reads %d, want 33", v)
		}
	})
	if d := g.k.Stats.Discarded.Load(); d != 1 {
		t.Fatalf("%d discarded, want 1", d)
	}
	if n := g.k.Oracle().Total(); n != 0 {
		t.Fatalf("violation: %v", g.k.Oracle().FirstAny())
	}
}

// Nested gathers: with two madvise calls on one mm in flight, the second
// to finish sees the first (mm_tlb_flush_nested) and the nested policy
// decides its flush.
func TestNestedGathers(t *testing.T) {
	flushes := map[string]uint64{} // range flushes and flush_tlb_mm calls, over the seeds
	for _, tc := range []struct {
		nested    string
		wantASID  bool // fullmm flushes with ASIDE1IS
		wantFlush bool // any nested flush at all
	}{
		{"none", false, false},
		{"range", false, true},
		{"fullmm", true, true},
	} {
		t.Run(tc.nested, func(t *testing.T) {
			var nested uint64
			var asid uint64
			for seed := uint64(0); seed < 40; seed++ {
				g := newRig(t, 2, "flush-mm", tc.nested, seed)
				space, err := g.k.NewMM()
				must(t, err)
				a := g.k.NewTask(g.m.CPU(0), space, "a")
				b := g.k.NewTask(g.m.CPU(1), space, "b")
				var va atomic.Uint64
				var q sched.WaitQueue
				must(t, g.m.Run(func(c *mmu.CPU) {
					tk := a
					if c.ID() == 1 {
						tk = b
						q.Wait(c.Thread(), "mapped", func() bool { return va.Load() != 0 })
					} else {
						v, err := tk.Mmap(8*page, mm.ProtRead|mm.ProtWrite, false)
						must(t, err)
						for i := uint64(0); i < 8; i++ {
							must(t, tk.Store(v+i*page, i))
						}
						va.Store(v)
						q.Notify()
					}
					must(t, tk.Madvise(va.Load(), 8*page, mm.MadvDontneed))
				}))
				nested += g.k.Stats.NestedFlushes.Load()
				asid += g.m.Counters().TLBI[mmu.ASIDE1IS]
				flushes[tc.nested] += g.k.Stats.RangeFlushes.Load() + g.k.Stats.FlushMM.Load()
			}
			if nested == 0 {
				t.Fatal("40 seeds never nested two gathers")
			}
			if tc.wantASID != (asid > 0) {
				t.Fatalf("ASIDE1IS issued %d times under %s", asid, tc.nested)
			}
			// A nested gather that recorded nothing flushes only if the
			// policy makes it: more flushes than under none, same seeds.
			if got := flushes[tc.nested] > flushes["none"]; tc.nested != "none" && got != tc.wantFlush {
				t.Fatalf("%d flushes under %s, %d under none: want more = %v", flushes[tc.nested], tc.nested, flushes["none"], tc.wantFlush)
			}
		})
	}
}

// Mmap steps over a MAP_FIXED mapping in its way; MmapFixed refuses to
// overlap one.
func TestMmapPlacement(t *testing.T) {
	g := newRig(t, 1, "flush-mm", "fullmm", 1)
	g.single(t, func(tk *mm.Task) {
		first, err := tk.Mmap(page, mm.ProtRead, false)
		must(t, err)
		// Where the next Mmap would go (2 MiB aligned, past a guard gap).
		next := (first+page+2<<20-1)&^(2<<20-1) + 2<<20
		must(t, tk.MmapFixed(next, 4*page, mm.ProtRead|mm.ProtWrite, false))
		if err := tk.MmapFixed(next+page, page, mm.ProtRead, false); !errors.Is(err, mm.ErrInval) {
			t.Fatalf("overlapping MmapFixed: %v", err)
		}
		va, err := tk.Mmap(8*page, mm.ProtRead, false)
		must(t, err)
		if va < next+4*page && next < va+8*page {
			t.Fatalf("Mmap placed %#x over the fixed mapping at %#x", va, next)
		}
		if n := len(tk.MM().VMAs()); n != 3 {
			t.Fatalf("%d VMAs, want 3", n)
		}
	})
}
