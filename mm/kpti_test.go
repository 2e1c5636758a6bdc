package mm_test

import (
	"errors"
	"testing"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
)

// With KPTI every mm has an ASID pair and user code runs with the odd one;
// each user TLBI the kernel issues goes out twice, first for the even
// (kernel) ASID, which caches nothing, then for the user one, which is
// what removes the stale entry: after mprotect read-only a store faults.
func TestKPTI(t *testing.T) {
	for _, tc := range []struct {
		name string
		kpti bool
		per  uint64 // TLBIs per user TLBI the kernel issues (and ASIDs per mm)
	}{
		{"off", false, 1},
		{"on", true, 2},
	} {
		kpti, per := tc.kpti, tc.per
		t.Run(tc.name, func(t *testing.T) {
			g := newRigWith(t, 2, "flush-mm", "fullmm", 1, func(c *mmu.Config) { c.KPTI = kpti })
			var asids []uint16
			for range 3 {
				space, err := g.k.NewMM()
				must(t, err)
				asids = append(asids, space.ASID())
			}
			for i, a := range asids {
				if kpti && a&1 == 0 {
					t.Errorf("mm %d has ASID %d: with KPTI user code runs with the odd one of a pair", i, a)
				}
				if i > 0 && a-asids[i-1] != uint16(per) {
					t.Errorf("ASIDs %v: want one pair per mm", asids)
				}
			}
			g.single(t, func(tk *mm.Task) {
				c := tk.CPU()
				if got := c.ASID(); got != tk.MM().ASID() {
					t.Errorf("user code runs with ASID %d, the mm's is %d", got, tk.MM().ASID())
				}
				va, err := tk.Mmap(page, mm.ProtRead|mm.ProtWrite, false)
				must(t, err)
				must(t, tk.Store(va, 1)) // the TLB now holds va writable
				ctr := c.Counters()
				vale1, aside1 := ctr.TLBI[mmu.VALE1IS], ctr.TLBI[mmu.ASIDE1IS]
				tk.FlushTLBPage(tk.MM(), va)
				tk.FlushTLBMM(tk.MM())
				if n := ctr.TLBI[mmu.VALE1IS] - vale1; n != per {
					t.Errorf("flush_tlb_page issued %d TLBI VALE1IS, want %d", n, per)
				}
				if n := ctr.TLBI[mmu.ASIDE1IS] - aside1; n != per {
					t.Errorf("flush_tlb_mm issued %d TLBI ASIDE1IS, want %d", n, per)
				}
				must(t, tk.Store(va, 2))
				vale1 = ctr.TLBI[mmu.VALE1IS]
				must(t, tk.Mprotect(va, page, mm.ProtRead))
				if n := ctr.TLBI[mmu.VALE1IS] - vale1; n != per {
					t.Errorf("mprotect of a page issued %d TLBI VALE1IS, want %d", n, per)
				}
				var segv *mm.SegvError
				if err := tk.Store(va, 3); !errors.As(err, &segv) {
					t.Errorf("store after mprotect read-only: %v, want SIGSEGV (the user ASID's entry must be gone)", err)
				}
			})
			if n := g.k.Oracle().Count(mm.ProtectionViolation); n != 0 {
				t.Errorf("%d protection violations", n)
			}
		})
	}
}
