package pagetable

import (
	"errors"
	"fmt"
)

// Tables is one address space's translation tables: the root (level 0)
// table that TTBR0_EL1 points at and everything below it. Its methods are
// safe for concurrent use, subject to the FreeEmpty rule in the package
// comment.
type Tables struct {
	mem  Memory
	root uint64
}

// New allocates the level-0 root table in mem (Linux pgd_alloc).
func New(mem Memory) (*Tables, error) {
	if mem == nil {
		return nil, errors.New("pagetable: nil Memory")
	}
	root, err := mem.AllocTable()
	if err != nil {
		return nil, fmt.Errorf("pagetable: allocating root table: %w", err)
	}
	if mem.Words(root) == nil {
		mem.FreeTable(root)
		return nil, fmt.Errorf("%w: root pfn %#x", ErrFrame, root)
	}
	return &Tables{mem: mem, root: root}, nil
}

// Root returns the root table's PFN (what TTBR0_EL1.BADDR holds).
func (t *Tables) Root() uint64 { return t.root }

// Memory returns the memory the tables live in.
func (t *Tables) Memory() Memory { return t.mem }

// Walk walks va from the root, as the hardware does on a TLB miss.
func (t *Tables) Walk(va uint64) Walk { return WalkFrom(t.mem, t.root, 0, va) }

// Lookup returns the valid level-3 page descriptor for va; false if there is
// none (a missing table, an invalid descriptor, or a block leaf).
func (t *Tables) Lookup(va uint64) (PTE, bool) {
	w := t.Walk(va)
	if !w.OK || w.Level != Levels-1 {
		return 0, false
	}
	return w.PTE, true
}

// slot returns the slot of va's entry in the level-level table in frame pfn.
func (t *Tables) slot(pfn uint64, level int, va uint64) (Slot, bool) {
	words := t.mem.Words(pfn)
	if words == nil {
		return Slot{}, false
	}
	return slotIn(words, pfn, Index(va, level)), true
}

// Ensure returns the level-3 slot for va, allocating missing intermediate
// tables (Linux pte_alloc_map and friends). It is safe to call concurrently
// from many goroutines: a missing table is allocated, then installed with
// CompareAndSwap(0 -> table descriptor) on the parent; a loser frees its
// table and uses the winner's. It fails with ErrVA if va >= 2^48, with the
// allocator's error (wrapped) if allocation fails, and with ErrNotTable if a
// block or other non-zero non-table descriptor is in the way. Tables
// installed before a failure stay installed (FreeEmpty reclaims them).
func (t *Tables) Ensure(va uint64) (Slot, error) { return t.ensure(va, Levels-1) }

// ensure returns va's slot in the level-level table, allocating the tables
// of levels 1..level as needed.
func (t *Tables) ensure(va uint64, level int) (Slot, error) {
	if va >= MaxVA {
		return Slot{}, fmt.Errorf("%w: %#x", ErrVA, va)
	}
	table := t.root
	for l := 0; ; l++ {
		s, ok := t.slot(table, l, va)
		if !ok {
			return Slot{}, fmt.Errorf("%w: level-%d table pfn %#x", ErrFrame, l, table)
		}
		if l == level {
			return s, nil
		}
		next, err := t.descend(s, l)
		if err != nil {
			return Slot{}, err
		}
		table = next
	}
}

// descend returns the PFN of the table the level-level descriptor s points
// at, allocating and installing one if s is zero.
func (t *Tables) descend(s Slot, level int) (uint64, error) {
	var spare uint64
	haveSpare := false
	for {
		p := s.Load()
		if p.IsTable(level) {
			if haveSpare {
				// Lost the race: the frame was never published.
				t.mem.FreeTable(spare)
			}
			return p.PFN(), nil
		}
		if p != 0 {
			if haveSpare {
				t.mem.FreeTable(spare)
			}
			return 0, fmt.Errorf("%w: level-%d descriptor %v at %#x", ErrNotTable, level, p, s.Addr)
		}
		if !haveSpare {
			pfn, err := t.mem.AllocTable()
			if err != nil {
				return 0, fmt.Errorf("pagetable: allocating level-%d table: %w", level+1, err)
			}
			spare, haveSpare = pfn, true
		}
		if s.CompareAndSwap(0, NewTableDesc(spare)) {
			return spare, nil
		}
	}
}

// SlotOf returns the existing level-3 slot for va without allocating; false
// if va >= 2^48 or an intermediate table is missing (or a block is there).
func (t *Tables) SlotOf(va uint64) (Slot, bool) {
	if va >= MaxVA {
		return Slot{}, false
	}
	table := t.root
	for l := 0; ; l++ {
		s, ok := t.slot(table, l, va)
		if !ok || l == Levels-1 {
			return s, ok
		}
		p := s.Load()
		if !p.IsTable(l) {
			return Slot{}, false
		}
		table = p.PFN()
	}
}

// Map installs p as va's level-3 descriptor (Ensure, then store; Linux
// set_pte_at on a none pte). It fails with ErrMapped if a valid descriptor
// is already there; an invalid non-zero descriptor is replaced. p is stored
// as given: a valid p with bit 1 clear is a reserved descriptor that walks
// report as a fault.
func (t *Tables) Map(va uint64, p PTE) error {
	s, err := t.Ensure(va)
	if err != nil {
		return err
	}
	for {
		old := s.Load()
		if old.Valid() {
			return fmt.Errorf("%w: va %#x holds %v", ErrMapped, va, old)
		}
		if s.CompareAndSwap(old, p) {
			return nil
		}
	}
}

// Unmap atomically clears va's valid level-3 descriptor and returns the old
// one (Linux ptep_get_and_clear). It is a compare-and-swap loop, so the
// descriptor returned includes any Access flag or dirty update the hardware
// made up to the clear. If there is no valid descriptor it changes nothing
// and returns false with what it found (0 or an invalid descriptor).
func (t *Tables) Unmap(va uint64) (PTE, bool) {
	s, ok := t.SlotOf(va)
	if !ok {
		return 0, false
	}
	for {
		old := s.Load()
		if !old.Valid() {
			return old, false
		}
		if s.CompareAndSwap(old, 0) {
			return old, true
		}
	}
}

// CompareAndSwap replaces va's existing level-3 descriptor with new if it is
// old; false if it is not or the slot does not exist. It never allocates.
func (t *Tables) CompareAndSwap(va uint64, old, new PTE) bool {
	s, ok := t.SlotOf(va)
	return ok && s.CompareAndSwap(old, new)
}
