package mm

import (
	"errors"
	"testing"

	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/pagetable"
	"github.com/mmubench/mmubench/sched"
)

// deferSilently is a batch policy that defers every flush and issues no
// TLBI until flush_tlb_batched_pending, which flushes the mm: so a
// translation reclaim cleared stays cached exactly until somebody calls
// flush_tlb_batched_pending, whatever the schedule.
type deferSilently struct{ deferAll }

func (*deferSilently) AddPending(*Task, *MM, uint64) {}
func (*deferSilently) FlushPending(t *Task, mm *MM)  { t.FlushTLBMM(mm) }

// mremapRig runs body on the one CPU of a det machine, as a task of a
// fresh mm, with the deferSilently policy.
func mremapRig(t *testing.T, revert bool, body func(k *Kernel, tk *Task)) *Kernel {
	t.Helper()
	cfg := mmu.DefaultConfig()
	cfg.CPUs, cfg.Frames = 1, 256
	cfg.Sched = sched.Config{Mode: sched.Det, Seed: 1}
	m, err := mmu.NewMachine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	k, err := New(m, Config{Batch: &deferSilently{}, Nested: noNested{}})
	if err != nil {
		t.Fatal(err)
	}
	if revert {
		k.Revert(FixMremapBatchedPending)
	}
	space, err := k.NewMM()
	if err != nil {
		t.Fatal(err)
	}
	tk := k.NewTask(m.CPU(0), space, "test")
	if err := m.Run(func(c *mmu.CPU) { body(k, tk) }); err != nil {
		t.Fatal(err)
	}
	return k
}

const testPage = pagetable.PageSize

// mremap moves the PTEs: the data follows (the same frames, a swapped-out
// page's swap entry too), and the old range faults — or, with
// MREMAP_DONTUNMAP, reads as zero.
func TestMremapMovesPTEs(t *testing.T) {
	for _, tc := range []struct {
		name      string
		flags     MremapFlags
		fixed     bool // move to a chosen address
		newPages  uint64
		swapOut   bool // page 1 is swapped out before the move
		wantMoved bool
	}{
		{"fixed", MremapMaymove | MremapFixed, true, 4, false, true},
		{"fixed-swapped-out", MremapMaymove | MremapFixed, true, 4, true, true},
		{"dontunmap", MremapMaymove | MremapDontunmap, false, 4, true, true},
		{"grow-in-place", MremapMaymove, false, 6, false, false},
		{"shrink", 0, false, 2, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errs []error
			fail := func(err error) { errs = append(errs, err) }
			k := mremapRig(t, false, func(k *Kernel, tk *Task) {
				va, err := tk.Mmap(4*testPage, ProtRead|ProtWrite, false)
				if err != nil {
					fail(err)
					return
				}
				var pfns [4]uint64
				for i := uint64(0); i < 4; i++ {
					if err := tk.Store(va+i*testPage+8, 100+i); err != nil {
						fail(err)
						return
					}
					pte, _ := tk.mm.tables.Lookup(va + i*testPage)
					pfns[i] = pte.PFN()
				}
				if tc.swapOut {
					pfn := pfns[1]
					slot, err := k.AllocSwapSlot()
					if err != nil || !k.FolioGet(pfn) || !tk.TryToUnmap(pfn, slot, false) {
						fail(errors.New("could not unmap page 1"))
						return
					}
					k.Pageout(tk, pfn, slot)
					k.SwapCacheRelease(slot, pfn)
					k.FolioPut(tk, pfn)
				}
				target := va + 64<<20
				got, err := tk.Mremap(va, 4*testPage, tc.newPages*testPage, tc.flags, target)
				if err != nil {
					fail(err)
					return
				}
				if moved := got != va; moved != tc.wantMoved || (tc.fixed && got != target) {
					fail(errors.New("mremap returned the wrong address"))
					return
				}
				for i := uint64(0); i < min(4, tc.newPages); i++ {
					if v, err := tk.Load(got + i*testPage + 8); err != nil || v != 100+i {
						fail(errors.New("the data did not follow"))
						return
					}
					if pte, _ := tk.mm.tables.Lookup(got + i*testPage); !tc.swapOut && pte.PFN() != pfns[i] {
						fail(errors.New("the page was copied, not moved"))
					}
				}
				if !tc.wantMoved {
					return
				}
				v, err := tk.Load(va + 8)
				var segv *SegvError
				switch {
				case tc.flags&MremapDontunmap != 0 && (err != nil || v != 0):
					fail(errors.New("the old range of MREMAP_DONTUNMAP does not read as zero"))
				case tc.flags&MremapDontunmap == 0 && !errors.As(err, &segv):
					fail(errors.New("the old range still maps"))
				}
				if err := tk.Munmap(got, tc.newPages*testPage); err != nil {
					fail(err)
				}
			})
			for _, err := range errs {
				t.Error(err)
			}
			if n := k.oracle.Total(); n != 0 {
				t.Fatalf("%d violations: %v", n, k.oracle.FirstAny())
			}
		})
	}
}

// A PTE reclaim cleared with its flush deferred: move_ptes moves the swap
// entry and flushes nothing of its own. Without its
// flush_tlb_batched_pending the CPU keeps the old translation past
// mremap's return only when nothing unmaps the old range (MREMAP_DONTUNMAP:
// an unmap's zap_pte_range calls flush_tlb_batched_pending itself), and a
// store through it is then lost.
func TestMremapReclaimClearedPTE(t *testing.T) {
	for _, tc := range []struct {
		name      string
		revert    bool
		flags     MremapFlags
		wantStale bool
	}{
		{"fixed-dontunmap", false, MremapMaymove | MremapFixed | MremapDontunmap, false},
		{"reverted-dontunmap", true, MremapMaymove | MremapFixed | MremapDontunmap, true},
		{"reverted-unmapped", true, MremapMaymove | MremapFixed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var storeErr error
			k := mremapRig(t, tc.revert, func(k *Kernel, tk *Task) {
				va, err := tk.Mmap(testPage, ProtRead|ProtWrite, false)
				if err != nil {
					storeErr = err
					return
				}
				if storeErr = tk.Store(va, 1); storeErr != nil { // a writable, dirty translation
					return
				}
				pte, _ := tk.mm.tables.Lookup(va)
				pfn := pte.PFN()
				slot, _ := k.AllocSwapSlot()
				k.FolioGet(pfn)                // reclaim's isolation
				tk.TryToUnmap(pfn, slot, true) // TTU_BATCH_FLUSH: nothing flushed yet
				if _, err := tk.Mremap(va, testPage, testPage, tc.flags, va+64<<20); err != nil {
					storeErr = err
					return
				}
				if tc.flags&MremapDontunmap == 0 {
					return
				}
				storeErr = tk.Store(va, 2) // through the old translation if it survived
				tk.FlushTLBMM(tk.mm)       // reclaim's batch ends
				_, _ = tk.Load(va)         // 2, or a fresh zero page: the oracle judges
				k.SwapCacheRelease(slot, pfn)
				k.FolioPut(tk, pfn)
			})
			if storeErr != nil {
				t.Fatal(storeErr)
			}
			stale, lost := k.oracle.Count(StaleTLB), k.oracle.Count(LostWrite)
			if (stale > 0) != tc.wantStale || (lost > 0) != tc.wantStale {
				t.Fatalf("stale_tlb %d, lost writes %d; want them %v (%v)", stale, lost, tc.wantStale, k.oracle.FirstAny())
			}
		})
	}
}
