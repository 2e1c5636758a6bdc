package policy

import "github.com/mmubench/mmubench/mm"

// NestedNone flushes only what this gather recorded: the MADV_FREE and
// MADV_DONTNEED races of 2017 (docs/kernel-model.md §1, race B).
type NestedNone struct{}

func (NestedNone) Name() string                         { return "none" }
func (NestedNone) FinishNested(*mm.Task, *mm.MMUGather) {}

// NestedRange is the 2017 fix (99baac21e458): a nested gather flushes the
// whole range of its operation, including PTEs another thread changed.
type NestedRange struct{}

func (NestedRange) Name() string                             { return "range" }
func (NestedRange) FinishNested(_ *mm.Task, g *mm.MMUGather) { g.SetRange(g.Start, g.End) }

// NestedFullMM is today's form (7a30df49f63a): a nested gather flushes the
// whole mm; on arm64 one ASIDE1IS beats many CPUs spamming VALE1IS.
type NestedFullMM struct{}

func (NestedFullMM) Name() string                             { return "fullmm" }
func (NestedFullMM) FinishNested(_ *mm.Task, g *mm.MMUGather) { g.SetFullMM() }
