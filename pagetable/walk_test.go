package pagetable

import "testing"

func newTables(t testing.TB) (*Tables, *testMem) {
	t.Helper()
	mem := newTestMem()
	tbl, err := New(mem)
	if err != nil {
		t.Fatal(err)
	}
	return tbl, mem
}

// storeAt stores p as va's descriptor at level, allocating the tables above.
func storeAt(t testing.TB, tbl *Tables, va uint64, level int, p PTE) {
	t.Helper()
	s, err := tbl.ensure(va, level)
	if err != nil {
		t.Fatal(err)
	}
	s.Store(p)
}

func TestWalk(t *testing.T) {
	const (
		va     = uint64(0x0000_7f12_3456_7000) + 0x123
		gib    = uint64(1) << 30
		mib2   = uint64(1) << 21
		blkPFN = uint64(0x40000) // 1 GiB aligned frame
	)
	// A neighbour shares va's tables down to (and including) level
	// `level`, and differs at that level's index.
	neighbour := func(level int) uint64 { return va ^ LevelSize(level) }
	tests := []struct {
		name   string
		setup  func(t *testing.T, tbl *Tables)
		va     uint64
		ok     bool
		level  int
		reads  int
		pte    PTE
		phys   uint64
		noSlot bool
	}{
		{name: "page", va: va, ok: true, level: 3, reads: 4, pte: NewPage(0x99, PTEAF), phys: 0x99123,
			setup: func(t *testing.T, tbl *Tables) { storeAt(t, tbl, va, 3, NewPage(0x99, PTEAF)) }},
		{name: "L1 block", va: va, ok: true, level: 1, reads: 2, pte: PTEValid | PTEAF | PTE(blkPFN<<12),
			phys:  blkPFN<<12 | va&(gib-1),
			setup: func(t *testing.T, tbl *Tables) { storeAt(t, tbl, va, 1, PTEValid|PTEAF|PTE(blkPFN<<12)) }},
		{name: "L2 block", va: va, ok: true, level: 2, reads: 3, pte: PTEValid | PTE(blkPFN<<12),
			phys:  blkPFN<<12 | va&(mib2-1),
			setup: func(t *testing.T, tbl *Tables) { storeAt(t, tbl, va, 2, PTEValid|PTE(blkPFN<<12)) }},
		{name: "L0 block faults", va: va, level: 0, reads: 1, pte: PTEValid | PTE(blkPFN<<12),
			setup: func(t *testing.T, tbl *Tables) { storeAt(t, tbl, va, 0, PTEValid|PTE(blkPFN<<12)) }},
		{name: "L3 reserved (bit1=0) faults", va: va, level: 3, reads: 4, pte: PTEValid | PTEAF | 0x99<<12,
			setup: func(t *testing.T, tbl *Tables) { storeAt(t, tbl, va, 3, PTEValid|PTEAF|0x99<<12) }},
		{name: "invalid L0 (empty root)", va: va, level: 0, reads: 1, setup: func(*testing.T, *Tables) {}},
		{name: "invalid L1", va: va, level: 1, reads: 2,
			setup: func(t *testing.T, tbl *Tables) { storeAt(t, tbl, neighbour(1), 3, NewPage(1, 0)) }},
		{name: "invalid L2", va: va, level: 2, reads: 3,
			setup: func(t *testing.T, tbl *Tables) { storeAt(t, tbl, neighbour(2), 3, NewPage(1, 0)) }},
		{name: "invalid L3", va: va, level: 3, reads: 4,
			setup: func(t *testing.T, tbl *Tables) { storeAt(t, tbl, neighbour(3), 3, NewPage(1, 0)) }},
		{name: "invalid non-zero L3", va: va, level: 3, reads: 4, pte: 0x99<<12 | PTETable,
			setup: func(t *testing.T, tbl *Tables) { storeAt(t, tbl, va, 3, 0x99<<12|PTETable) }},
		{name: "invalid table-bit-only L1", va: va, level: 1, reads: 2, pte: PTETable,
			setup: func(t *testing.T, tbl *Tables) { storeAt(t, tbl, va, 1, PTETable) }},
		{name: "va beyond 48 bits", va: MaxVA | va, level: 0, reads: 0, noSlot: true,
			setup: func(t *testing.T, tbl *Tables) { storeAt(t, tbl, va, 3, NewPage(0x99, 0)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl, mem := newTables(t)
			tt.setup(t, tbl)
			w := tbl.Walk(tt.va)
			if w.OK != tt.ok || w.Level != tt.level || w.Reads != tt.reads || w.PTE != tt.pte {
				t.Fatalf("Walk = {OK %v Level %d Reads %d PTE %v}, want {%v %d %d %v}",
					w.OK, w.Level, w.Reads, w.PTE, tt.ok, tt.level, tt.reads, tt.pte)
			}
			if got := w.PhysAddr(tt.va); got != tt.phys {
				t.Errorf("PhysAddr = %#x, want %#x", got, tt.phys)
			}
			if tt.noSlot {
				if !w.Slot.IsZero() {
					t.Errorf("Slot = %+v, want zero", w.Slot)
				}
				return
			}
			// The reported slot and tables are where the walk read.
			if w.Tables[0] != tbl.Root() {
				t.Errorf("Tables[0] = %#x, want root %#x", w.Tables[0], tbl.Root())
			}
			wantAddr := w.Tables[w.Level]<<PageShift + uint64(Index(tt.va, w.Level))*8
			if w.Slot.Addr != wantAddr || w.Slot.Load() != w.PTE {
				t.Errorf("Slot at %#x holding %v, want %#x holding %v", w.Slot.Addr, w.Slot.Load(), wantAddr, w.PTE)
			}
			if s := SlotAt(mem, w.Slot.Addr); s != w.Slot {
				t.Errorf("SlotAt(%#x) = %+v, want %+v", w.Slot.Addr, s, w.Slot)
			}
			for l := 1; l <= w.Level; l++ {
				if parent := SlotAt(mem, w.Tables[l-1]<<PageShift+uint64(Index(tt.va, l-1))*8).Load(); parent != NewTableDesc(w.Tables[l]) {
					t.Errorf("level %d table %#x not linked from level %d: %v", l, w.Tables[l], l-1, parent)
				}
			}
			// Resuming from any table on the path (a walk-cache hit)
			// reaches the same descriptor with fewer reads.
			for l := 1; l <= w.Level; l++ {
				r := WalkFrom(mem, w.Tables[l], l, tt.va)
				if r.OK != w.OK || r.Level != w.Level || r.PTE != w.PTE || r.Reads != w.Reads-l || r.Slot != w.Slot {
					t.Errorf("WalkFrom(level %d) = %+v, want same leaf as %+v in %d reads", l, r, w, w.Reads-l)
				}
			}
		})
	}
}

func TestWalkFromBadArgs(t *testing.T) {
	tbl, mem := newTables(t)
	if err := tbl.Map(0x1000, NewPage(5, 0)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		mem   Memory
		table uint64
		level int
	}{
		{"nil memory", nil, tbl.Root(), 0},
		{"level -1", mem, tbl.Root(), -1},
		{"level 4", mem, tbl.Root(), 4},
		{"missing frame", mem, 0x1, 0},
	} {
		w := WalkFrom(tt.mem, tt.table, tt.level, 0x1000)
		if w.OK || w.Reads != 0 || w.Level != tt.level || !w.Slot.IsZero() || w.PTE != 0 {
			t.Errorf("%s: WalkFrom = %+v, want a fault with no reads", tt.name, w)
		}
	}
}

func TestIndex(t *testing.T) {
	va := uint64(0b101010101_110011001_000111000_111111111_101010101010)
	for l, want := range []int{0b101010101, 0b110011001, 0b000111000, 0b111111111} {
		if got := Index(va, l); got != want {
			t.Errorf("Index(level %d) = %#b, want %#b", l, got, want)
		}
	}
	if Index(va, -1) != -1 || Index(va, 4) != -1 || LevelShift(4) != 0 || LevelSize(-1) != 0 {
		t.Error("bad level not rejected")
	}
	for l, want := range []uint64{1 << 39, 1 << 30, 1 << 21, 1 << 12} {
		if LevelSize(l) != want {
			t.Errorf("LevelSize(%d) = %#x, want %#x", l, LevelSize(l), want)
		}
	}
}
