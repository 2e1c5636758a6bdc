package mmu

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestTLBGeometryValidate(t *testing.T) {
	for _, c := range []struct {
		g    TLBGeometry
		r    Replacement
		want string // error fragment; "" = valid
	}{
		{TLBGeometry{48, 48}, ReplLRU, ""},
		{TLBGeometry{48, 48}, ReplRandom, ""},
		{TLBGeometry{1280, 5}, ReplLRU, ""},
		{TLBGeometry{64, 4}, ReplPLRU, ""},
		{TLBGeometry{1, 1}, ReplPLRU, ""},
		{TLBGeometry{1 << 16, 1 << 16}, ReplPLRU, ""},
		{TLBGeometry{1 << 16, 1}, ReplLRU, ""},
		{TLBGeometry{0, 1}, ReplLRU, "entries must be positive"},
		{TLBGeometry{-4, 4}, ReplLRU, "entries must be positive"},
		{TLBGeometry{4, 0}, ReplLRU, "ways must be positive"},
		{TLBGeometry{4, -1}, ReplLRU, "ways must be positive"},
		{TLBGeometry{1280, 3}, ReplLRU, "3 ways do not divide 1280 entries"},
		{TLBGeometry{4, 8}, ReplLRU, "8 ways do not divide 4 entries"},
		{TLBGeometry{1200, 5}, ReplLRU, "240 sets is not a power of two"},
		{TLBGeometry{1280, 5}, ReplPLRU, "plru needs a power-of-two number of ways, not 5"},
		{TLBGeometry{48, 48}, ReplPLRU, "plru needs a power-of-two"},
		{TLBGeometry{1<<16 + 1, 1}, ReplLRU, "more than 65536 entries"},
		{TLBGeometry{1 << 17, 2}, ReplLRU, "more than 65536 entries"},
		{TLBGeometry{64, 4}, Replacement(9), "unknown replacement policy Replacement(9)"},
	} {
		err := c.g.Validate(c.r)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v/%v: unexpected error %v", c.g, c.r, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v/%v: error %v, want one containing %q", c.g, c.r, err, c.want)
		case err != nil && (strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), c.g.String())):
			t.Errorf("%v/%v: error %q should be one line naming the geometry", c.g, c.r, err)
		}
		if _, nerr := newTLB(c.g, c.r, 1); (nerr == nil) != (err == nil) {
			t.Errorf("%v/%v: newTLB error %v disagrees with Validate %v", c.g, c.r, nerr, err)
		}
	}
	if g := (TLBGeometry{1280, 5}); g.Sets() != 256 || g.String() != "1280x5" {
		t.Errorf("1280x5: Sets %d String %q", g.Sets(), g.String())
	}
}

func TestReplacementNames(t *testing.T) {
	for _, r := range []Replacement{ReplLRU, ReplRandom, ReplPLRU} {
		got, err := ParseReplacement(strings.ToUpper(r.String()))
		if err != nil || got != r {
			t.Errorf("ParseReplacement(%q) = %v, %v", r.String(), got, err)
		}
	}
	if ReplLRU.String() != "lru" || ReplRandom.String() != "random" || ReplPLRU.String() != "plru" {
		t.Errorf("names: %v %v %v", ReplLRU, ReplRandom, ReplPLRU)
	}
	_, err := ParseReplacement("fifo")
	if err == nil || !strings.Contains(err.Error(), "lru, random, plru") {
		t.Errorf("ParseReplacement(fifo) error %v should list the valid policies", err)
	}
}

func TestTLBTags(t *testing.T) {
	vas := []uint64{0, 0x1000, 0x7fff_ffff_f000, 0x12_3456_7000, 0x8000_0000_0000 - 0x20_0000, 0x4000_0000, 0x80_0000_0000}
	asids := []uint16{0, 1, 0xffff}
	type key struct {
		kind   int
		global bool
		asid   uint16
		prefix uint64
	}
	seen := map[uint64]key{}
	add := func(tag uint64, k key) {
		t.Helper()
		if tag&tlbTagValid == 0 {
			t.Fatalf("tag %#x (%+v) lacks the valid bit", tag, k)
		}
		if old, ok := seen[tag]; ok && old != k {
			t.Fatalf("tag %#x collides: %+v and %+v", tag, old, k)
		}
		seen[tag] = k
		if tagKind(tag) != k.kind || tagIsGlobal(tag) != k.global || tagASID(tag) != k.asid {
			t.Fatalf("tag %#x decodes to kind %d global %v asid %d, want %+v", tag, tagKind(tag), tagIsGlobal(tag), tagASID(tag), k)
		}
		if tagVA(tag)>>tagShift(k.kind) != k.prefix {
			t.Fatalf("tag %#x: tagVA %#x, want prefix %#x", tag, tagVA(tag), k.prefix)
		}
	}
	for _, va := range vas {
		add(globalLeafTag(va), key{0, true, 0, va >> 12})
		for _, a := range asids {
			add(leafTag(a, va), key{0, false, a, va >> 12})
			for l, shift := range []uint{39, 30, 21} {
				add(walkTag(a, l, va), key{l + 1, false, a, va >> shift})
			}
		}
	}
	// The tag ignores VA bits above 47 (the access path distinguishes TTBR0/TTBR1).
	if leafTag(5, 0xffff_0000_0000_3000) != leafTag(5, 0x3000) {
		t.Error("leafTag depends on VA[63:48]")
	}
	if walkTag(1, 0, 0xffff_ff80_0000_0000) != walkTag(1, 0, 0xff80_0000_0000) {
		t.Error("walkTag depends on VA[63:48]")
	}
	// Same-page offsets share a tag; a walk tag covers its whole range.
	if leafTag(1, 0x5000) != leafTag(1, 0x5fff) || walkTag(1, 2, 0x20_0000) != walkTag(1, 2, 0x3f_ffff) ||
		walkTag(1, 2, 0x20_0000) == walkTag(1, 2, 0x40_0000) {
		t.Error("tag granularity wrong")
	}

	// Consecutive pages land in consecutive sets; ASID and global variants of a page share its set.
	tl, _ := newTLB(TLBGeometry{1280, 5}, ReplLRU, 1)
	base := uint64(0x7f12_3456_7000)
	for i := range uint64(600) {
		va := base + i<<12
		set := leafTag(3, va) & tl.setMask
		if want := (leafTag(3, base)&tl.setMask + i) % 256; set != want {
			t.Fatalf("page %d: set %d, want %d", i, set, want)
		}
		if globalLeafTag(va)&tl.setMask != set || leafTag(9, va)&tl.setMask != set {
			t.Fatalf("page %d: ASID/global variants in different sets", i)
		}
	}
	// Consecutive 2 MiB ranges spread the walk cache's level-2 entries across its sets.
	wc, _ := newTLB(TLBGeometry{64, 4}, ReplLRU, 1)
	for i := range uint64(16) {
		if walkTag(1, 2, i<<21)&wc.setMask != i {
			t.Fatalf("level-2 walk tag %d not in set %d", i, i)
		}
	}
}

func TestTLBInsertSemantics(t *testing.T) {
	tl, _ := newTLB(TLBGeometry{8, 2}, ReplLRU, 1)
	a, b, c := leafTag(1, 0), leafTag(1, 4<<12), leafTag(1, 8<<12) // all in set 0
	for _, tag := range []uint64{a, b} {
		if _, did := tl.insert(tlbEntry{tag: tag, pfn: 1}); did {
			t.Fatal("evicted while the set had an invalid way")
		}
	}
	if tl.entries[0].tag != a || tl.entries[1].tag != b {
		t.Fatal("fills did not use the lowest invalid way")
	}
	// Overwrite in place: no eviction, new payload, and it counts as a use.
	if _, did := tl.insert(tlbEntry{tag: a, pfn: 2, gen: 7, perm: 3, level: 3, desc: 0x1238}); did || tl.len() != 2 {
		t.Fatal("overwrite evicted or changed len")
	}
	if e := tl.lookup(b); e == nil || e.pfn != 1 {
		t.Fatal("b lost")
	}
	e := tl.lookup(a)
	if e == nil || *e != (tlbEntry{tag: a, pfn: 2, gen: 7, perm: 3, level: 3, desc: 0x1238}) {
		t.Fatalf("overwritten entry = %+v", e)
	}
	ev, did := tl.insert(tlbEntry{tag: c}) // a was used last: b is LRU
	if !did || ev.tag != b || ev.pfn != 1 {
		t.Fatalf("evicted %+v (%v), want b", ev, did)
	}
	if tl.lookup(b) != nil || tl.lookup(a) == nil || tl.lookup(c) == nil {
		t.Fatal("wrong survivors")
	}
	if tl.invalidateTag(a) != 1 || tl.invalidateTag(a) != 0 || tl.invalidateTag(0) != 0 || tl.len() != 1 {
		t.Fatal("invalidateTag counts")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("insert of an invalid tag did not panic")
			}
		}()
		tl.insert(tlbEntry{tag: 0x1234})
	}()

	// PLRU differs from LRU: fill A..D, touch A; the tree then points at C, LRU at B.
	for _, want := range []struct {
		r      Replacement
		victim int
	}{{ReplLRU, 1}, {ReplPLRU, 2}} {
		tl, _ := newTLB(TLBGeometry{4, 4}, want.r, 1)
		var tags []uint64
		for i := range 4 {
			tags = append(tags, leafTag(1, uint64(i)<<12))
			tl.insert(tlbEntry{tag: tags[i]})
		}
		tl.lookup(tags[0])
		if ev, _ := tl.insert(tlbEntry{tag: leafTag(2, 0)}); ev.tag != tags[want.victim] {
			t.Errorf("%v: evicted %#x, want way %d", want.r, ev.tag, want.victim)
		}
	}
}

func TestTLBInvalidateAndLeafLookup(t *testing.T) {
	lookupLeaf := func(tl *tlb, asid uint16, va uint64) *tlbEntry { // as the access path probes
		if e := tl.lookup(leafTag(asid, va)); e != nil {
			return e
		}
		return tl.lookup(globalLeafTag(va))
	}
	for _, g := range []TLBGeometry{{48, 48}, {1280, 5}} {
		tl, _ := newTLB(g, ReplLRU, 1)
		tl.insert(tlbEntry{tag: leafTag(1, 0x1000), pfn: 11})
		tl.insert(tlbEntry{tag: leafTag(2, 0x1000), pfn: 12})
		tl.insert(tlbEntry{tag: globalLeafTag(0x1000), pfn: 13})
		tl.insert(tlbEntry{tag: walkTag(1, 1, 0x1000), pfn: 14})
		tl.insert(tlbEntry{tag: leafTag(0, 0x2000), pfn: 15})
		if e := lookupLeaf(tl, 1, 0x1abc); e == nil || e.pfn != 11 {
			t.Fatalf("%v: ASID entry should win over global: %+v", g, e)
		}
		if e := lookupLeaf(tl, 3, 0x1abc); e == nil || e.pfn != 13 {
			t.Fatalf("%v: global entry should match any ASID: %+v", g, e)
		}
		if lookupLeaf(tl, 1, 0x3000) != nil {
			t.Fatalf("%v: phantom hit", g)
		}
		if n := tl.invalidateASID(1); n != 2 { // leaf + walk entry, not the global
			t.Fatalf("%v: invalidateASID(1) = %d, want 2", g, n)
		}
		if n := tl.invalidateASID(0); n != 1 { // ASID 0 is not "global"
			t.Fatalf("%v: invalidateASID(0) = %d, want 1", g, n)
		}
		if e := lookupLeaf(tl, 1, 0x1000); e == nil || e.pfn != 13 {
			t.Fatalf("%v: global entry lost", g)
		}
		if n := tl.invalidateMatch(func(e *tlbEntry) bool { return tagIsGlobal(e.tag) }); n != 1 || tl.len() != 1 {
			t.Fatalf("%v: invalidateMatch = %d, len %d", g, n, tl.len())
		}
		if n := tl.invalidateAll(); n != 1 || tl.len() != 0 || tl.lookup(leafTag(2, 0x1000)) != nil {
			t.Fatalf("%v: invalidateAll = %d", g, n)
		}
		if tl.geometry() != g {
			t.Fatalf("geometry() = %v", tl.geometry())
		}
	}
}

func TestTLBRandomDeterministic(t *testing.T) {
	run := func(seed uint64) []uint64 {
		tl, _ := newTLB(TLBGeometry{64, 4}, ReplRandom, seed)
		var out []uint64
		for i := range uint64(2000) {
			if ev, did := tl.insert(tlbEntry{tag: leafTag(1, (i*7919%512)<<12)}); did {
				out = append(out, ev.tag)
			}
		}
		return out
	}
	a, b, c := run(1), run(1), run(2)
	if fmt.Sprint(a) != fmt.Sprint(b) || fmt.Sprint(a) == fmt.Sprint(c) {
		t.Fatal("random replacement is not a deterministic function of the seed")
	}
}

// tlbBenchStream fills tl with resident leaf pages and returns a random
// order of them: every lookup hits.
func tlbBenchStream(b *testing.B, g TLBGeometry, r Replacement) (*tlb, []uint64) {
	tl, err := newTLB(g, r, 1)
	if err != nil {
		b.Fatal(err)
	}
	base := uint64(0x7f00_0000_0000)
	var resident []uint64
	for i := range uint64(g.Entries) {
		tag := leafTag(7, base+i<<12)
		tl.insert(tlbEntry{tag: tag, pfn: i})
		resident = append(resident, tag)
	}
	if tl.len() != g.Entries {
		b.Fatalf("filled %d of %d", tl.len(), g.Entries)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	stream := make([]uint64, 4096)
	for i := range stream {
		stream[i] = resident[rnd.IntN(len(resident))]
	}
	return tl, stream
}

func BenchmarkTLBLookup(b *testing.B) {
	for _, g := range []TLBGeometry{{48, 48}, {1280, 5}} {
		b.Run("geom="+g.String(), func(b *testing.B) { tlbBenchLookup(b, g, ReplLRU) })
	}
}

// BenchmarkTLBLookupRepl is BenchmarkTLBLookup per replacement policy.
func BenchmarkTLBLookupRepl(b *testing.B) {
	for _, g := range []TLBGeometry{{48, 48}, {64, 64}, {1280, 5}, {1024, 4}} {
		for _, r := range []Replacement{ReplLRU, ReplRandom, ReplPLRU} {
			if g.Validate(r) == nil {
				b.Run(fmt.Sprintf("geom=%v/repl=%v", g, r), func(b *testing.B) { tlbBenchLookup(b, g, r) })
			}
		}
	}
}

func tlbBenchLookup(b *testing.B, g TLBGeometry, r Replacement) {
	tl, stream := tlbBenchStream(b, g, r)
	var sum uint64
	i := 0
	for b.Loop() {
		e := tl.lookup(stream[i&(len(stream)-1)])
		if e == nil {
			b.Fatal("miss")
		}
		sum += e.pfn
		i++
	}
	if sum == 1 {
		b.Log(sum)
	}
}

// BenchmarkTLBInsertMiss measures the miss path: a fill that evicts.
func BenchmarkTLBInsertMiss(b *testing.B) {
	for _, g := range []TLBGeometry{{48, 48}, {1280, 5}} {
		b.Run("geom="+g.String(), func(b *testing.B) {
			tl, _ := tlbBenchStream(b, g, ReplLRU)
			page := uint64(1 << 30)
			for b.Loop() {
				page++
				tl.insert(tlbEntry{tag: leafTag(7, page<<12)})
			}
		})
	}
}
