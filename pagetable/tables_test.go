package pagetable

import (
	"errors"
	"testing"
)

func TestNewErrors(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	mem := newTestMem()
	mem.failAt = 1
	if _, err := New(mem); !errors.Is(err, errNoMemory) {
		t.Errorf("New with failing allocator: %v, want errNoMemory", err)
	}
}

func TestBadVA(t *testing.T) {
	tbl, mem := newTables(t)
	for _, va := range []uint64{MaxVA, MaxVA + PageSize, ^uint64(0) &^ (PageSize - 1)} {
		if _, err := tbl.Ensure(va); !errors.Is(err, ErrVA) {
			t.Errorf("Ensure(%#x) = %v, want ErrVA", va, err)
		}
		if err := tbl.Map(va, NewPage(1, 0)); !errors.Is(err, ErrVA) {
			t.Errorf("Map(%#x) = %v, want ErrVA", va, err)
		}
		if _, ok := tbl.Lookup(va); ok {
			t.Errorf("Lookup(%#x) found something", va)
		}
		if _, ok := tbl.SlotOf(va); ok {
			t.Errorf("SlotOf(%#x) found something", va)
		}
		if _, ok := tbl.Unmap(va); ok {
			t.Errorf("Unmap(%#x) succeeded", va)
		}
		if tbl.CompareAndSwap(va, 0, NewPage(1, 0)) {
			t.Errorf("CompareAndSwap(%#x) succeeded", va)
		}
	}
	// The top page is fine, and a range beyond 2^48 is clamped.
	top := MaxVA - PageSize
	if err := tbl.Map(top, NewPage(1, 0)); err != nil {
		t.Fatalf("Map(top page): %v", err)
	}
	var got []uint64
	tbl.VisitRange(top, ^uint64(0), VisitorFunc(func(va uint64, _ Slot) bool { got = append(got, va); return true }))
	if len(got) != 1 || got[0] != top {
		t.Errorf("VisitRange(top, max) = %#x, want [%#x]", got, top)
	}
	tbl.Unmap(top)
	if n := tbl.FreeEmpty(0, ^uint64(0), nil); n != 3 || mem.live() != 1 {
		t.Errorf("FreeEmpty(0, max) = %d, live %d; want 3, 1", n, mem.live())
	}
	mem.checkMisuse(t)
}

func TestMapUnmapCAS(t *testing.T) {
	tbl, mem := newTables(t)
	const va = 0x7f00_0000_3000
	p := NewPage(0x55, PTEAF|PTEUser|PTERdonly|PTEDBM)
	if _, ok := tbl.SlotOf(va); ok {
		t.Error("SlotOf before Map found a slot")
	}
	if tbl.CompareAndSwap(va, 0, p) {
		t.Error("CompareAndSwap without tables succeeded")
	}
	if err := tbl.Map(va, p); err != nil {
		t.Fatal(err)
	}
	if mem.live() != 4 {
		t.Errorf("live tables = %d, want 4", mem.live())
	}
	if err := tbl.Map(va, p); !errors.Is(err, ErrMapped) {
		t.Errorf("second Map = %v, want ErrMapped", err)
	}
	if got, ok := tbl.Lookup(va); !ok || got != p {
		t.Errorf("Lookup = %v %v, want %v", got, ok, p)
	}
	s, _ := tbl.SlotOf(va)
	if e, _ := tbl.Ensure(va); e != s || SlotAt(mem, s.Addr) != s {
		t.Errorf("Ensure/SlotAt disagree with SlotOf: %+v %+v %+v", e, SlotAt(mem, s.Addr), s)
	}
	if tbl.CompareAndSwap(va, p.MkOld(), p.MkDirty()) {
		t.Error("CompareAndSwap with a stale old succeeded")
	}
	if !tbl.CompareAndSwap(va, p, p.MkDirty()) {
		t.Error("CompareAndSwap failed")
	}
	if old, ok := tbl.Unmap(va); !ok || old != p.MkDirty() {
		t.Errorf("Unmap = %v %v, want %v", old, ok, p.MkDirty())
	}
	if old, ok := tbl.Unmap(va); ok || old != 0 {
		t.Errorf("second Unmap = %v %v", old, ok)
	}
	// An invalid non-zero descriptor is left by Unmap and replaced by Map.
	s.Store(PTE(0x77 << PageShift))
	if old, ok := tbl.Unmap(va); ok || old != PTE(0x77<<PageShift) || s.Load() != old {
		t.Errorf("Unmap of invalid = %v %v, slot %v", old, ok, s.Load())
	}
	if err := tbl.Map(va, p); err != nil || s.Load() != p {
		t.Errorf("Map over invalid = %v, slot %v", err, s.Load())
	}
}

func TestEnsureErrors(t *testing.T) {
	tbl, mem := newTables(t)
	mem.failAt = mem.attempts + 2 // the level-2 table
	if err := tbl.Map(0x4000_0000, NewPage(1, 0)); !errors.Is(err, errNoMemory) {
		t.Fatalf("Map with failing allocator = %v", err)
	}
	if mem.live() != 2 || reachable(t, tbl) != 2 {
		t.Errorf("after failure: live %d reachable %d, want 2 (root, L1)", mem.live(), reachable(t, tbl))
	}
	if n := tbl.FreeEmpty(0, MaxVA, nil); n != 1 || mem.live() != 1 {
		t.Errorf("FreeEmpty = %d, live %d; want 1, 1", n, mem.live())
	}

	// A level-1 block is in the way of a level-3 slot.
	const blockVA = 0x80_4000_0000
	storeAt(t, tbl, blockVA, 1, PTEValid|PTEAF|0x40000<<PageShift)
	live := mem.live()
	if _, err := tbl.Ensure(blockVA + 0x1234000); !errors.Is(err, ErrNotTable) {
		t.Errorf("Ensure under a block = %v, want ErrNotTable", err)
	}
	if err := tbl.Map(blockVA, NewPage(1, 0)); !errors.Is(err, ErrNotTable) {
		t.Errorf("Map under a block = %v, want ErrNotTable", err)
	}
	if _, ok := tbl.SlotOf(blockVA); ok {
		t.Error("SlotOf under a block found a slot")
	}
	if _, ok := tbl.Lookup(blockVA); ok {
		t.Error("Lookup returned a block")
	}
	if mem.live() != live {
		t.Errorf("failed Ensure leaked tables: %d -> %d", live, mem.live())
	}
	mem.checkMisuse(t)
}

func TestZeroSlot(t *testing.T) {
	var s Slot
	s.Store(PTEValid)
	if !s.IsZero() || s.Load() != 0 || s.Swap(PTEValid) != 0 || s.CompareAndSwap(0, PTEValid) {
		t.Error("zero Slot misbehaves")
	}
	mem := newTestMem()
	pfn, _ := mem.AllocTable()
	for _, addr := range []uint64{pfn<<PageShift + 4, (pfn + 1) << PageShift} {
		if !SlotAt(mem, addr).IsZero() {
			t.Errorf("SlotAt(%#x) not zero", addr)
		}
	}
	if !SlotAt(nil, 0).IsZero() {
		t.Error("SlotAt(nil) not zero")
	}
	s = SlotAt(mem, pfn<<PageShift+8*511)
	if s.Swap(PTEValid) != 0 || mem.Words(pfn)[511] != uint64(PTEValid) {
		t.Error("SlotAt(last word) does not name it")
	}
	var lt LeafTable
	if !lt.Slot(0).IsZero() || lt.Linked() {
		t.Error("zero LeafTable misbehaves")
	}
}

func TestLeafTablesAndVisit(t *testing.T) {
	tbl, mem := newTables(t)
	const mib2 = 1 << 21
	base := uint64(0x10_0000_0000)
	vas := []uint64{base, base + 0x5000, base + mib2 + 0x1ff000, base + 3*mib2, base + 1<<39}
	for i, va := range vas {
		if err := tbl.Map(va, NewPage(uint64(i+1), 0)); err != nil {
			t.Fatal(err)
		}
	}
	tbl.Map(base+0x6000, 0) // a zero slot in an existing table is skipped

	type visit struct {
		base   uint64
		lo, hi int
	}
	var got []visit
	tbl.LeafTables(base+0x3000, base+3*mib2+0x1000, func(lt LeafTable, lo, hi int) bool {
		if !lt.Linked() || lt.Parent.Load() != NewTableDesc(lt.PFN) || lt.Slot(lo).Addr != lt.PFN<<PageShift+uint64(lo)*8 {
			t.Errorf("LeafTable %+v: not linked or bad slot", lt)
		}
		got = append(got, visit{lt.Base, lo, hi})
		return true
	})
	want := []visit{{base, 3, 512}, {base + mib2, 0, 512}, {base + 3*mib2, 0, 1}}
	if len(got) != len(want) {
		t.Fatalf("LeafTables = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("LeafTables[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}

	var vis []uint64
	tbl.VisitRange(0, MaxVA, VisitorFunc(func(va uint64, s Slot) bool {
		vis = append(vis, va)
		return len(vis) < 3
	}))
	if len(vis) != 3 || vis[0] != vas[0] || vis[1] != vas[1] || vis[2] != vas[2] {
		t.Errorf("VisitRange stopping after 3 = %#x", vis)
	}
	n := 0
	tbl.LeafTables(0, MaxVA, func(LeafTable, int, int) bool { n++; return false })
	if n != 1 {
		t.Errorf("LeafTables did not stop: %d calls", n)
	}
	tbl.VisitRange(base+PageSize, base+PageSize, VisitorFunc(func(uint64, Slot) bool {
		t.Error("empty range visited")
		return true
	}))
	mem.checkMisuse(t)
}

func TestFreeEmpty(t *testing.T) {
	tbl, mem := newTables(t)
	const mib2, gib = uint64(1) << 21, uint64(1) << 30
	base := uint64(0x40_0000_0000) // 1 GiB aligned, L1 index 256
	for _, va := range []uint64{base, base + mib2, base + gib} {
		if err := tbl.Map(va, NewPage(1, 0)); err != nil {
			t.Fatal(err)
		}
	}
	// root, L1, 2 L2, 3 L3
	if mem.live() != 7 {
		t.Fatalf("live = %d, want 7", mem.live())
	}
	if n := tbl.FreeEmpty(0, MaxVA, nil); n != 0 {
		t.Errorf("FreeEmpty with everything mapped unlinked %d", n)
	}
	tbl.Unmap(base)
	tbl.Unmap(base + mib2)
	// A range covering only part of the empty L3 table at base frees nothing.
	if n := tbl.FreeEmpty(base, base+mib2-PageSize, nil); n != 0 {
		t.Errorf("FreeEmpty of a partial table unlinked %d", n)
	}
	// Covering the first L3 table frees it, not its parent.
	if n := tbl.FreeEmpty(base, base+mib2, nil); n != 1 || mem.live() != 6 {
		t.Errorf("FreeEmpty(one L3) = %d, live %d; want 1, 6", n, mem.live())
	}
	// Covering the whole GiB frees the other L3 and then the empty L2,
	// child first, each unlinked before the callback.
	type freed struct {
		pfn   uint64
		level int
	}
	var got []freed
	l2 := tbl.Walk(base + mib2).Tables[2]
	l3 := tbl.Walk(base + mib2).Tables[3]
	n := tbl.FreeEmpty(base, base+gib, func(pfn uint64, level int, _ uint64) {
		if w := tbl.Walk(base + mib2); w.Reads > level || w.Tables[level] == pfn {
			t.Errorf("free(%#x, %d) called while still linked: %+v", pfn, level, w)
		}
		got = append(got, freed{pfn, level})
	})
	if n != 2 || len(got) != 2 || got[0] != (freed{l3, 3}) || got[1] != (freed{l2, 2}) {
		t.Errorf("FreeEmpty = %d, freed %+v; want 2: [{%#x 3} {%#x 2}]", n, got, l3, l2)
	}
	for _, f := range got {
		mem.FreeTable(f.pfn) // deferred free, as after a TLB flush
	}
	if mem.live() != 4 || reachable(t, tbl) != 4 {
		t.Errorf("live %d reachable %d, want 4", mem.live(), reachable(t, tbl))
	}
	tbl.Unmap(base + gib)
	if n := tbl.FreeEmpty(0, MaxVA, nil); n != 3 || mem.live() != 1 {
		t.Errorf("FreeEmpty(all) = %d, live %d; want 3, 1 (the root stays)", n, mem.live())
	}
	if n := tbl.FreeEmpty(5, 5, nil); n != 0 {
		t.Errorf("FreeEmpty(empty range) = %d", n)
	}
	mem.checkMisuse(t)
}
