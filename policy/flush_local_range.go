package policy

import (
	"errors"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/pagetable"
)

// FlushLocalRange is the example of docs/your-policy.md, a policy a
// reviewer might be sent: flush_tlb_batched_pending flushes only the range
// of the page table whose PTL its caller holds — the PTEs it is about to
// look at — with the caller's own TLBIs and DSB, instead of the whole mm.
// It is as cheap as range without its shared interval. Is it correct? Not
// quite: the caller then marks every pending batch flushed, so a batch that
// also unmapped a page in another table is never flushed for it, and the
// next call that takes that table's PTL finds nothing pending
// (reclaim-mprotect-spread shows it; on the seed races, whose pages share
// one table, it looks correct).
type FlushLocalRange struct{ deferred }

func init() {
	RegisterBatch("flush-local-range",
		"example (docs/your-policy.md): flush_tlb_batched_pending flushes only the caller's page-table range with its own TLBIs + DSB; wrong across tables",
		FlushLocalRange{})
}

func (FlushLocalRange) Name() string { return "flush-local-range" }

// CheckArch refuses x86-ipi: the policy issues a broadcast range TLBI
// itself, which that machine does not have.
func (FlushLocalRange) CheckArch(a mmu.Arch) error {
	if a == mmu.ArchX86IPI {
		return errors.New("not expressible: it issues a broadcast range TLBI (TLBI RVALE1IS, INVLPGB) itself, and x86-ipi has no broadcast invalidation")
	}
	return nil
}

func (FlushLocalRange) FlushPending(t *mm.Task, m *mm.MM) {
	lo, hi, ok := t.LockedTable()
	if !ok {
		t.FlushTLBMM(m) // not under a table's PTL: be safe
		return
	}
	// One range TLBI covers the table (FEAT_TLBIRANGE: 512 pages is one
	// RVALE1IS), so no fallback to flush_tlb_mm.
	c := t.CPU()
	c.DSBISHST()
	t.TLBIUser(mmu.RVALE1IS, m, lo, (hi-lo)>>pagetable.PageShift)
	c.DSBISH()
}
