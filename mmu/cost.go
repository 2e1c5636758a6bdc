package mmu

// CostModel gives the emulated cycles each hardware event costs. The defaults
// follow a Cortex-A76/Neoverse-N1-class core (KERNEL.md §5): an L1 TLB hit is
// folded into the load pipeline, an L2 TLB hit costs a few cycles, and each
// descriptor read of a walk is a cache access. A DSB after broadcast TLBIs
// waits for a round trip over the interconnect plus an acknowledgement per
// operation: the cost Barry Song measured as 95% of ptep_clear_flush.
type CostModel struct {
	L1Hit        uint64 `json:"l1_hit"`         // access that hits the L1 TLB
	L2Hit        uint64 `json:"l2_hit"`         // extra cycles of an L1 miss that hits L2
	WalkLevel    uint64 `json:"walk_level"`     // each descriptor read by a walk
	WalkCacheHit uint64 `json:"walk_cache_hit"` // a walk-cache lookup that hits
	TLBIIssue    uint64 `json:"tlbi_issue"`     // issuing one TLBI
	DSB          uint64 `json:"dsb"`            // any DSB, with nothing to wait for
	DSBRoundTrip uint64 `json:"dsb_round_trip"` // DSB after broadcast TLBIs: completion round trip
	DSBPerTLBI   uint64 `json:"dsb_per_tlbi"`   // DSB: each TLBI issued since the last DSB
	FaultEntry   uint64 `json:"fault_entry"`    // taking an exception into the kernel (charged by mm)
	SyscallEntry uint64 `json:"syscall_entry"`  // a system call's entry and return (charged by mm)
}

// DefaultCost is the documented default cost model.
func DefaultCost() CostModel {
	return CostModel{
		L1Hit:        1,
		L2Hit:        3,
		WalkLevel:    20,
		WalkCacheHit: 2,
		TLBIIssue:    5,
		DSB:          10,
		DSBRoundTrip: 200,
		DSBPerTLBI:   10,
		FaultEntry:   300,
		SyscallEntry: 150,
	}
}
