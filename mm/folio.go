package mm

import (
	"fmt"

	gsync "gvisor.dev/gvisor/pkg/sync"

	"github.com/mmubench/mmubench/pagetable"
)

// Folio is the kernel's metadata of one frame of user memory (struct folio,
// order 0). Its reference count keeps the frame allocated: one reference per
// mapping, one for the page cache while it is in it, one per isolation by
// reclaim; the frame is freed when the last goes. maps is its reverse map:
// every (mm, va) whose PTE maps it — the anon_vma chain of an anonymous
// folio shared after fork, the i_mmap of a file page mapped by many
// processes — so that reclaim finds and unmaps them all.
type Folio struct {
	mu    gsync.Mutex
	refs  int32
	flags uint32
	maps  []rmapItem
	file  *File  // page-cache folio (file or shmem): its file, nil for anonymous memory
	index uint64 // ... and its page index in the file
	nid   uint8  // its NUMA node (folio_nid): 0 unless it was migrated (numa.go)
	head  uint64 // a tail page of a large folio: its head's frame; 0 otherwise (mthp.go)
	order uint8  // the head of a large folio: its order
}

// rmapItem is one mapping of a folio: the PTE of va in mm.
type rmapItem struct {
	mm *MM
	va uint64
}

// Folio flags (PG_*).
const (
	FolioAnon       = 1 << iota // PG_anon (folio_test_anon)
	FolioSwapBacked             // PG_swapbacked: anonymous (unless MADV_FREE'd) or shmem
	FolioDirty                  // PG_dirty
)

// Flags returns the folio's flags.
func (f *Folio) Flags() uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.flags
}

// Mapcount is the number of PTEs that map the folio (folio_mapcount).
func (f *Folio) Mapcount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.maps)
}

// Refs is the folio's reference count (folio_ref_count).
func (f *Folio) Refs() int32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refs
}

// File returns the file whose page cache holds the folio, or nil.
func (f *Folio) File() *File {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.file
}

// mappings returns a snapshot of the folio's reverse map.
func (f *Folio) mappings() []rmapItem {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]rmapItem(nil), f.maps...)
}

// addMap records a new PTE mapping the folio and takes its reference
// (folio_add_*_rmap + folio_get).
func (f *Folio) addMap(mm *MM, va uint64) {
	f.mu.Lock()
	f.maps = append(f.maps, rmapItem{mm, va})
	f.refs++
	f.mu.Unlock()
}

// mapWithRef records a new PTE mapping the folio whose reference the
// caller already holds (the page cache handed it out).
func (f *Folio) mapWithRef(mm *MM, va uint64) {
	f.mu.Lock()
	f.maps = append(f.maps, rmapItem{mm, va})
	f.mu.Unlock()
}

// removeMap forgets the PTE of va in mm (folio_remove_rmap_pte); the caller
// drops the mapping's reference after the TLB flush.
func (f *Folio) removeMap(mm *MM, va uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, m := range f.maps {
		if m.mm == mm && m.va == va {
			f.maps[i] = f.maps[len(f.maps)-1]
			f.maps = f.maps[:len(f.maps)-1]
			return
		}
	}
	panic(fmt.Sprintf("mm: folio mapped at %#x of asid %d has no such rmap entry", va, mm.asid)) // a bug in the emulated kernel
}

func (f *Folio) setFlag(fl uint32, on bool) {
	f.mu.Lock()
	if on {
		f.flags |= fl
	} else {
		f.flags &^= fl
	}
	f.mu.Unlock()
}

// FolioMarkDirty sets PG_dirty (folio_mark_dirty): try_to_unmap_one moves a
// PTE's dirty state here when it clears the PTE.
func (k *Kernel) FolioMarkDirty(pfn uint64) { k.folios[pfn].setFlag(FolioDirty, true) }

// FolioTestDirty reports PG_dirty.
func (k *Kernel) FolioTestDirty(pfn uint64) bool { return k.folios[pfn].Flags()&FolioDirty != 0 }

// FolioSetSwapBacked sets PG_swapbacked (a lazy-free folio that was written
// again goes back to being swap-backed).
func (k *Kernel) FolioSetSwapBacked(pfn uint64) { k.folios[pfn].setFlag(FolioSwapBacked, true) }

// FolioGet takes a reference (folio_get): reclaim isolating a folio.
// It fails if the folio is already free.
func (k *Kernel) FolioGet(pfn uint64) bool {
	f := &k.folios[pfn]
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refs == 0 {
		return false
	}
	f.refs++
	return true
}

// FolioPut drops a reference (folio_put); the last one frees the frame, on
// t's time if t is not nil. Callers drop a mapping's reference only after
// the TLB flush that makes the frame unreachable has completed.
func (k *Kernel) FolioPut(t *Task, pfn uint64) {
	f := &k.folios[pfn]
	f.mu.Lock()
	f.refs--
	if f.refs < 0 {
		f.mu.Unlock()
		panic(fmt.Sprintf("mm: folio %#x reference count below zero", pfn)) // a bug in the emulated kernel
	}
	last := f.refs == 0
	if last {
		if len(f.maps) != 0 {
			f.mu.Unlock()
			panic(fmt.Sprintf("mm: folio %#x freed while mapped", pfn))
		}
		f.flags, f.file, f.index, f.nid = 0, nil, 0, 0
	}
	f.mu.Unlock()
	if last {
		if k.largeFolios.Load() != 0 {
			k.dissolveFolio(k.FolioHead(pfn), true) // a page of a large folio: split it first
		}
		if r := k.cfg.Reclaim; r != nil {
			r.FolioDelLRU(pfn)
		}
		if err := k.phys.Free(pfn); err != nil {
			panic(err) // a bug in the emulated kernel: the oracle relies on exact frame lifetimes
		}
		if t != nil {
			t.cpu.Charge(k.cost.PageFree)
		}
	}
}

// newAnonFolio sets up a freshly allocated frame as an anonymous folio
// mapped at va of mm, with the mapping's reference.
func (k *Kernel) newAnonFolio(pfn uint64, mm *MM, va uint64, dirty bool) {
	f := &k.folios[pfn]
	f.mu.Lock()
	f.refs = 1
	f.flags = FolioAnon | FolioSwapBacked
	if dirty {
		f.flags |= FolioDirty
	}
	f.maps = append(f.maps[:0], rmapItem{mm, va})
	f.mu.Unlock()
	if r := k.cfg.Reclaim; r != nil {
		r.FolioAddLRU(pfn)
	}
}

// reuseAnonFolio maps a folio taken from the swap cache again; the caller
// already holds the mapping's reference.
func (k *Kernel) reuseAnonFolio(pfn uint64, mm *MM, va uint64) {
	f := &k.folios[pfn]
	f.setFlag(FolioAnon|FolioSwapBacked|FolioDirty, true)
	f.mapWithRef(mm, va)
	if r := k.cfg.Reclaim; r != nil {
		r.FolioAddLRU(pfn)
	}
}

// Software PTE encodings of non-present entries (the hardware sees them as
// invalid: bit 0 clear).
const (
	// pteSwap marks a swap entry: the slot+1 is in the output-address bits.
	pteSwap = pagetable.PTE(1 << 2)
	// pteProtNone marks a PROT_NONE mapping (arm64 PTE_PROT_NONE, bit 58):
	// present to the kernel, invalid to the hardware; the frame stays.
	pteProtNone = pagetable.PTE(1 << 58)
)

func swapPTE(slot int) pagetable.PTE {
	return pagetable.PTE(uint64(slot+1)<<pagetable.PageShift) | pteSwap
}

func isSwapPTE(p pagetable.PTE) bool { return !p.Valid() && p&pteSwap != 0 }

func swapSlot(p pagetable.PTE) int { return int(p>>pagetable.PageShift&(1<<36-1)) - 1 }

func isProtNone(p pagetable.PTE) bool { return !p.Valid() && p&pteProtNone != 0 }

// present reports whether p maps a frame (valid, PROT_NONE, or a migration
// entry of a folio being split, split.go): pte_present, and for a
// migration entry is_migration_entry — it still maps the page.
func present(p pagetable.PTE) bool { return p.Valid() || isProtNone(p) || isMigrationEntry(p) }
