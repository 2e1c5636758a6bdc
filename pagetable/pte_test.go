package pagetable

import "testing"

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// TestDescriptorBits checks each bit and field of the docs/kernel-model.md §3 descriptor
// table: the constant sits at the documented position, the accessor sees it
// set and clear, and the accessor sees no other bit.
func TestDescriptorBits(t *testing.T) {
	tests := []struct {
		name   string
		lo, hi int // bit positions from the table (inclusive)
		mask   PTE // the package's constant for the bit or field
		get    func(PTE) uint64
		set    func(PTE, uint64) PTE // for multi-bit fields; nil for flags
		values []uint64
	}{
		{name: "valid", lo: 0, hi: 0, mask: PTEValid, get: func(p PTE) uint64 { return b2u(p.Valid()) }},
		// Bit 1 means table/page only together with bit 0.
		{name: "table/page", lo: 1, hi: 1, mask: PTETable, get: func(p PTE) uint64 { return b2u((p | PTEValid).IsPage()) }},
		{name: "AttrIndx", lo: 2, hi: 4, mask: PTEAttrIndxMask, get: func(p PTE) uint64 { return uint64(p.AttrIndx()) },
			set: func(p PTE, v uint64) PTE { return p.WithAttrIndx(int(v)) }, values: []uint64{0, 1, 2, 4, 5, 7}},
		{name: "AP[1] user", lo: 6, hi: 6, mask: PTEUser, get: func(p PTE) uint64 { return b2u(p.User()) }},
		{name: "AP[2] rdonly", lo: 7, hi: 7, mask: PTERdonly, get: func(p PTE) uint64 { return b2u(p.Rdonly()) }},
		{name: "SH", lo: 8, hi: 9, mask: PTESHMask, get: func(p PTE) uint64 { return uint64(p.SH()) },
			set: func(p PTE, v uint64) PTE { return p.WithSH(int(v)) }, values: []uint64{SHNone, 1, SHOuter, SHInner}},
		{name: "AF", lo: 10, hi: 10, mask: PTEAF, get: func(p PTE) uint64 { return b2u(p.Young()) }},
		{name: "nG", lo: 11, hi: 11, mask: PTENG, get: func(p PTE) uint64 { return b2u(p.NG()) }},
		{name: "output address", lo: 12, hi: 47, mask: AddrMask, get: func(p PTE) uint64 { return p.PFN() },
			set:    func(p PTE, v uint64) PTE { return p&^AddrMask | PTE(v<<PageShift)&AddrMask },
			values: []uint64{0, 1, 0x1234, 0xfffffffff, 0x800000000}},
		{name: "DBM", lo: 51, hi: 51, mask: PTEDBM, get: func(p PTE) uint64 { return b2u(p.DBM()) }},
		{name: "PTE_WRITE", lo: 51, hi: 51, mask: PTEWrite, get: func(p PTE) uint64 { return b2u(p.Write()) }},
		{name: "Contiguous", lo: 52, hi: 52, mask: PTECont, get: func(p PTE) uint64 { return b2u(p.Cont()) }},
		{name: "PXN", lo: 53, hi: 53, mask: PTEPXN, get: func(p PTE) uint64 { return b2u(p.PXN()) }},
		{name: "UXN", lo: 54, hi: 54, mask: PTEUXN, get: func(p PTE) uint64 { return b2u(p.UXN()) }},
		{name: "sw dirty", lo: 55, hi: 55, mask: PTEDirty, get: func(p PTE) uint64 { return b2u(p.SWDirty()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want PTE
			for b := tt.lo; b <= tt.hi; b++ {
				want |= 1 << b
			}
			if tt.mask != want {
				t.Fatalf("constant = %#x, want bits %d:%d = %#x", uint64(tt.mask), tt.hi, tt.lo, uint64(want))
			}
			// Each bit of the field is seen by this accessor and
			// no bit outside it is.
			for b := 0; b < 64; b++ {
				inField := b >= tt.lo && b <= tt.hi
				if got := tt.get(PTE(1) << b); (got != 0) != inField {
					t.Errorf("bit %d alone: accessor = %d, want nonzero %v", b, got, inField)
				}
				if got, all := tt.get(^(PTE(1) << b)), tt.get(^PTE(0)); inField != (got != all) {
					t.Errorf("all bits but %d: accessor = %d (all set: %d)", b, got, all)
				}
			}
			if tt.set == nil {
				if tt.get(tt.mask) != 1 || tt.get(^tt.mask&^PTEValid) != 0 {
					t.Errorf("set/clear: get(set) = %d, get(clear) = %d", tt.get(tt.mask), tt.get(^tt.mask&^PTEValid))
				}
				return
			}
			for _, v := range tt.values {
				for _, base := range []PTE{0, ^PTE(0)} {
					p := tt.set(base, v)
					if got := tt.get(p); got != v {
						t.Errorf("set %#x on %#x: get = %#x", v, uint64(base), got)
					}
					if p&^tt.mask != base&^tt.mask {
						t.Errorf("set %#x on %#x changed other bits: %#x", v, uint64(base), uint64(p))
					}
				}
			}
		})
	}
}

func TestDescriptorKinds(t *testing.T) {
	tests := []struct {
		p           PTE
		table       [Levels]bool
		block       [Levels]bool
		page, valid bool
	}{
		{p: 0},
		{p: PTETable},
		{p: PTEValid, block: [Levels]bool{false, true, true, false}, valid: true},
		{p: PTEValid | PTETable, table: [Levels]bool{true, true, true, false}, page: true, valid: true},
		{p: NewTableDesc(7), table: [Levels]bool{true, true, true, false}, page: true, valid: true},
	}
	for _, tt := range tests {
		if tt.p.Valid() != tt.valid || tt.p.IsPage() != tt.page {
			t.Errorf("%v: Valid %v IsPage %v", tt.p, tt.p.Valid(), tt.p.IsPage())
		}
		for l := -1; l <= Levels; l++ {
			var wantT, wantB bool
			if l >= 0 && l < Levels {
				wantT, wantB = tt.table[l], tt.block[l]
			}
			if tt.p.IsTable(l) != wantT || tt.p.IsBlock(l) != wantB {
				t.Errorf("%v level %d: IsTable %v IsBlock %v, want %v %v", tt.p, l, tt.p.IsTable(l), tt.p.IsBlock(l), wantT, wantB)
			}
		}
	}
	if got, want := NewTableDesc(0x1234), PTE(0x1234<<12|3); got != want {
		t.Errorf("NewTableDesc = %v, want %v", got, want)
	}
	if got, want := NewPage(0x1234, PTEAF|AddrMask), PTE(0x1234<<12|3|PTEAF); got != want {
		t.Errorf("NewPage ignoring address bits in attrs = %v, want %v", got, want)
	}
}

const (
	ro  = PTERdonly
	dbm = PTEDBM
	swd = PTEDirty
)

// TestBuilders checks the Linux-named builders against
// arch/arm64/include/asm/pgtable.h, including its DBM state table:
//
//	Dirty Writable | PTE_RDONLY PTE_WRITE PTE_DIRTY (sw)
//	  0      0     |   1          0         0
//	  0      1     |   1          1         0
//	  1      0     |   1          0         1
//	  1      1     |   0          1         x
func TestBuilders(t *testing.T) {
	base := NewPage(0x4321, PTEUser|PTENG|PTEUXN).WithAttrIndx(4).WithSH(SHInner)
	tests := []struct {
		name string
		in   PTE
		fn   func(PTE) PTE
		want PTE
	}{
		{"mkyoung", 0, PTE.MkYoung, PTEAF},
		{"mkyoung young", PTEAF, PTE.MkYoung, PTEAF},
		{"mkold", PTEAF, PTE.MkOld, 0},
		{"mkold old", 0, PTE.MkOld, 0},

		{"mkclean hw-dirty", dbm, PTE.MkClean, dbm | ro},
		{"mkclean sw-dirty ro", ro | swd, PTE.MkClean, ro},
		{"mkclean sw+hw dirty", dbm | swd, PTE.MkClean, dbm | ro},
		{"mkclean clean", ro | dbm, PTE.MkClean, ro | dbm},

		{"mkdirty clean writable", ro | dbm, PTE.MkDirty, dbm | swd},
		{"mkdirty read-only", ro, PTE.MkDirty, ro | swd},
		{"mkdirty hw-dirty", dbm, PTE.MkDirty, dbm | swd},

		{"mkwrite clean ro", ro, PTE.MkWrite, ro | dbm},
		{"mkwrite sw-dirty ro", ro | swd, PTE.MkWrite, dbm | swd},
		{"mkwrite writable", ro | dbm, PTE.MkWrite, ro | dbm},

		{"wrprotect hw-dirty", dbm, PTE.Wrprotect, ro | swd},
		{"wrprotect writable clean", ro | dbm, PTE.Wrprotect, ro},
		{"wrprotect sw-dirty writable", dbm | swd, PTE.Wrprotect, ro | swd},
		{"wrprotect read-only", ro, PTE.Wrprotect, ro},
		{"wrprotect sw-dirty ro", ro | swd, PTE.Wrprotect, ro | swd},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.fn(base | tt.in); got != base|tt.want {
				t.Errorf("%v -> %v, want %v", base|tt.in, got, base|tt.want)
			}
		})
	}

	// Semantic invariants over every RDONLY/DBM/DIRTY/AF combination Linux uses.
	for bits := PTE(0); bits < 16; bits++ {
		var p PTE = base
		for i, b := range []PTE{ro, dbm, swd, PTEAF} {
			if bits&(1<<i) != 0 {
				p |= b
			}
		}
		if !p.Rdonly() && !p.Write() {
			// AP[2]=0 without PTE_WRITE is not a state Linux
			// creates (see the table above).
			continue
		}
		if q := p.Wrprotect(); q.Write() || !q.Rdonly() || q.Dirty() != p.Dirty() || q.HWDirty() {
			t.Errorf("Wrprotect(%v) = %v: want read-only, not writable, dirty preserved", p, q)
		}
		if q := p.MkWrite(); !q.Write() || q.Dirty() != p.Dirty() {
			t.Errorf("MkWrite(%v) = %v: want writable, dirty preserved", p, q)
		}
		if q := p.MkClean(); q.Dirty() || q.Write() != p.Write() {
			t.Errorf("MkClean(%v) = %v: want clean, write preserved", p, q)
		}
		if q := p.MkDirty(); !q.Dirty() || q.Write() != p.Write() || (q.Write() && q.Rdonly()) {
			t.Errorf("MkDirty(%v) = %v: want dirty, write preserved, writable => !RDONLY", p, q)
		}
		if p.MkYoung().Young() != true || p.MkOld().Young() != false {
			t.Errorf("MkYoung/MkOld(%v)", p)
		}
		if p.HWDirty() != (p.DBM() && !p.Rdonly()) || p.Dirty() != (p.HWDirty() || p.SWDirty()) {
			t.Errorf("%v: HWDirty %v Dirty %v", p, p.HWDirty(), p.Dirty())
		}
		// Nothing outside RDONLY/DBM/DIRTY/AF is touched.
		mask := ro | dbm | swd | PTEAF
		for _, q := range []PTE{p.Wrprotect(), p.MkWrite(), p.MkClean(), p.MkDirty(), p.MkOld(), p.MkYoung()} {
			if q&^mask != base {
				t.Errorf("builder on %v changed other bits: %v", p, q)
			}
		}
	}
}

func TestPTEString(t *testing.T) {
	tests := []struct {
		p    PTE
		want string
	}{
		{0, "0"},
		{NewPage(0x1234, PTEAF|PTENG|PTEDBM), "V|P|AF|nG|DBM pfn=0x1234"},
		{NewPage(1, PTEUser|PTERdonly|PTEDirty|PTEPXN|PTEUXN|PTECont).WithAttrIndx(3).WithSH(SHInner),
			"V|P|attr=3|U|RO|sh=3|CONT|PXN|UXN|SWD pfn=0x1"},
		{PTE(5 << PageShift), "pfn=0x5"},
		{PTEValid | 1<<56, "V|0x100000000000000 pfn=0x0"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String(%#x) = %q, want %q", uint64(tt.p), got, tt.want)
		}
	}
}
