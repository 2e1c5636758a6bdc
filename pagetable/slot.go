package pagetable

import (
	"errors"
	"sync/atomic"
)

// Geometry of the 4 KiB granule, 48-bit VA translation regime.
const (
	PageShift = 12
	PageSize  = 1 << PageShift
	Levels    = 4   // levels 0 (root) to 3 (pages)
	Entries   = 512 // descriptors per table
	VABits    = 48

	// MaxVA is the first virtual address beyond the translated range.
	MaxVA uint64 = 1 << VABits
)

// Errors returned for things a caller can get wrong.
var (
	// ErrVA reports a virtual address >= 2^48.
	ErrVA = errors.New("pagetable: virtual address beyond 48 bits")
	// ErrMapped reports that Map found a valid descriptor in place.
	ErrMapped = errors.New("pagetable: address already mapped")
	// ErrNotTable reports that a non-zero descriptor that is not a table
	// (a block, or an invalid but non-zero entry) sits at an intermediate
	// level where Ensure needs a table.
	ErrNotTable = errors.New("pagetable: non-table descriptor at an intermediate level")
	// ErrFrame reports a table frame that Memory does not hold.
	ErrFrame = errors.New("pagetable: table frame not in memory")
)

// Memory is the emulated physical memory that table pages live in; the mmu
// package implements it. It is declared here, by its consumer.
type Memory interface {
	// Words returns the frame's 512 words, or nil if there is no such
	// frame. Descriptor words are accessed atomically.
	Words(pfn uint64) *[512]uint64
	// AllocTable returns a zeroed frame for a table page.
	AllocTable() (uint64, error)
	// FreeTable returns a table frame to the allocator.
	FreeTable(pfn uint64)
}

// LevelShift returns log2 of the VA span one descriptor at level maps:
// 39, 30, 21, 12 for levels 0-3 (PGDIR_SHIFT, PUD_SHIFT, PMD_SHIFT,
// PAGE_SHIFT). It returns 0 for a level outside 0-3.
func LevelShift(level int) uint {
	if level < 0 || level >= Levels {
		return 0
	}
	return PageShift + 9*uint(Levels-1-level)
}

// LevelSize returns the VA span one descriptor at level maps (512 GiB,
// 1 GiB, 2 MiB, 4 KiB), or 0 for a level outside 0-3.
func LevelSize(level int) uint64 {
	if level < 0 || level >= Levels {
		return 0
	}
	return 1 << LevelShift(level)
}

// Index returns the table index of va at level: VA[47:39], [38:30],
// [29:21] or [20:12] for levels 0-3 (Linux pgd_index, pud_index, pmd_index,
// pte_index). It returns -1 for a level outside 0-3.
func Index(va uint64, level int) int {
	if level < 0 || level >= Levels {
		return -1
	}
	return int((va >> LevelShift(level)) & (Entries - 1))
}

// Slot is the location of one descriptor: a pointer to its word and its
// physical address. The zero Slot is no descriptor: Load returns 0, Swap
// returns 0, CompareAndSwap fails and Store does nothing.
type Slot struct {
	p    *uint64
	Addr uint64 // physical address of the descriptor
}

// slotIn returns the slot of entry i of the table in frame pfn.
func slotIn(words *[Entries]uint64, pfn uint64, i int) Slot {
	return Slot{p: &words[i], Addr: pfn<<PageShift + uint64(i)*8}
}

// SlotAt returns the descriptor at physical address addr, for the hardware's
// re-read of a descriptor it is about to update (the DBM/AF update). It
// returns the zero Slot if addr is not 8-byte aligned or mem has no frame
// there.
func SlotAt(mem Memory, addr uint64) Slot {
	if mem == nil || addr&7 != 0 {
		return Slot{}
	}
	words := mem.Words(addr >> PageShift)
	if words == nil {
		return Slot{}
	}
	return slotIn(words, addr>>PageShift, int(addr&(PageSize-1))/8)
}

// IsZero reports whether s is the zero Slot, naming no descriptor.
func (s Slot) IsZero() bool { return s.p == nil }

// Load reads the descriptor atomically (Linux READ_ONCE / ptep_get).
func (s Slot) Load() PTE {
	if s.p == nil {
		return 0
	}
	return PTE(atomic.LoadUint64(s.p))
}

// Store writes the descriptor atomically (Linux set_pte / WRITE_ONCE).
func (s Slot) Store(p PTE) {
	if s.p != nil {
		atomic.StoreUint64(s.p, uint64(p))
	}
}

// CompareAndSwap replaces the descriptor with new if it is old (Linux
// cmpxchg_relaxed on the pte, as in ptep_set_access_flags).
func (s Slot) CompareAndSwap(old, new PTE) bool {
	return s.p != nil && atomic.CompareAndSwapUint64(s.p, uint64(old), uint64(new))
}

// Swap atomically stores new and returns the previous descriptor;
// ptep_get_and_clear is Swap(0).
func (s Slot) Swap(new PTE) PTE {
	if s.p == nil {
		return 0
	}
	return PTE(atomic.SwapUint64(s.p, uint64(new)))
}
