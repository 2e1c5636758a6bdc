package mm

import (
	"fmt"

	gsync "gvisor.dev/gvisor/pkg/sync"

	"github.com/mmubench/mmubench/pagetable"
)

// Folio is the kernel's metadata of one frame of user memory (struct folio,
// order 0). Its reference count keeps the frame allocated: one reference per
// mapping and one per isolation by reclaim; the frame is freed when the last
// goes. rmap is the single (mm, va) that maps it: private and shared
// anonymous memory are never mapped twice here (there is no fork).
type Folio struct {
	mu    gsync.Mutex
	refs  int32
	flags uint32
	mm    *MM
	va    uint64
}

// Folio flags (PG_*).
const (
	FolioAnon       = 1 << iota // PG_anon (folio_test_anon)
	FolioSwapBacked             // PG_swapbacked; clear on a lazy-free (MADV_FREE) folio
	FolioDirty                  // PG_dirty
)

// Flags returns the folio's flags.
func (f *Folio) Flags() uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.flags
}

// Mapping returns the (mm, va) that maps the folio, or a nil mm.
func (f *Folio) Mapping() (*MM, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mm, f.va
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

// FolioPut drops a reference (folio_put); the last one frees the frame.
// Callers drop a mapping's reference only after the TLB flush that makes
// the frame unreachable has completed.
func (k *Kernel) FolioPut(pfn uint64) {
	f := &k.folios[pfn]
	f.mu.Lock()
	f.refs--
	if f.refs < 0 {
		f.mu.Unlock()
		panic(fmt.Sprintf("mm: folio %#x reference count below zero", pfn)) // a bug in the emulated kernel
	}
	last := f.refs == 0
	if last {
		f.flags, f.mm, f.va = 0, nil, 0
	}
	f.mu.Unlock()
	if last {
		if r := k.cfg.Reclaim; r != nil {
			r.FolioDelLRU(pfn)
		}
		if err := k.phys.Free(pfn); err != nil {
			panic(err) // a bug in the emulated kernel: the oracle relies on exact frame lifetimes
		}
	}
}

// newAnonFolio sets up a freshly allocated frame as a mapped anonymous
// folio with one reference (the mapping's).
func (k *Kernel) newAnonFolio(pfn uint64, mm *MM, va uint64, dirty bool) {
	f := &k.folios[pfn]
	f.mu.Lock()
	f.refs = 1
	f.flags = FolioAnon | FolioSwapBacked
	if dirty {
		f.flags |= FolioDirty
	}
	f.mm, f.va = mm, va
	f.mu.Unlock()
	if r := k.cfg.Reclaim; r != nil {
		r.FolioAddLRU(pfn)
	}
}

// reuseAnonFolio maps a folio taken from the swap cache again; the caller
// already holds the mapping's reference.
func (k *Kernel) reuseAnonFolio(pfn uint64, mm *MM, va uint64) {
	f := &k.folios[pfn]
	f.mu.Lock()
	f.flags |= FolioAnon | FolioSwapBacked | FolioDirty
	f.mm, f.va = mm, va
	f.mu.Unlock()
	if r := k.cfg.Reclaim; r != nil {
		r.FolioAddLRU(pfn)
	}
}

// unmapRmap clears the folio's rmap after its PTE was cleared.
func (f *Folio) unmapRmap() {
	f.mu.Lock()
	f.mm, f.va = nil, 0
	f.mu.Unlock()
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

// present reports whether p maps a frame (valid, or PROT_NONE): pte_present.
func present(p pagetable.PTE) bool { return p.Valid() || isProtNone(p) }
