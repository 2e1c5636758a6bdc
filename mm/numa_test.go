package mm

import (
	"testing"

	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/pagetable"
)

// runOn runs body as the task of internalRig's CPU 0 inside a machine run.
func runOn(t *testing.T, k *Kernel, body func()) {
	t.Helper()
	if err := k.m.Run(func(c *mmu.CPU) {
		if c.ID() == 0 {
			body()
		}
	}); err != nil {
		t.Fatal(err)
	}
}

func tlbis(c *mmu.CPU) uint64 {
	var n uint64
	for _, v := range c.Counters().TLBI {
		n += v
	}
	return n
}

// change_prot_numa makes the present PTEs PROT_NONE with its flush done
// and mm->tlb_flush_pending back to zero; the hinting fault then migrates
// a misplaced folio (data copied, old frame freed, a new PTE on the copy)
// or, for a folio already on the faulting CPU's node, maps it again in
// place.
func TestNumaHintingFaultMigrates(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cpuNode int
		migrate bool
	}{
		{"misplaced", 1, true},
		{"local", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, tk, _ := internalRig(t)
			if err := k.SetCPUNode(0, tc.cpuNode); err != nil {
				t.Fatal(err)
			}
			runOn(t, k, func() {
				va, err := tk.Mmap(2*pagetable.PageSize, ProtRead|ProtWrite, false)
				if err != nil {
					t.Fatal(err)
				}
				for i, v := range []uint64{0x11, 0x22} { // two words of the first page, one of the second
					if err := tk.Store(va+uint64(i)*8, v); err != nil {
						t.Fatal(err)
					}
				}
				if err := tk.Store(va+pagetable.PageSize, 0x33); err != nil {
					t.Fatal(err)
				}
				old, _ := tk.mm.tables.Lookup(va)
				n, err := tk.TaskNumaWork(va, va+2*pagetable.PageSize)
				if err != nil || n != 2 {
					t.Fatalf("task_numa_work: %d PTEs, %v; want 2", n, err)
				}
				slot, _ := tk.mm.tables.SlotOf(va)
				if pte := slot.Load(); !isProtNone(pte) || pte.PFN() != old.PFN() || !pte.SWDirty() {
					t.Fatalf("after the scan the PTE is %v, want PROT_NONE, dirty, on pfn %#x", pte, old.PFN())
				}
				if p := tk.mm.TLBFlushPending(); p != 0 {
					t.Fatalf("tlb_flush_pending %d after change_prot_numa", p)
				}
				if _, ok := tk.cpu.Probe(va); ok {
					t.Fatal("the scan's flush left the translation cached")
				}
				got, err := tk.Load(va + 8) // the hinting fault
				if err != nil || got != 0x22 {
					t.Fatalf("load after the hinting fault: %#x, %v; want 0x22", got, err)
				}
				pte := slot.Load()
				if !pte.Valid() || !pte.SWDirty() {
					t.Fatalf("after the fault the PTE is %v, want valid and dirty", pte)
				}
				_, _, migrated, _ := k.NUMAStats()
				moved := pte.PFN() != old.PFN()
				if moved != tc.migrate || (migrated == 1) != tc.migrate {
					t.Fatalf("pfn %#x -> %#x, %d migrated; want migration %v", old.PFN(), pte.PFN(), migrated, tc.migrate)
				}
				if tc.migrate {
					if k.phys.Allocated(old.PFN()) {
						t.Fatalf("old frame %#x still allocated after the migration", old.PFN())
					}
					if w := k.phys.Words(pte.PFN()); w[0] != 0x11 || w[1] != 0x22 {
						t.Fatalf("the copy holds %#x %#x, want 0x11 0x22", w[0], w[1])
					}
					f := k.Folio(pte.PFN())
					if f.Mapcount() != 1 || f.Refs() != 1 || f.Flags()&FolioAnon == 0 || k.FolioNid(pte.PFN()) != tc.cpuNode {
						t.Fatalf("new folio: mapcount %d refs %d flags %#x node %d", f.Mapcount(), f.Refs(), f.Flags(), k.FolioNid(pte.PFN()))
					}
				} else if !pte.Write() {
					t.Fatalf("mapped again in place read-only: %v", pte)
				}
				// The copy is mapped read-only (the entry came from a
				// PROT_NONE PTE): a store takes the write fault and reuses it.
				if err := tk.Store(va, 0x44); err != nil {
					t.Fatal(err)
				}
				if got, _ := tk.Load(va); got != 0x44 {
					t.Fatalf("store after the fault: read %#x", got)
				}
			})
			if n := k.oracle.Total(); n != 0 {
				t.Fatalf("%d violations: %v", n, k.oracle.FirstAny())
			}
		})
	}
}

// try_to_migrate_one's ptep_clear_flush flushes a PROT_NONE PTE only while
// some change_protection_range has its flush pending — and, with
// FixMigrateTLBFlushPending reverted, never: pte_accessible is pte_valid.
func TestMigrateFlushesPendingProtNone(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pending  bool
		revert   bool
		protNone bool
		flush    bool
	}{
		{"valid", false, false, false, true},
		{"valid-unfixed", false, true, false, true},
		{"prot-none", false, false, true, false},
		{"prot-none-flush-pending", true, false, true, true},
		{"prot-none-flush-pending-unfixed", true, true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, tk, _ := internalRig(t)
			if tc.revert {
				k.Revert(FixMigrateTLBFlushPending)
			}
			runOn(t, k, func() {
				va, err := tk.Mmap(pagetable.PageSize, ProtRead|ProtWrite, false)
				if err != nil {
					t.Fatal(err)
				}
				if err := tk.Store(va, 7); err != nil {
					t.Fatal(err)
				}
				slot, _ := tk.mm.tables.SlotOf(va)
				pte := slot.Load()
				if tc.protNone {
					slot.Store(pagetable.NewPage(pte.PFN(), userPage)&^pagetable.PTEValid | pteProtNone | pagetable.PTEDirty)
				}
				if tc.pending {
					tk.mm.incTLBFlushPending() // a change_prot_numa between its PTE changes and its flush
				}
				k.FolioGet(pte.PFN()) // migration's isolation reference
				before := tlbis(tk.cpu)
				entry, ok := tk.tryToMigrateOne(pte.PFN(), va)
				if !ok || !isMigrationEntry(slot.Load()) || slot.Load() != entry || entry.PFN() != pte.PFN() {
					t.Fatalf("try_to_migrate_one: ok %v, PTE %v", ok, slot.Load())
				}
				if flushed := tlbis(tk.cpu) > before; flushed != tc.flush {
					t.Fatalf("flushed %v, want %v", flushed, tc.flush)
				}
				if !k.FolioTestDirty(pte.PFN()) || k.Folio(pte.PFN()).Mapcount() != 0 {
					t.Fatalf("folio after unmap: dirty %v, mapcount %d", k.FolioTestDirty(pte.PFN()), k.Folio(pte.PFN()).Mapcount())
				}
				if tc.pending {
					tk.mm.decTLBFlushPending()
				}
			})
		})
	}
}

func TestSetCPUNodeErrors(t *testing.T) {
	for _, tc := range []struct{ cpu, node int }{{-1, 0}, {1, 0}, {0, -1}, {0, MaxNUMANodes}} {
		k, _, _ := internalRig(t)
		if err := k.SetCPUNode(tc.cpu, tc.node); err == nil {
			t.Errorf("SetCPUNode(%d, %d) on one CPU: no error", tc.cpu, tc.node)
		}
	}
}
