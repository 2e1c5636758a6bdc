// Package policy holds the TLB flush policies the emulated kernel is run
// under, each a small type implementing a hook interface of package mm:
//
//   - batched unmap (mm.BatchPolicy), what reclaim's deferred flush and
//     flush_tlb_batched_pending do: no-batch, dsb-only, flush-mm, range,
//     range-ideal;
//   - nested gathers (mm.NestedPolicy), what tlb_finish_mmu does when
//     another mmu_gather on the mm is live: none, range, fullmm.
//
// The names are the project's; docs/kernel-model.md §1 maps each to its kernel commit.
package policy

import (
	"fmt"
	"strings"

	"github.com/mmubench/mmubench/mm"
)

// Info names and describes a policy.
type Info struct {
	Name, Description string
}

// BatchPolicies lists the batched-unmap policies.
var BatchPolicies = []Info{
	{"no-batch", "no deferral: every reclaim unmap does TLBI + DSB at once (arm64 before 43b3dfdd0455)"},
	{"dsb-only", "deferred TLBIs; flush_tlb_batched_pending is a bare DSB on the calling CPU (arm64 43b3dfdd0455 until 2025: unsafe)"},
	{"flush-mm", "deferred TLBIs; flush_tlb_batched_pending flushes the whole mm with its own TLBI + DSB (4b634918384c, 2025)"},
	{"range", "deferred TLBIs; flush_tlb_batched_pending flushes the interval of pending pages (one CAS per deferred unmap) with its own range TLBIs + DSB, flush-mm from 512 pages"},
	{"range-ideal", "like range but exactly the pending pages, tracked per mm and per task at no cost: a lower bound, not implementable"},
}

// NestedPolicies lists the nested-gather policies.
var NestedPolicies = []Info{
	{"none", "tlb_finish_mmu ignores concurrent gathers (before 99baac21e458: the MADV_FREE/DONTNEED race)"},
	{"range", "a nested tlb_finish_mmu flushes its whole [start, end) (99baac21e458, 2017)"},
	{"fullmm", "a nested tlb_finish_mmu flushes the whole mm (7a30df49f63a, today)"},
}

// Batch returns the batched-unmap policy called name.
func Batch(name string) (mm.BatchPolicy, error) {
	switch name {
	case "no-batch":
		return NoBatch{}, nil
	case "dsb-only":
		return DSBOnly{}, nil
	case "flush-mm":
		return FlushMM{}, nil
	case "range":
		return Range{}, nil
	case "range-ideal":
		return RangeIdeal{}, nil
	}
	return nil, fmt.Errorf("unknown policy %q (valid: %s)", name, names(BatchPolicies))
}

// Nested returns the nested-gather policy called name.
func Nested(name string) (mm.NestedPolicy, error) {
	switch name {
	case "none":
		return NestedNone{}, nil
	case "range":
		return NestedRange{}, nil
	case "fullmm":
		return NestedFullMM{}, nil
	}
	return nil, fmt.Errorf("unknown nested policy %q (valid: %s)", name, names(NestedPolicies))
}

func names(infos []Info) string {
	var n []string
	for _, i := range infos {
		n = append(n, i.Name)
	}
	return strings.Join(n, ", ")
}
