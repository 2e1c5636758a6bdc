package mm_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/sched"
)

// A write after fork copies the page: each process sees its own writes, and
// neither sees the other's.
func TestForkCOW(t *testing.T) {
	g := newRig(t, 1, "flush-mm", "fullmm", 1)
	g.single(t, func(tk *mm.Task) {
		va, err := tk.Mmap(2*page, mm.ProtRead|mm.ProtWrite, false)
		must(t, err)
		must(t, tk.Store(va, 1))
		must(t, tk.Store(va+page, 2))
		parent := tk.MM()
		shared := pfnOf(t, tk, va)
		child, err := tk.Fork()
		must(t, err)
		if n := g.k.Folio(shared).Mapcount(); n != 2 {
			t.Fatalf("after fork the page is mapped %d times, want 2", n)
		}
		tk.SwitchMM(child)
		if v, err := tk.Load(va); err != nil || v != 1 {
			t.Fatalf("child reads %d, %v; want the parent's 1", v, err)
		}
		must(t, tk.Store(va, 10)) // COW
		if pfnOf(t, tk, va) == shared {
			t.Fatal("the child's write did not copy the page")
		}
		tk.SwitchMM(parent)
		if v, err := tk.Load(va); err != nil || v != 1 {
			t.Fatalf("parent reads %d, %v after the child's write; want 1", v, err)
		}
		// The parent is the page's only user again: its write reuses it.
		must(t, tk.Store(va, 3))
		if pfnOf(t, tk, va) != shared {
			t.Fatal("the parent's write copied a page nobody else maps")
		}
		tk.SwitchMM(child)
		if v, err := tk.Load(va); err != nil || v != 10 {
			t.Fatalf("child reads %d, %v; want its own 10", v, err)
		}
		if v, err := tk.Load(va + page); err != nil || v != 2 {
			t.Fatalf("child reads %d, %v from the untouched page; want 2", v, err)
		}
		tk.Exit()
		tk.SwitchMM(parent)
		if n := g.k.Folio(pfnOf(t, tk, va+page)).Mapcount(); n != 1 {
			t.Fatalf("after the child's exit the page is mapped %d times, want 1", n)
		}
	})
	if c := g.k.Stats.COWs.Load(); c != 1 {
		t.Fatalf("%d copies, want 1", c)
	}
	if n := g.k.Oracle().Total(); n != 0 {
		t.Fatalf("violations: %v", g.k.Oracle().FirstAny())
	}
}

// Fork, exec and exit many times: exit gives every page, page table and
// ASID back; only the page cache stays.
func TestExitFreesEverything(t *testing.T) {
	g := newRig(t, 1, "flush-mm", "fullmm", 1)
	lib := g.k.NewFile("libc.so", 16, nil)
	img := &mm.Image{Name: "prog", Segments: []mm.Segment{
		{File: lib, Pages: 16, Prot: mm.ProtRead},
		{File: lib, PgOff: 8, Pages: 4, Prot: mm.ProtRead | mm.ProtWrite}, // .data: private, COW
		{Pages: 8, Prot: mm.ProtRead | mm.ProtWrite},                      // heap
	}}
	free0 := g.m.Phys().FreeFrames()
	g.single(t, func(tk *mm.Task) {
		shell := tk.MM()
		for i := 0; i < 300; i++ { // more processes than the test would have ASIDs for without reuse... cheaply
			child, err := tk.Fork()
			must(t, err)
			tk.SwitchMM(child)
			vas, err := tk.Exec(img)
			must(t, err)
			for p := uint64(0); p < 16; p++ {
				_, err := tk.Load(vas[0] + p*page)
				must(t, err)
			}
			must(t, tk.Store(vas[1], uint64(i))) // COW of a file page
			for p := uint64(0); p < 8; p++ {
				must(t, tk.Store(vas[2]+p*page, p))
			}
			tk.Exit()
			tk.SwitchMM(shell)
		}
	})
	// The shell's root table and the library's 16 cached pages remain.
	if got, want := g.m.Phys().FreeFrames(), free0-1-16; got != want {
		t.Fatalf("%d free frames after 300 processes exited, want %d", got, want)
	}
	if n := g.k.MMs(); n != 1 {
		t.Fatalf("%d live address spaces, want the shell's", n)
	}
	if e := g.k.Stats.Exits.Load(); e != 600 { // the forked copy and the exec'd image of each child
		t.Fatalf("%d address spaces torn down, want 600", e)
	}
	if n := g.k.Oracle().Total(); n != 0 {
		t.Fatalf("violations: %v", g.k.Oracle().FirstAny())
	}
}

// sharedProcs runs procs processes on CPUs 0..procs-1, each mapping the
// same one-page file and touching it (proc does the rest), and a reclaimer
// on the last CPU that reclaims the page once every process has touched it
// (reclaimAfter then runs on it).
func sharedProcs(t *testing.T, g *rig, procs int, write bool, proc func(tk *mm.Task, va uint64, reclaimed func()), reclaimer func(tk *mm.Task)) {
	t.Helper()
	file := g.k.NewShmemFile("shared", 1)
	tasks := make([]*mm.Task, procs)
	for i := range tasks {
		space, err := g.k.NewMM()
		must(t, err)
		tasks[i] = g.k.NewTask(g.m.CPU(i), space, "proc")
	}
	kswapd := g.k.NewTask(g.m.CPU(procs), nil, "kswapd")
	var touched atomic.Int32
	var q, doneQ sched.WaitQueue
	var done atomic.Bool
	err := g.m.Run(func(c *mmu.CPU) {
		if c.ID() == procs {
			q.Wait(kswapd.Thread(), "every process touched the page", func() bool { return touched.Load() == int32(procs) })
			reclaimer(kswapd)
			done.Store(true)
			doneQ.Notify()
			return
		}
		tk := tasks[c.ID()]
		va, err := tk.MmapFile(file, 0, page, mm.ProtRead|mm.ProtWrite, true)
		must(t, err)
		if write {
			must(t, tk.Store(va, uint64(c.ID())))
		} else {
			_, err := tk.Load(va)
			must(t, err)
		}
		touched.Add(1)
		q.Notify()
		proc(tk, va, func() { doneQ.Wait(tk.Thread(), "reclaim done", done.Load) })
	})
	if err != nil {
		t.Fatal(err)
	}
}

// reclaimFilePage reclaims the one page of the file mapped at va in mm's
// first process, with the batched flush (TTU_BATCH_FLUSH).
func reclaimSharedPage(g *rig, tk *mm.Task, pfn uint64) {
	if g.k.FolioGet(pfn) {
		g.r.ReclaimPages(tk, []uint64{pfn})
	}
}

// Reclaim of a page mapped by 8 processes defers one flush per mm and
// raises each mm's tlb_flush_batched; each mm's next munmap finds it
// pending and flushes.
func TestReclaimSharedPagePendsEveryMM(t *testing.T) {
	const procs = 8
	g := newRig(t, procs+1, "flush-mm", "fullmm", 1)
	var pfn atomic.Uint64
	var pendingSeen atomic.Int32
	sharedProcs(t, g, procs, false, func(tk *mm.Task, va uint64, reclaimed func()) {
		pte, _ := tk.MM().Tables().Lookup(va)
		pfn.Store(pte.PFN())
		reclaimed()
		if p, f := mm.BatchedPending(tk.MM().TLBFlushBatched()); p != f {
			pendingSeen.Add(1)
		}
		before := tk.MM().PendingFlushes()
		must(t, tk.Munmap(va, page))
		if tk.MM().PendingFlushes() != before+1 {
			t.Errorf("munmap did not flush the pending batch")
		}
		if p, f := mm.BatchedPending(tk.MM().TLBFlushBatched()); p != f {
			t.Errorf("still pending after munmap: %d/%d", p, f)
		}
	}, func(tk *mm.Task) {
		reclaimSharedPage(g, tk, pfn.Load())
	})
	if n := pendingSeen.Load(); n != procs {
		t.Fatalf("%d of %d mms had a batched flush pending after reclaim", n, procs)
	}
	if n := g.k.Stats.Unmapped.Load(); n != 1 {
		t.Fatalf("%d folios unmapped, want 1", n)
	}
	if n := g.k.Stats.BatchedPending.Load(); n != procs {
		t.Fatalf("flush_tlb_batched_pending flushed %d times, want %d", n, procs)
	}
}

// Seed 000's race with 8 processes sharing a page: each mprotects it
// read-only while reclaim's deferred flushes for it are in flight, then
// writes. dsb-only lets a write through a read-only mapping; flush-mm
// never does.
func TestSharedPageRace(t *testing.T) {
	const procs = 8
	run := func(policy string, seed uint64) uint64 {
		g := newRig(t, procs+1, policy, "fullmm", seed)
		var pfn atomic.Uint64
		var started atomic.Bool
		var q sched.WaitQueue
		sharedProcs(t, g, procs, true, func(tk *mm.Task, va uint64, reclaimed func()) {
			pte, _ := tk.MM().Tables().Lookup(va)
			pfn.Store(pte.PFN())
			q.Wait(tk.Thread(), "reclaim started", started.Load)
			must(t, tk.Mprotect(va, page, mm.ProtRead))
			var segv *mm.SegvError
			if err := tk.Store(va, 99); err != nil && !errors.As(err, &segv) {
				t.Error(err)
			}
			reclaimed()
		}, func(tk *mm.Task) {
			started.Store(true)
			q.Notify()
			reclaimSharedPage(g, tk, pfn.Load())
		})
		return g.k.Oracle().Count(mm.ProtectionViolation)
	}
	for _, tc := range []struct {
		policy string
		seeds  uint64
		race   bool
	}{
		{"dsb-only", 60, true},
		{"flush-mm", 60, false},
		{"range", 60, false},
		{"no-batch", 30, false},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			bad := 0
			for s := uint64(1); s <= tc.seeds; s++ {
				if run(tc.policy, s) > 0 {
					bad++
				}
			}
			t.Logf("%d of %d seeds let a write through a read-only mapping", bad, tc.seeds)
			if tc.race != (bad > 0) {
				t.Fatalf("race found in %d of %d seeds, want race=%v", bad, tc.seeds, tc.race)
			}
		})
	}
}

// munmap zaps with the mmap lock downgraded to read, so a concurrent
// MADV_DONTNEED elsewhere in the mm runs at the same time: their gathers
// nest (mm_tlb_flush_nested), which a write-held lock would forbid.
func TestMunmapDowngrade(t *testing.T) {
	nested := 0
	for seed := uint64(1); seed <= 30; seed++ {
		g := newRigWith(t, 2, "flush-mm", "fullmm", seed, func(c *mmu.Config) { c.Sched.ChangeEvery = 16 })
		space, err := g.k.NewMM()
		must(t, err)
		a := g.k.NewTask(g.m.CPU(0), space, "munmap")
		b := g.k.NewTask(g.m.CPU(1), space, "madvise")
		var mapped, unmapped atomic.Bool
		var q sched.WaitQueue
		var x, y uint64
		err = g.m.Run(func(c *mmu.CPU) {
			if c.ID() == 0 {
				x, err = a.Mmap(64*page, mm.ProtRead|mm.ProtWrite, false)
				must(t, err)
				y, err = a.Mmap(64*page, mm.ProtRead|mm.ProtWrite, false)
				must(t, err)
				for i := uint64(0); i < 64; i++ {
					must(t, a.Store(x+i*page, i))
					must(t, a.Store(y+i*page, i))
				}
				mapped.Store(true)
				q.Notify()
				must(t, a.Munmap(x, 64*page))
				unmapped.Store(true)
				return
			}
			q.Wait(b.Thread(), "mapped", mapped.Load)
			for !unmapped.Load() {
				must(t, b.Madvise(y, 64*page, mm.MadvDontneed))
			}
		})
		must(t, err)
		if g.k.Stats.NestedFlushes.Load() > 0 {
			nested++
		}
	}
	if nested == 0 {
		t.Fatal("munmap's gather never overlapped a concurrent madvise: is the lock still held for writing?")
	}
	t.Logf("gathers nested in %d of 30 seeds", nested)
}

// Every swap slot in use is referenced by a swap PTE (or, for shmem, a
// file): swapping a working set larger than memory in and out, with and
// without fork, leaks none.
func TestSwapSlotsBalance(t *testing.T) {
	for _, fork := range []bool{false, true} {
		g := newRig(t, 2, "flush-mm", "fullmm", 3)
		const pages = 1500 // memory is 1024 frames
		var child *mm.MM
		g.single(t, func(tk *mm.Task) {
			va, err := tk.Mmap(pages*page, mm.ProtRead|mm.ProtWrite, false)
			must(t, err)
			for i := uint64(0); i < pages; i++ {
				must(t, tk.Store(va+i*page, i))
			}
			if fork {
				child, err = tk.Fork()
				must(t, err)
			}
			for i := uint64(0); i < 3*pages; i++ {
				p := (i * 7919) % pages
				if v, err := tk.Load(va + p*page); err != nil || v != p {
					t.Fatalf("page %d reads %d, %v", p, v, err)
				}
			}
			swapPTEs := 0
			for _, space := range []*mm.MM{tk.MM(), child} {
				if space == nil {
					continue
				}
				for i := uint64(0); i < pages; i++ {
					if s, ok := space.Tables().SlotOf(va + i*page); ok && !s.Load().Valid() && s.Load()&4 != 0 {
						swapPTEs++ // a swap entry (mm's software encoding)
					}
				}
			}
			t.Logf("fork=%v: %d swap entries, %d slots in use", fork, swapPTEs, g.k.SwapUsed())
			if child != nil {
				// A slot shared by both processes is one slot.
				if g.k.SwapUsed() > swapPTEs {
					t.Errorf("%d slots in use for %d swap entries", g.k.SwapUsed(), swapPTEs)
				}
			} else if g.k.SwapUsed() != swapPTEs {
				t.Errorf("%d slots in use for %d swap entries", g.k.SwapUsed(), swapPTEs)
			}
		})
	}
}

// The same with two threads of the process and kswapd racing them.
func TestSwapSlotsBalanceThreads(t *testing.T) {
	g := newRig(t, 3, "flush-mm", "fullmm", 5)
	const pages = 1500
	space, err := g.k.NewMM()
	must(t, err)
	tasks := []*mm.Task{g.k.NewTask(g.m.CPU(0), space, "a"), g.k.NewTask(g.m.CPU(1), space, "b")}
	kswapd := g.k.NewTask(g.m.CPU(2), nil, "kswapd")
	var va uint64
	var mapped atomic.Bool
	var running atomic.Int32
	running.Store(2)
	var q sched.WaitQueue
	err = g.m.Run(func(c *mmu.CPU) {
		if c.ID() == 2 {
			g.r.Kswapd(kswapd)
			return
		}
		tk := tasks[c.ID()]
		defer func() {
			if running.Add(-1) == 0 {
				g.r.Stop()
			}
		}()
		if c.ID() == 0 {
			v, err := tk.Mmap(pages*page, mm.ProtRead|mm.ProtWrite, false)
			must(t, err)
			va = v
			mapped.Store(true)
			q.Notify()
		} else {
			q.Wait(tk.Thread(), "mapped", mapped.Load)
		}
		scratch, err := tk.Mmap(page, mm.ProtRead|mm.ProtWrite, false)
		must(t, err)
		for i := uint64(0); i < 4*pages; i++ {
			if i%64 == 63 { // calls that take PTLs: flush_tlb_batched_pending
				must(t, tk.Store(scratch, i))
				switch i / 64 % 3 {
				case 0:
					must(t, tk.Mprotect(scratch, page, mm.ProtRead))
					must(t, tk.Mprotect(scratch, page, mm.ProtRead|mm.ProtWrite))
				case 1:
					must(t, tk.Madvise(scratch, page, mm.MadvDontneed))
				case 2:
					must(t, tk.Munmap(scratch, page))
					scratch, err = tk.Mmap(page, mm.ProtRead|mm.ProtWrite, false)
					must(t, err)
				}
			}
			p := (i*7919 + uint64(c.ID())*13) % pages
			if i%2 == 0 {
				must(t, tk.Store(va+p*page+uint64(c.ID())*8, i))
			} else if _, err := tk.Load(va + p*page); err != nil {
				t.Fatal(err)
			}
		}
	})
	must(t, err)
	swapPTEs, resident := 0, 0
	for i := uint64(0); i < pages; i++ {
		if s, ok := space.Tables().SlotOf(va + i*page); ok && !s.Load().Valid() && s.Load()&4 != 0 {
			swapPTEs++
		} else if ok && s.Load().Valid() {
			resident++
		}
	}
	if g.k.SwapUsed() != swapPTEs {
		t.Fatalf("%d slots in use for %d swap entries", g.k.SwapUsed(), swapPTEs)
	}
	// Frames: the free ones, the resident pages, and a few page tables.
	if held := g.m.Phys().Frames() - 1 - g.m.Phys().FreeFrames() - resident; held > 16 {
		t.Fatalf("%d frames held by nothing but page tables (%d resident, %d free)", held, resident, g.m.Phys().FreeFrames())
	}
}
