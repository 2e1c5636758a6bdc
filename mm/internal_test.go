package mm

import (
	"testing"

	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/pagetable"
	"github.com/mmubench/mmubench/sched"
)

// deferAll is a batch policy that defers every flush and records the pages.
type deferAll struct{ added []uint64 }

func (*deferAll) Name() string                           { return "defer-all" }
func (*deferAll) ShouldDefer(*MM) bool                   { return true }
func (d *deferAll) AddPending(_ *Task, _ *MM, va uint64) { d.added = append(d.added, va) }
func (*deferAll) Flush(*Task)                            {}
func (*deferAll) FlushPending(*Task, *MM)                {}

type noNested struct{}

func (noNested) Name() string                   { return "none" }
func (noNested) FinishNested(*Task, *MMUGather) {}

// internalRig is a one-CPU det machine and kernel with a task in a fresh mm.
func internalRig(t *testing.T) (*Kernel, *Task, *deferAll) {
	t.Helper()
	cfg := mmu.DefaultConfig()
	cfg.CPUs, cfg.Frames = 1, 256
	cfg.Sched = sched.Config{Mode: sched.Det, Seed: 1}
	m, err := mmu.NewMachine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	batch := &deferAll{}
	k, err := New(m, Config{Batch: batch, Nested: noNested{}})
	if err != nil {
		t.Fatal(err)
	}
	space, err := k.NewMM()
	if err != nil {
		t.Fatal(err)
	}
	return k, k.NewTask(m.CPU(0), space, "test"), batch
}

// arm64's pte_accessible: while a gather on the mm has its flush pending
// (a PROT_NONE change not yet flushed, say), a present but invalid PTE may
// still be cached valid, so reclaim must defer a flush for it.
func TestPTEAccessibleWithFlushPending(t *testing.T) {
	protNone := pagetable.NewPage(7, userPage)&^pagetable.PTEValid | pteProtNone
	for _, tc := range []struct {
		name      string
		pte       pagetable.PTE
		gathering bool
		want      bool
	}{
		{"valid", pagetable.NewPage(7, userPage), false, true},
		{"prot-none", protNone, false, false},
		{"prot-none-flush-pending", protNone, true, true},
		{"none-flush-pending", 0, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, tk, batch := internalRig(t)
			if tc.gathering {
				tk.mm.tlbFlushPending.Add(1)
			}
			tk.setTLBUBCFlushPending(tk.mm, tc.pte, 0x1000)
			if got := tk.UBC.FlushRequired; got != tc.want || (len(batch.added) == 1) != tc.want {
				t.Fatalf("flush deferred = %v (pages %v), want %v", got, batch.added, tc.want)
			}
		})
	}
}

// The oracle checks every word of a page, not only the last one stored,
// and in det mode orders accesses that no kernel event separates.
func TestOracleWordsAndTies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stores [][2]uint64 // (va, value)
		load   uint64
		got    uint64
		bad    bool
	}{
		{"other-word-lost", [][2]uint64{{0x1000, 1}, {0x1008, 2}}, 0x1000, 0, true},
		{"other-word-kept", [][2]uint64{{0x1000, 1}, {0x1008, 2}}, 0x1000, 1, false},
		{"last-word-lost", [][2]uint64{{0x1000, 1}, {0x1008, 2}}, 0x1008, 0, true},
		{"tied-store-then-load", [][2]uint64{{0x2000, 5}}, 0x2000, 6, true},
		{"never-stored", nil, 0x3000, 9, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, tk, _ := internalRig(t)
			o := k.oracle
			for _, s := range tc.stores {
				o.store(tk, s[0], s[1], k.accessStamp())
			}
			o.load(tk, tc.load, tc.got, k.accessStamp())
			if bad := o.Count(LostWrite) != 0; bad != tc.bad {
				t.Fatalf("lost write reported = %v, want %v (%v)", bad, tc.bad, o.First(LostWrite))
			}
		})
	}
}

// arrivesDuringFlush is a policy whose flush sees a new reclaim batch
// arrive while it runs (another reclaimer's set_tlb_ubc_flush_pending).
type arrivesDuringFlush struct {
	deferAll
	mm *MM
}

func (a *arrivesDuringFlush) FlushPending(*Task, *MM) { IncTLBFlushBatched(&a.mm.tlbFlushBatched) }

// flush_tlb_batched_pending marks flushed only the batches it saw: one that
// lands during its flush stays pending for the next caller (the
// compare-and-swap; a plain store would lose it).
func TestBatchArrivingDuringFlushStaysPending(t *testing.T) {
	k, tk, _ := internalRig(t)
	p := &arrivesDuringFlush{mm: tk.mm}
	k.batch = p
	IncTLBFlushBatched(&tk.mm.tlbFlushBatched) // one batch pending
	tk.FlushTLBBatchedPending(tk.mm)
	if pending, flushed := BatchedPending(tk.mm.tlbFlushBatched.Load()); pending == flushed {
		t.Fatalf("the batch that arrived during the flush was marked flushed (pending %d, flushed %d)", pending, flushed)
	}
	// Without a new arrival the next call catches up.
	k.batch = &deferAll{}
	tk.FlushTLBBatchedPending(tk.mm)
	if pending, flushed := BatchedPending(tk.mm.tlbFlushBatched.Load()); pending != flushed {
		t.Fatalf("after a quiet flush: pending %d, flushed %d", pending, flushed)
	}
}
