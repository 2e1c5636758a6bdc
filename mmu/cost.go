package mmu

// CostModel gives the emulated cycles each hardware and kernel event costs.
// It is one table for every workload and machine: the entries are physical
// quantities (a descriptor read, a DVM round trip, a zRAM store of a page),
// and what differs between machines (the number of CPUs that must
// acknowledge a broadcast, the broadcast traffic of the other CPUs) enters
// through the formula, not through the numbers. results/calibration.md gives
// the source of each value and checks the table against the published
// measurements of the patch threads (`mmubench calibrate`).
//
// A DSB ISH after broadcast TLBIs waits
//
//	DSB + RT + Σ own operations (DVMOp, or DVMOpASID for an ASID- or VMALL-wide one)
//	    + RT × U / (1 − U),    RT = DVMRoundTrip + DVMAckPerCPU × CPUs
//
// RT is the round trip of the DSB's DVM Sync, acknowledged by every CPU of
// the machine; U is the other CPUs' utilisation of the DVM node, which
// serves TLBIs (DVMOp each) and one Sync at a time (RT each): the mean wait
// of an M/M/1 queue, so that a DSB's latency grows with the broadcasts
// outstanding in the whole machine, linearly while the load is light
// (Andrea Arcangeli measured TLBI latency growing almost linearly with the
// number of CPUs broadcasting at once). See dvmload.go.
type CostModel struct {
	// ClockMHz converts cycles to time (index figures such as loops per
	// emulated second). Cycle costs below assume this clock.
	ClockMHz uint64 `json:"clock_mhz"`

	L1Hit        uint64 `json:"l1_hit"`         // access that hits the L1 TLB
	L2Hit        uint64 `json:"l2_hit"`         // extra cycles of an L1 miss that hits L2
	WalkLevel    uint64 `json:"walk_level"`     // each descriptor read by a walk
	WalkCacheHit uint64 `json:"walk_cache_hit"` // a walk-cache lookup that hits

	TLBIIssue    uint64 `json:"tlbi_issue"`      // issuing one TLBI
	DSB          uint64 `json:"dsb"`             // any DSB: draining the store buffer
	DVMRoundTrip uint64 `json:"dvm_round_trip"`  // DSB after broadcast TLBIs: the DVM sync round trip
	DVMAckPerCPU uint64 `json:"dvm_ack_per_cpu"` // ... each CPU of the machine acknowledging it
	DVMOp        uint64 `json:"dvm_op"`          // service time of one by-VA broadcast TLBI
	DVMOpASID    uint64 `json:"dvm_op_asid"`     // ... of an ASID- or VMALL-wide one (a whole-TLB scan)
	LocalTLBI    uint64 `json:"local_tlbi"`      // DSB after local TLBIs: each of them

	// Kernel work, charged by the emulated kernel (package mm).
	SyscallEntry uint64 `json:"syscall_entry"` // system call entry and return
	FaultEntry   uint64 `json:"fault_entry"`   // exception entry/return and handle_mm_fault's walk
	PTEUpdate    uint64 `json:"pte_update"`    // an atomic update of a PTE by the kernel (a local atomic)
	// CacheLineTransfer is an atomic on a line another CPU wrote last (the
	// range policy's per-mm interval).
	CacheLineTransfer uint64 `json:"cache_line_transfer"`
	PageAlloc         uint64 `json:"page_alloc"`     // allocating a page: buddy/pcp, memcg charge, LRU add
	PageFree          uint64 `json:"page_free"`      // freeing a page
	ZeroPage          uint64 `json:"zero_page"`      // clear_page of 4 KiB
	CopyPage          uint64 `json:"copy_page"`      // copy_page of 4 KiB (COW)
	ReclaimFolio      uint64 `json:"reclaim_folio"`  // shrink_folio_list's work per folio: isolation, LRU and swap-cache locking
	RmapMapping       uint64 `json:"rmap_mapping"`   // an rmap walk visiting one mapping (page_vma_mapped_walk, PTL)
	SwapOut           uint64 `json:"swap_out"`       // writing a page to zRAM (compress, store)
	SwapIn            uint64 `json:"swap_in"`        // reading a page from zRAM (decompress)
	FileRead          uint64 `json:"file_read"`      // a page-cache miss: reading a file page from storage
	ForkMM            uint64 `json:"fork_mm"`        // fork's fixed work: task, mm and VMA copies
	ForkPTE           uint64 `json:"fork_pte"`       // copy_page_range, per PTE copied
	ExecMM            uint64 `json:"exec_mm"`        // exec's fixed work: loading the image, setting up the mm
	ExitMM            uint64 `json:"exit_mm"`        // exit's fixed work besides unmapping
	ContextSwitch     uint64 `json:"context_switch"` // switching to another task on the CPU

	// x86-ipi's shootdown (ipi.go), zero and omitted elsewhere: the
	// issuer's cost per target interrupted (smp_call_function_many: the
	// call-function entry, the ICR write), the round trip from the first
	// send to the last acknowledgement, and what each target spends in the
	// interrupt (entry, flush_tlb_func, acknowledgement, exit).
	IPISend      uint64 `json:"ipi_send,omitempty"`
	IPIRoundTrip uint64 `json:"ipi_round_trip,omitempty"`
	IPIHandler   uint64 `json:"ipi_handler,omitempty"`
}

// DefaultCost is the calibrated cost model (results/calibration.md).
func DefaultCost() CostModel {
	return CostModel{
		ClockMHz: 2500,

		L1Hit:        1,
		L2Hit:        3,
		WalkLevel:    20,
		WalkCacheHit: 2,

		TLBIIssue:    8,
		DSB:          10,
		DVMRoundTrip: 512,
		DVMAckPerCPU: 18,
		DVMOp:        64,
		DVMOpASID:    320,
		LocalTLBI:    10,

		SyscallEntry:      300,
		FaultEntry:        1500,
		PTEUpdate:         20,
		CacheLineTransfer: 125,
		PageAlloc:         700,
		PageFree:          500,
		ZeroPage:          600,
		CopyPage:          1000,
		ReclaimFolio:      6000,
		RmapMapping:       500,
		SwapOut:           2700,
		SwapIn:            1600,
		FileRead:          5000,
		ForkMM:            25000,
		ForkPTE:           30,
		ExecMM:            50000,
		ExitMM:            10000,
		ContextSwitch:     2500,
	}
}

// DefaultCostFor is the default cost table of a machine flavour: arm64's
// calibrated one, or an x86 one. The x86 tables change only what the
// flavour does differently (its invalidation instructions); everything the
// kernel does is arm64's figure, so that a difference between flavours is
// one of flush mechanism. Their values are estimates, not calibrated
// (docs/kernel-model.md §7 gives the sources and says which are guesses).
func DefaultCostFor(a Arch) CostModel {
	c := DefaultCost()
	switch a {
	case ArchX86INVLPGB:
		// INVLPGB issue, TLBSYNC, and the broadcast's round trip over the
		// fabric. No per-instruction latency is published; the round trip
		// is set so that a TLBSYNC after one INVLPGB on 4 CPUs costs about
		// a tenth of an IPI shootdown (Rik van Riel's will-it-scale
		// tlb_flush2_threads on a 36-core Milan: TLB invalidation from 40%
		// to 4% of CPU time). A guess.
		c.TLBIIssue = 40
		c.DSB = 20
		c.DVMRoundTrip = 600
		c.DVMAckPerCPU = 10
		c.DVMOp = 64
		c.DVMOpASID = 320
		c.LocalTLBI = 100 // INVLPG, a guess
	case ArchX86IPI:
		// IPI shootdown: a guess of the order of the published figures
		// (a remote shootdown costs the initiator a few microseconds and
		// each target an interrupt: Amit, "Optimizing the TLB Shootdown
		// Algorithm with Page Access Tracking", USENIX ATC 2017).
		c.TLBIIssue = 0 // no broadcast instruction exists
		c.DSB = 20      // a fence
		c.LocalTLBI = 100
		c.IPISend = 300
		c.IPIRoundTrip = 3000
		c.IPIHandler = 1500
	}
	return c
}
