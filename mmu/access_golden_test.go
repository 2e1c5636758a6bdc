package mmu

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/mmubench/mmubench/pagetable"
	"github.com/mmubench/mmubench/sched"
)

// TestAccessGolden pins the access path's observable behaviour — every
// load's value and fault, every counter of every CPU, every StaleFrame and
// StaleTable report — for a det-mode run of two CPUs that mixes hot sets,
// sweeps past every TLB, faults of every kind, broadcast and local TLBIs,
// DSBs, frames freed and reused behind stale entries, write-protection and
// ASID switches, over TLB geometries and replacement policies. The golden
// hashes were recorded from the access path before its fast path
// (issue 12); a change to them is a change of what the emulator computes.
// MMU_GOLDEN=print prints the table to paste here after an intended change.
func TestAccessGolden(t *testing.T) {
	for i, tc := range accessGoldenConfigs {
		name := fmt.Sprintf("l1=%v/l2=%v/wc=%v/%v", tc.l1, tc.l2, tc.wc, tc.repl)
		got := runAccessGolden(t, i, tc)
		if os.Getenv("MMU_GOLDEN") == "print" {
			fmt.Printf("\t%q: %q,\n", name, got)
			continue
		}
		if want := accessGoldenWant[name]; got != want {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
	}
}

var accessGoldenConfigs = []struct {
	l1, l2, wc TLBGeometry
	repl       Replacement
}{
	{TLBGeometry{48, 48}, TLBGeometry{1280, 5}, TLBGeometry{64, 4}, ReplLRU},
	{TLBGeometry{48, 48}, TLBGeometry{1280, 5}, TLBGeometry{64, 4}, ReplRandom},
	{TLBGeometry{16, 16}, TLBGeometry{256, 256}, TLBGeometry{16, 16}, ReplLRU},
	{TLBGeometry{16, 16}, TLBGeometry{256, 256}, TLBGeometry{16, 16}, ReplPLRU},
	{TLBGeometry{16, 16}, TLBGeometry{256, 256}, TLBGeometry{16, 16}, ReplRandom},
	{TLBGeometry{64, 4}, TLBGeometry{1024, 4}, TLBGeometry{32, 8}, ReplPLRU},
	{TLBGeometry{64, 4}, TLBGeometry{1024, 4}, TLBGeometry{32, 8}, ReplLRU},
	{TLBGeometry{32, 8}, TLBGeometry{}, TLBGeometry{}, ReplLRU},
	{TLBGeometry{32, 8}, TLBGeometry{}, TLBGeometry{64, 4}, ReplRandom},
	{TLBGeometry{128, 128}, TLBGeometry{}, TLBGeometry{64, 64}, ReplLRU},
	{TLBGeometry{1, 1}, TLBGeometry{8, 2}, TLBGeometry{}, ReplLRU},
	{TLBGeometry{12, 12}, TLBGeometry{96, 3}, TLBGeometry{4, 4}, ReplLRU},
}

// goldenObserver hashes the oracle's reports in order.
type goldenObserver struct{ h uint64 }

func (o *goldenObserver) mix(v ...uint64) {
	for _, x := range v {
		o.h = (o.h ^ x) * 0x100000001b3
	}
}
func (o *goldenObserver) StaleFrame(c *CPU, va, pfn uint64, write bool) {
	w := uint64(0)
	if write {
		w = 1
	}
	o.mix(1, uint64(c.ID()), va, pfn, w)
}
func (o *goldenObserver) StaleTable(c *CPU, va, pfn uint64, level int) {
	o.mix(2, uint64(c.ID()), va, pfn, uint64(level))
}

func runAccessGolden(t *testing.T, idx int, tc struct {
	l1, l2, wc TLBGeometry
	repl       Replacement
}) string {
	const pages, pages2, ops = 1300, 200, 5000
	m := newMachine(t, 2, sched.Det, uint64(idx)+1, func(c *Config) {
		c.Frames = 2048
		c.L1, c.L2, c.WalkCache, c.Replacement = tc.l1, tc.l2, tc.wc, tc.repl
	})
	obs := &goldenObserver{h: 0xcbf29ce484222325}
	m.SetObserver(obs)
	// Page attributes by index: mostly Linux's clean writable user page,
	// and read-only, kernel-only, old (AF clear) and global ones.
	attr := func(p int) pagetable.PTE {
		switch {
		case p == 5 || p == 6:
			return userRW &^ pagetable.PTENG
		case p%97 == 0:
			return pagetable.PTEUser | pagetable.PTENG | pagetable.PTEAF | pagetable.PTERdonly
		case p%89 == 0:
			return pagetable.PTENG | pagetable.PTEAF
		case p%83 == 0:
			return userRW &^ pagetable.PTEAF
		}
		return userRW
	}
	sp := mapPages(t, m, 1, testBase, 0, userRW)
	for p := 0; p < pages-100; p++ { // the last 100 pages stay unmapped: translation faults
		f, err := m.Phys().AllocZeroed()
		if err != nil {
			t.Fatal(err)
		}
		if err := sp.tables.Map(sp.va(p), pagetable.NewPage(f, attr(p))); err != nil {
			t.Fatal(err)
		}
		sp.frames = append(sp.frames, f)
	}
	sp2 := mapPages(t, m, 2, testBase+1<<30, pages2, userRW) // another ASID, another level-1 path
	var results [2]uint64
	err := m.Run(func(c *CPU) {
		id := c.ID()
		r := rand.New(rand.NewPCG(uint64(idx)*31+uint64(id), 7))
		cur := sp
		sp.enter(c)
		h := uint64(0xcbf29ce484222325)
		mix := func(v ...uint64) {
			for _, x := range v {
				h = (h ^ x) * 0x100000001b3
			}
		}
		mode, left, sweep, hot := 0, 0, 0, 0
		for op := 0; op < ops; op++ {
			if left == 0 {
				mode, left, hot = []int{0, 0, 0, 1, 2}[r.IntN(5)], 50+r.IntN(400), r.IntN(pages)
			}
			left--
			n := pages
			if cur == sp2 {
				n = pages2 + 20
			}
			var p int
			switch mode {
			case 0:
				p = (hot + r.IntN(40)) % n
			case 1:
				sweep++
				p = sweep % n
			default:
				p = r.IntN(n)
			}
			va := cur.base + uint64(p)<<pagetable.PageShift + 8*uint64(r.IntN(FrameWords))
			switch k := r.IntN(1000); {
			case k == 0:
				_, f := c.Load(va + 1) // unaligned
				mix(0, uint64(f))
			case k == 1:
				_, f := c.Load(va | 1<<50) // beyond 48 bits
				mix(0, uint64(f))
			case k < 700:
				v, f := c.Load(va)
				mix(1, va, v, uint64(f))
			case k < 900:
				mix(2, va, uint64(c.Store(va, uint64(op)<<8|uint64(id))))
			case k < 915:
				c.TLBIVALE1IS(cur.asid, va)
			case k < 916:
				if r.IntN(4) == 0 {
					c.TLBIASIDE1IS(cur.asid)
				} else if r.IntN(4) == 0 {
					c.TLBIVMALLE1IS()
				}
			case k < 918 && id == 0 && r.IntN(8) == 0:
				// The other space's pages and its level-3 table are freed
				// and mapped afresh, with no TLBI: cached walks lead to a
				// freed table, cached leaves to freed frames.
				for i := range pages2 {
					if old, ok := sp2.tables.Unmap(sp2.va(i)); ok {
						if err := m.Phys().Free(old.PFN()); err != nil {
							t.Error(err)
						}
					}
				}
				sp2.tables.FreeEmpty(sp2.base, sp2.base+1<<21, nil)
				for i := range pages2 {
					if f, err := m.Phys().Alloc(); err == nil {
						if err := sp2.tables.Map(sp2.va(i), pagetable.NewPage(f, userRW)); err != nil {
							t.Error(err)
						}
					}
				}
			case k < 926:
				c.TLBIRVALE1IS(cur.asid, va&^0xfff, 1+r.Uint64N(24))
			case k < 933:
				c.TLBIVAE1IS(cur.asid, va)
			case k < 938:
				c.TLBIVALE1(cur.asid, va)
			case k < 955:
				c.DSBISH()
			case k < 970 && id == 0 && cur == sp && p < pages-100:
				// The frame is freed and the page remapped to a new one,
				// with no TLBI: entries still cached lead to a freed or
				// reused frame.
				page := va &^ 0xfff
				if old, ok := sp.tables.Unmap(page); ok {
					if err := m.Phys().Free(old.PFN()); err != nil {
						t.Error(err)
					}
					if f, err := m.Phys().Alloc(); err == nil {
						if err := sp.tables.Map(page, pagetable.NewPage(f, attr(p))); err != nil {
							t.Error(err)
						}
					}
				}
			case k < 985:
				// Write-protect (or make writable-clean again) in memory,
				// as mprotect does, with the TLBI now or never.
				if s, ok := cur.tables.SlotOf(va &^ 0xfff); ok {
					if old := s.Load(); old.Valid() {
						nw := old | pagetable.PTERdonly
						if old.DBM() {
							nw &^= pagetable.PTEDBM
						} else if r.IntN(2) == 0 {
							nw |= pagetable.PTEDBM
						}
						s.CompareAndSwap(old, nw)
						if r.IntN(2) == 0 {
							c.TLBIVALE1IS(cur.asid, va)
						}
					}
				}
			case k < 992 && id == 1:
				if cur == sp {
					cur = sp2
				} else {
					cur = sp
				}
				cur.enter(c)
			default:
				c.Yield()
			}
		}
		results[id] = h
	})
	if err != nil {
		t.Fatal(err)
	}
	hc := fnv.New64a()
	for i := range m.NumCPUs() {
		fmt.Fprintf(hc, "%+v\n", *m.CPU(i).Counters())
	}
	tot := m.Counters()
	return fmt.Sprintf("%016x %016x %016x %016x acc=%d l1h=%d l2h=%d walks=%d wch=%d stale=%d/%d faults=%v",
		results[0], results[1], obs.h, hc.Sum64(), tot.Accesses, tot.L1Hits, tot.L2Hits, tot.Walks, tot.WalkCacheHits,
		tot.StaleFrameAccesses, tot.StaleTableWalks, tot.Faults)
}

var accessGoldenWant = map[string]string{
	"l1=48x48/l2=1280x5/wc=64x4/lru":      "552fdcd9a4000da1 9763ec16f8a56862 52d32de1277a37c9 9cfec5bc33897221 acc=8939 l1h=3290 l2h=1018 walks=4616 wch=4506 stale=355/40 faults=[0 700 268 7 8]",
	"l1=48x48/l2=1280x5/wc=64x4/random":   "3810970776ca9b57 9ff4541629b8e0cd 68fd19f3f3aace6d 18a2120fc8371c48 acc=9066 l1h=3557 l2h=1436 walks=4054 wch=3961 stale=365/92 faults=[0 496 245 11 8]",
	"l1=16x16/l2=256x256/wc=16x16/lru":    "f981d684ab45f7e8 332e50b0e05764f3 ae429a0a2f0d575c d0b3a1ce9451e0c6 acc=8999 l1h=2148 l2h=1817 walks=5007 wch=4911 stale=84/0 faults=[0 1444 219 13 14]",
	"l1=16x16/l2=256x256/wc=16x16/plru":   "c9aaf84376a5dba1 eb7051d1629eabfe ed315cc02b2a2b7b f0b453bda7b0981d acc=9023 l1h=1790 l2h=2121 walks=5087 wch=5011 stale=174/403 faults=[0 939 194 13 12]",
	"l1=16x16/l2=256x256/wc=16x16/random": "e2ce80e57e91712d c3b904d02ed2e279 a2980c1a6d069eab 970ecbcd0425f18c acc=9018 l1h=1908 l2h=2279 walks=4812 wch=4719 stale=44/8 faults=[0 706 270 8 11]",
	"l1=64x4/l2=1024x4/wc=32x8/plru":      "9de5962ece6bff35 74465647d25d93be cf5b33713d801e86 e862eca4b3cd6b17 acc=9070 l1h=3745 l2h=1725 walks=3580 wch=3500 stale=128/0 faults=[0 680 226 12 8]",
	"l1=64x4/l2=1024x4/wc=32x8/lru":       "42801668e23b04d8 c06cfb1d49ccaa62 f711cd2e1a1f225f 55b22fe21f7801c9 acc=8988 l1h=3163 l2h=1476 walks=4324 wch=4204 stale=786/90 faults=[0 574 237 17 8]",
	"l1=32x8/l2=off/wc=off/lru":           "35858a76987f2d43 0f1cb8f74e54779f dae1668bc2a5bcb7 df3429b954bb72e7 acc=8974 l1h=3638 l2h=0 walks=5314 wch=0 stale=113/0 faults=[0 818 258 14 8]",
	"l1=32x8/l2=off/wc=64x4/random":       "13602bacce5d6cbf b363b4a218066daa 43b65c134d6778e9 bd1fa6a7fa6e8c4f acc=9042 l1h=1951 l2h=0 walks=7069 wch=6977 stale=9/0 faults=[0 599 214 13 9]",
	"l1=128x128/l2=off/wc=64x64/lru":      "0aa5a9762d4109ae 9be1036ad5796988 3ee766cca9ee3005 abb0a8014a4f65d0 acc=8995 l1h=4060 l2h=0 walks=4916 wch=4819 stale=42/7 faults=[0 604 289 9 10]",
	"l1=1x1/l2=8x2/wc=off/lru":            "d2078089c8220914 fa29f556498508cc 9ea197ba17e1dfd0 51a5ad9a251c8849 acc=8967 l1h=127 l2h=833 walks=7989 wch=0 stale=2/0 faults=[0 543 295 10 8]",
	"l1=12x12/l2=96x3/wc=4x4/lru":         "e8852a77c797da5a b6c3e3e755320ae8 38588f1a6c073d9f 64af0fe3cdd410f9 acc=9006 l1h=1355 l2h=2025 walks=5606 wch=5482 stale=152/18 faults=[0 794 286 10 10]",
}
