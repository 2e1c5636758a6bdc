package pagetable

// Walk is the result of a hardware-style table walk.
type Walk struct {
	PTE    PTE            // the last descriptor read: the leaf if OK, else the faulting one
	Level  int            // level of that descriptor
	Reads  int            // descriptors read by this walk (levels touched)
	Slot   Slot           // where that descriptor lives
	Tables [Levels]uint64 // PFN of the table read at each level (valid from the start level up to Level)
	OK     bool           // a valid page (level 3) or block (level 1/2) was reached
}

// WalkFrom walks va starting at the table in frame table, which is a
// level-level table (0 = the root). The mmu uses it to resume a walk from a
// walk-cache hit. Every descriptor is read atomically, exactly once, and the
// walk acts only on the values it read, as the hardware does.
//
// The walk stops with OK at a valid page (level 3) or block (levels 1-2)
// descriptor. It stops without OK (a translation fault at Level) at an
// invalid descriptor, a valid descriptor with bit 1 clear at level 0 or 3
// (reserved), or a table frame that mem does not hold (PTE 0, zero Slot,
// Reads not counting the missing read). A va >= 2^48 or a level outside 0-3
// faults at the start level without reading anything.
func WalkFrom(mem Memory, table uint64, level int, va uint64) Walk {
	w := Walk{Level: level}
	if mem == nil || level < 0 || level >= Levels || va >= MaxVA {
		return w
	}
	for {
		w.Level = level
		words := mem.Words(table)
		if words == nil {
			w.PTE, w.Slot = 0, Slot{}
			return w
		}
		w.Tables[level] = table
		w.Slot = slotIn(words, table, Index(va, level))
		w.PTE = w.Slot.Load()
		w.Reads++
		switch {
		case !w.PTE.Valid():
			return w
		case level == Levels-1:
			w.OK = w.PTE.IsPage()
			return w
		case w.PTE.IsTable(level):
			table = w.PTE.PFN()
			level++
		default:
			w.OK = w.PTE.IsBlock(level)
			return w
		}
	}
}

// PhysAddr returns the physical address va translates to through the leaf
// w reached: the output address above the leaf's span (4 KiB page, 2 MiB or
// 1 GiB block) and va's offset within it. It returns 0 if !w.OK.
func (w Walk) PhysAddr(va uint64) uint64 {
	if !w.OK {
		return 0
	}
	off := LevelSize(w.Level) - 1
	return w.PTE.Addr()&^off | va&off
}
