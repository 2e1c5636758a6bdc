package mmu

import (
	"fmt"
	"math/bits"
	"strings"
)

// Replacement is a TLB replacement policy.
type Replacement uint8

const (
	ReplLRU    Replacement = iota // true LRU (per-entry use stamps)
	ReplRandom                    // uniformly random victim from a per-TLB seeded PRNG (deterministic for a seed)
	ReplPLRU                      // tree pseudo-LRU; requires a power-of-two number of ways
)

var tlbReplNames = [...]string{ReplLRU: "lru", ReplRandom: "random", ReplPLRU: "plru"}

func (r Replacement) String() string {
	if int(r) < len(tlbReplNames) {
		return tlbReplNames[r]
	}
	return fmt.Sprintf("Replacement(%d)", uint8(r))
}

// ParseReplacement parses a policy name as printed by String (case-insensitive).
func ParseReplacement(s string) (Replacement, error) {
	for r, name := range tlbReplNames {
		if strings.EqualFold(strings.TrimSpace(s), name) {
			return Replacement(r), nil
		}
	}
	return 0, fmt.Errorf("unknown TLB replacement policy %q (valid: %s)", s, strings.Join(tlbReplNames[:], ", "))
}

// TLBGeometry is a TLB's size: Ways == Entries means fully associative.
type TLBGeometry struct{ Entries, Ways int }

// Sets is the number of sets (Entries/Ways).
func (g TLBGeometry) Sets() int {
	if g.Ways <= 0 {
		return 0
	}
	return g.Entries / g.Ways
}

func (g TLBGeometry) String() string {
	if g.Entries == 0 {
		return "off"
	}
	return fmt.Sprintf("%dx%d", g.Entries, g.Ways)
}

// tlbMaxEntries bounds a TLB so that set numbers fit the tag's VA prefix and
// way+1 fits the hash index.
const tlbMaxEntries = 1 << 16

// Validate refuses geometries that cannot exist, so configuration errors
// surface at machine construction instead of as index panics mid-run.
func (g TLBGeometry) Validate(r Replacement) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("TLB geometry %v: %s", g, fmt.Sprintf(format, a...))
	}
	switch {
	case g.Entries <= 0:
		return bad("entries must be positive")
	case g.Ways <= 0:
		return bad("ways must be positive")
	case g.Entries > tlbMaxEntries:
		return bad("more than %d entries", tlbMaxEntries)
	case g.Entries%g.Ways != 0:
		return bad("%d ways do not divide %d entries", g.Ways, g.Entries)
	case !tlbIsPow2(g.Sets()):
		return bad("%d sets is not a power of two", g.Sets())
	case int(r) >= len(tlbReplNames):
		return bad("unknown replacement policy %v", r)
	case r == ReplPLRU && !tlbIsPow2(g.Ways):
		return bad("plru needs a power-of-two number of ways, not %d (a tree has 2^k leaves; use %dx%d or %dx%d, or lru)",
			g.Ways, g.Entries/g.Ways*prevPow2(g.Ways), prevPow2(g.Ways), g.Entries/g.Ways*prevPow2(g.Ways)*2, prevPow2(g.Ways)*2)
	}
	return nil
}

func tlbIsPow2(x int) bool { return x > 0 && x&(x-1) == 0 }

// prevPow2 is the largest power of two not above x (x >= 1).
func prevPow2(x int) int { return 1 << (bits.Len(uint(x)) - 1) }

// Tag layout: bit 63 valid, bit 62 global, bits 61:60 kind (0 leaf, L+1 walk
// cache level L), bits 51:36 ASID (0 when global), bits 35:0 VA prefix.
// Packing everything into one word makes a hit one compare.
const (
	tlbTagValid      = 1 << 63
	tlbTagGlobal     = 1 << 62
	tlbTagKindShift  = 60
	tlbTagASIDShift  = 36
	tlbTagPrefixMask = 1<<36 - 1
	tlbVAMask        = 1<<48 - 1
)

// leafTag tags a non-global (nG=1) translation of va's page in asid.
func leafTag(asid uint16, va uint64) uint64 {
	return tlbTagValid | uint64(asid)<<tlbTagASIDShift | (va&tlbVAMask)>>12
}

// globalLeafTag tags a global (nG=0) translation of va's page: it matches every ASID.
func globalLeafTag(va uint64) uint64 {
	return tlbTagValid | tlbTagGlobal | (va&tlbVAMask)>>12
}

// walkTag tags the level-0/1/2 table descriptor covering va: the prefix is
// the VA bits above the range that descriptor maps (VA[47:39], [47:30], [47:21]).
func walkTag(asid uint16, level int, va uint64) uint64 {
	if uint(level) > 2 {
		panic(fmt.Sprintf("mmu: walkTag level %d (want 0..2)", level))
	}
	return tlbTagValid | uint64(level+1)<<tlbTagKindShift | uint64(asid)<<tlbTagASIDShift |
		(va&tlbVAMask)>>tagShift(level+1)
}

// tagShift is log2 of the VA range one tag of the given kind covers.
func tagShift(kind int) uint {
	if kind == 0 {
		return 12
	}
	return uint(39 - 9*(kind-1))
}

func tagASID(tag uint64) uint16   { return uint16(tag >> tlbTagASIDShift) }
func tagIsGlobal(tag uint64) bool { return tag&tlbTagGlobal != 0 }
func tagKind(tag uint64) int      { return int(tag>>tlbTagKindShift) & 3 }

// tagVA is the lowest VA (48-bit, zero-extended) the tag covers; with
// tagShift(tagKind(tag)) it gives the range for range invalidation.
func tagVA(tag uint64) uint64 { return (tag & tlbTagPrefixMask) << tagShift(tagKind(tag)) & tlbVAMask }

// MarshalText writes the policy's name (in JSON configurations).
func (r Replacement) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a policy's name.
func (r *Replacement) UnmarshalText(b []byte) error {
	v, err := ParseReplacement(string(b))
	*r = v
	return err
}

// MarshalText writes "ENTRIESxWAYS", or "off" for the zero geometry.
func (g TLBGeometry) MarshalText() ([]byte, error) { return []byte(g.String()), nil }

// UnmarshalText reads what MarshalText writes.
func (g *TLBGeometry) UnmarshalText(b []byte) error {
	s := string(b)
	if s == "off" {
		*g = TLBGeometry{}
		return nil
	}
	var rest string
	if n, _ := fmt.Sscanf(s, "%dx%d%s", &g.Entries, &g.Ways, &rest); n < 2 || rest != "" {
		return fmt.Errorf("TLB geometry %q: want ENTRIESxWAYS or off", s)
	}
	return nil
}
