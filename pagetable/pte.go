package pagetable

import (
	"fmt"
	"strings"
)

// PTE is one VMSAv8-64 descriptor (any level) in the 4 KiB granule format.
// Linux calls it pte_t/pmd_t/pud_t/pgd_t depending on the level; on arm64 the
// bits are the same at every level, so one type serves them all.
type PTE uint64

// Descriptor bits (Arm ARM D8.3; arch/arm64/include/asm/pgtable-hwdef.h and
// pgtable-prot.h name them PTE_*).
const (
	// PTEValid is bit 0: the descriptor is valid (PTE_VALID).
	PTEValid PTE = 1 << 0
	// PTETable is bit 1: a table descriptor at levels 0-2, a page
	// descriptor at level 3 (PTE_TABLE_BIT, PTE_TYPE_PAGE). With bit 1
	// clear a valid descriptor is a block at levels 1-2 and reserved
	// (a translation fault) at levels 0 and 3.
	PTETable PTE = 1 << 1
	// PTEUser is AP[1], bit 6: EL0 may access (PTE_USER).
	PTEUser PTE = 1 << 6
	// PTERdonly is AP[2], bit 7: read-only (PTE_RDONLY).
	PTERdonly PTE = 1 << 7
	// PTEAF is the Access flag, bit 10 (PTE_AF).
	PTEAF PTE = 1 << 10
	// PTENG is not-global, bit 11: the translation is tagged with an
	// ASID (PTE_NG).
	PTENG PTE = 1 << 11
	// PTEDBM is Dirty Bit Modifier, bit 51 (PTE_DBM): with hardware
	// dirty management a write through a read-only (AP[2]=1) descriptor
	// with DBM set clears AP[2] instead of faulting.
	PTEDBM PTE = 1 << 51
	// PTEWrite is Linux's PTE_WRITE, which on arm64 is the DBM bit.
	PTEWrite = PTEDBM
	// PTECont is the Contiguous hint, bit 52 (PTE_CONT).
	PTECont PTE = 1 << 52
	// PTEPXN is Privileged execute-never, bit 53 (PTE_PXN).
	PTEPXN PTE = 1 << 53
	// PTEUXN is Unprivileged execute-never, bit 54 (PTE_UXN).
	PTEUXN PTE = 1 << 54
	// PTEDirty is Linux's software dirty bit, bit 55 (PTE_DIRTY); the
	// hardware ignores it.
	PTEDirty PTE = 1 << 55

	// AddrMask selects the output address, bits 47:12.
	AddrMask PTE = ((1 << 48) - 1) &^ 0xfff

	// PTEAttrIndxShift and PTEAttrIndxMask place AttrIndx[2:0], bits
	// 4:2, the MAIR_EL1 index (PTE_ATTRINDX).
	PTEAttrIndxShift     = 2
	PTEAttrIndxMask  PTE = 7 << PTEAttrIndxShift
	// PTESHShift and PTESHMask place SH[1:0], bits 9:8, the
	// shareability (PTE_SHARED is SHInner).
	PTESHShift     = 8
	PTESHMask  PTE = 3 << PTESHShift
)

// Shareability values of the SH field.
const (
	SHNone  = 0 // non-shareable
	SHOuter = 2 // outer shareable
	SHInner = 3 // inner shareable (Linux PTE_SHARED)
)

// NewTableDesc returns a table descriptor (levels 0-2) pointing at the table
// in frame pfn: valid|table|address. Linux: __pmd_populate et al.
func NewTableDesc(pfn uint64) PTE {
	return PTEValid | PTETable | (PTE(pfn<<PageShift) & AddrMask)
}

// NewPage returns a level-3 page descriptor for frame pfn with the given
// attribute bits: valid|page|address|attrs. Address bits in attrs are
// ignored. Linux: pfn_pte().
func NewPage(pfn uint64, attrs PTE) PTE {
	return PTEValid | PTETable | (PTE(pfn<<PageShift) & AddrMask) | (attrs &^ AddrMask)
}

// Valid reports bit 0 (Linux pte_valid).
func (p PTE) Valid() bool { return p&PTEValid != 0 }

// IsTable reports whether p is a valid table descriptor at level (0-2).
// Linux: pmd_table / pud_table.
func (p PTE) IsTable(level int) bool {
	return level >= 0 && level < Levels-1 && p&(PTEValid|PTETable) == PTEValid|PTETable
}

// IsPage reports whether p, read as a level-3 descriptor, is a valid page
// descriptor (bits 1:0 = 0b11).
func (p PTE) IsPage() bool { return p&(PTEValid|PTETable) == PTEValid|PTETable }

// IsBlock reports whether p is a valid block descriptor at level (1 or 2).
// Linux: pmd_sect / pud_sect.
func (p PTE) IsBlock(level int) bool {
	return (level == 1 || level == 2) && p&(PTEValid|PTETable) == PTEValid
}

// User reports AP[1], EL0 access (Linux pte_user).
func (p PTE) User() bool { return p&PTEUser != 0 }

// Rdonly reports AP[2], read-only (Linux pte_rdonly).
func (p PTE) Rdonly() bool { return p&PTERdonly != 0 }

// Young reports the Access flag (Linux pte_young).
func (p PTE) Young() bool { return p&PTEAF != 0 }

// NG reports not-global (Linux pte_ng).
func (p PTE) NG() bool { return p&PTENG != 0 }

// DBM reports the Dirty Bit Modifier.
func (p PTE) DBM() bool { return p&PTEDBM != 0 }

// Write reports PTE_WRITE, which is DBM (Linux pte_write).
func (p PTE) Write() bool { return p&PTEWrite != 0 }

// HWDirty reports hardware-dirty: writable and AP[2] clear
// (Linux pte_hw_dirty).
func (p PTE) HWDirty() bool { return p.Write() && !p.Rdonly() }

// SWDirty reports the software dirty bit (Linux pte_sw_dirty).
func (p PTE) SWDirty() bool { return p&PTEDirty != 0 }

// Dirty reports hardware- or software-dirty (Linux pte_dirty).
func (p PTE) Dirty() bool { return p.HWDirty() || p.SWDirty() }

// Cont reports the Contiguous hint (Linux pte_cont).
func (p PTE) Cont() bool { return p&PTECont != 0 }

// PXN reports privileged execute-never.
func (p PTE) PXN() bool { return p&PTEPXN != 0 }

// UXN reports unprivileged execute-never.
func (p PTE) UXN() bool { return p&PTEUXN != 0 }

// Addr returns the output address, bits 47:12, as a physical address. For a
// block descriptor the low bits below the block size are the caller's to
// ignore (see Walk.PhysAddr).
func (p PTE) Addr() uint64 { return uint64(p & AddrMask) }

// PFN returns the output frame number, Addr() >> PageShift (Linux pte_pfn).
func (p PTE) PFN() uint64 { return p.Addr() >> PageShift }

// AttrIndx returns AttrIndx[2:0], the MAIR_EL1 attribute index.
func (p PTE) AttrIndx() int { return int((p & PTEAttrIndxMask) >> PTEAttrIndxShift) }

// SH returns the shareability field SH[1:0].
func (p PTE) SH() int { return int((p & PTESHMask) >> PTESHShift) }

// WithAttrIndx returns p with AttrIndx set to idx&7.
func (p PTE) WithAttrIndx(idx int) PTE {
	return p&^PTEAttrIndxMask | (PTE(idx)<<PTEAttrIndxShift)&PTEAttrIndxMask
}

// WithSH returns p with SH set to sh&3.
func (p PTE) WithSH(sh int) PTE {
	return p&^PTESHMask | (PTE(sh)<<PTESHShift)&PTESHMask
}

// MkYoung returns p with the Access flag set (Linux pte_mkyoung).
func (p PTE) MkYoung() PTE { return p | PTEAF }

// MkOld returns p with the Access flag clear (Linux pte_mkold).
func (p PTE) MkOld() PTE { return p &^ PTEAF }

// MkClean returns p clean: software dirty clear and AP[2] set, so that it is
// not hardware-dirty either (Linux pte_mkclean() in
// arch/arm64/include/asm/pgtable.h). DBM is kept: a writable PTE stays
// writable-clean.
func (p PTE) MkClean() PTE { return (p &^ PTEDirty) | PTERdonly }

// MkDirty returns p with software dirty set and, if it is writable, AP[2]
// cleared (Linux pte_mkdirty() in arch/arm64/include/asm/pgtable.h).
func (p PTE) MkDirty() PTE {
	p |= PTEDirty
	if p.Write() {
		p &^= PTERdonly
	}
	return p
}

// MkWrite returns p writable: DBM set and, if it is software-dirty, AP[2]
// cleared (Linux pte_mkwrite_novma() in arch/arm64/include/asm/pgtable.h).
// A clean PTE stays AP[2]=1 so that the first write is tracked by DBM.
func (p PTE) MkWrite() PTE {
	p |= PTEWrite
	if p.SWDirty() {
		p &^= PTERdonly
	}
	return p
}

// Wrprotect returns p read-only: a hardware-dirty PTE first moves its dirty
// state to the software dirty bit, then DBM is cleared and AP[2] set (Linux
// pte_wrprotect() in arch/arm64/include/asm/pgtable.h).
func (p PTE) Wrprotect() PTE {
	if p.HWDirty() {
		p |= PTEDirty
	}
	return (p &^ PTEWrite) | PTERdonly
}

// bitNames names the single-bit flags for String, in bit order.
var bitNames = []struct {
	bit  PTE
	name string
}{
	{PTEValid, "V"},
	{PTETable, "P"}, // table at levels 0-2, page at level 3
	{PTEUser, "U"},
	{PTERdonly, "RO"},
	{PTEAF, "AF"},
	{PTENG, "nG"},
	{PTEDBM, "DBM"},
	{PTECont, "CONT"},
	{PTEPXN, "PXN"},
	{PTEUXN, "UXN"},
	{PTEDirty, "SWD"},
}

// String lists the set bits and fields in bit order followed by the output
// frame, e.g. "V|P|AF|nG|DBM pfn=0x1234"; bit 1 prints as P whatever the
// level. The zero descriptor prints as "0".
func (p PTE) String() string {
	if p == 0 {
		return "0"
	}
	var parts []string
	known := AddrMask | PTEAttrIndxMask | PTESHMask
	for i, b := range bitNames {
		known |= b.bit
		if p&b.bit != 0 {
			parts = append(parts, b.name)
		}
		if i == 1 && p.AttrIndx() != 0 {
			parts = append(parts, fmt.Sprintf("attr=%d", p.AttrIndx()))
		}
		if i == 3 && p.SH() != 0 {
			parts = append(parts, fmt.Sprintf("sh=%d", p.SH()))
		}
	}
	if rest := p &^ known; rest != 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint64(rest)))
	}
	pfn := fmt.Sprintf("pfn=%#x", p.PFN())
	if len(parts) == 0 {
		return pfn
	}
	return strings.Join(parts, "|") + " " + pfn
}
