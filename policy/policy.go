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

// BatchPolicies lists the batched-unmap policies, in the order they were
// registered (the project's first).
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

var (
	batchByName = map[string]mm.BatchPolicy{
		"no-batch": NoBatch{}, "dsb-only": DSBOnly{}, "flush-mm": FlushMM{}, "range": Range{}, "range-ideal": RangeIdeal{},
	}
	nestedByName = map[string]mm.NestedPolicy{"none": NestedNone{}, "range": NestedRange{}, "fullmm": NestedFullMM{}}
)

// RegisterBatch adds a batched-unmap policy: a file of its own calls it
// from its init (docs/your-policy.md). p.Name() must be name. Policies
// are values shared by every run: keep their state in the mm or the task.
func RegisterBatch(name, description string, p mm.BatchPolicy) {
	if _, dup := batchByName[name]; dup || p.Name() != name {
		panic(fmt.Sprintf("policy: batch policy %q registered twice, or named %q", name, p.Name()))
	}
	batchByName[name] = p
	BatchPolicies = append(BatchPolicies, Info{name, description})
}

// RegisterNested adds a nested-gather policy, as RegisterBatch does.
func RegisterNested(name, description string, p mm.NestedPolicy) {
	if _, dup := nestedByName[name]; dup || p.Name() != name {
		panic(fmt.Sprintf("policy: nested policy %q registered twice, or named %q", name, p.Name()))
	}
	nestedByName[name] = p
	NestedPolicies = append(NestedPolicies, Info{name, description})
}

// Batch returns the batched-unmap policy called name.
func Batch(name string) (mm.BatchPolicy, error) {
	if p, ok := batchByName[name]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("unknown policy %q (valid: %s)", name, names(BatchPolicies))
}

// Nested returns the nested-gather policy called name.
func Nested(name string) (mm.NestedPolicy, error) {
	if p, ok := nestedByName[name]; ok {
		return p, nil
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
