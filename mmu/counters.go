package mmu

// Fault is the outcome of an access the hardware could not complete; the
// kernel above handles it.
type Fault uint8

const (
	FaultNone        Fault = iota
	FaultTranslation       // no valid descriptor (Linux: handle_mm_fault of a not-present PTE)
	FaultPermission        // EL0 no access, or a write to a read-only non-DBM descriptor
	FaultAlignment         // a word access not 8-byte aligned
	FaultAddressSize       // VA beyond 48 bits
	NumFaultKinds
)

var faultNames = [...]string{"none", "translation", "permission", "alignment", "address-size"}

func (f Fault) String() string {
	if f < NumFaultKinds {
		return faultNames[f]
	}
	return "fault?"
}

// TLBIKind is a TLB maintenance operation.
type TLBIKind uint8

const (
	VALE1IS   TLBIKind = iota // last-level entries for one VA+ASID, broadcast
	VAE1IS                    // all levels (incl. walk cache) for one VA+ASID, broadcast
	ASIDE1IS                  // every non-global entry of one ASID, broadcast
	VMALLE1IS                 // everything, broadcast
	RVALE1IS                  // last-level entries of a VA range+ASID, broadcast (FEAT_TLBIRANGE)
	VALE1                     // local forms: this CPU only
	VAE1
	ASIDE1
	VMALLE1
	RVALE1
	NumTLBIKinds
)

var tlbiNames = [...]string{"VALE1IS", "VAE1IS", "ASIDE1IS", "VMALLE1IS", "RVALE1IS", "VALE1", "VAE1", "ASIDE1", "VMALLE1", "RVALE1"}

func (k TLBIKind) String() string {
	if k < NumTLBIKinds {
		return tlbiNames[k]
	}
	return "TLBI?"
}

// Broadcast reports whether the operation is an Inner Shareable one.
func (k TLBIKind) Broadcast() bool { return k < VALE1 }

// Counters are one CPU's event counts; Machine.Counters sums them.
type Counters struct {
	Accesses      uint64 `json:"accesses"`
	Stores        uint64 `json:"stores"`
	L1Hits        uint64 `json:"l1_hits"`
	L1Misses      uint64 `json:"l1_misses"`
	L2Hits        uint64 `json:"l2_hits"`
	L2Misses      uint64 `json:"l2_misses"`
	Walks         uint64 `json:"walks"`
	WalkReads     uint64 `json:"walk_reads"` // descriptors read by walks (levels touched)
	WalkCacheHits uint64 `json:"walk_cache_hits"`
	AFUpdates     uint64 `json:"af_updates"`    // hardware Access flag updates
	DirtyUpdates  uint64 `json:"dirty_updates"` // hardware dirty-state (DBM) updates
	// StaleFrameAccesses counts accesses through a TLB entry whose frame
	// was freed or reused after the entry was filled.
	StaleFrameAccesses uint64 `json:"stale_frame_accesses"`
	// StaleTableWalks counts walks that began at a table frame, reached
	// through the walk cache, freed or reused after the entry was filled.
	StaleTableWalks uint64                `json:"stale_table_walks"`
	Faults          [NumFaultKinds]uint64 `json:"faults"`
	TLBI            [NumTLBIKinds]uint64  `json:"tlbi"` // operations issued, by kind
	InvalsApplied   uint64                `json:"invals_applied"`
	EntriesRemoved  uint64                `json:"entries_removed"` // TLB and walk-cache entries removed by applied invalidations
	DSBs            uint64                `json:"dsbs"`            // DSB ISH
	DSBSTs          uint64                `json:"dsb_sts"`         // DSB ISHST
	DSBWaitCycles   uint64                `json:"dsb_wait_cycles"`
	Cycles          uint64                `json:"cycles"`
	// Walks that refilled a translation flush_tlb_batched_pending's flush
	// removed, and their walk cycles (flushrefill.go).
	FlushRefills    uint64 `json:"flush_refills"`
	FlushLostCycles uint64 `json:"flush_lost_cycles"`
}

// Add adds o into c.
func (c *Counters) Add(o *Counters) {
	c.Accesses += o.Accesses
	c.Stores += o.Stores
	c.L1Hits += o.L1Hits
	c.L1Misses += o.L1Misses
	c.L2Hits += o.L2Hits
	c.L2Misses += o.L2Misses
	c.Walks += o.Walks
	c.WalkReads += o.WalkReads
	c.WalkCacheHits += o.WalkCacheHits
	c.AFUpdates += o.AFUpdates
	c.DirtyUpdates += o.DirtyUpdates
	c.StaleFrameAccesses += o.StaleFrameAccesses
	c.StaleTableWalks += o.StaleTableWalks
	for i := range c.Faults {
		c.Faults[i] += o.Faults[i]
	}
	for i := range c.TLBI {
		c.TLBI[i] += o.TLBI[i]
	}
	c.InvalsApplied += o.InvalsApplied
	c.EntriesRemoved += o.EntriesRemoved
	c.DSBs += o.DSBs
	c.DSBSTs += o.DSBSTs
	c.DSBWaitCycles += o.DSBWaitCycles
	c.Cycles += o.Cycles
	c.FlushRefills += o.FlushRefills
	c.FlushLostCycles += o.FlushLostCycles
}

// TLBIs is the number of TLBI operations of every kind.
func (c *Counters) TLBIs() uint64 {
	var n uint64
	for _, v := range c.TLBI {
		n += v
	}
	return n
}

// FaultCount is the number of faults of every kind.
func (c *Counters) FaultCount() uint64 {
	var n uint64
	for _, v := range c.Faults {
		n += v
	}
	return n
}
