package mmu

// Flush-caused refills: the side effect Ryan Roberts asked about ("the miss
// rate will be much higher"). The TLBIs a CPU issues while the kernel marks
// it (MarkPendingFlush: flush_tlb_batched_pending's flush) carry the mark
// to every target; a target applying one records the leaf translations it
// removed. A later walk for one of those (ASID, page)s is a refill the flush
// caused if the walk finds the same translation (the flush removed a good
// entry, not one reclaim had made stale) and the CPU has since filled fewer
// translations than its largest TLB holds — under LRU the entry would
// otherwise still have been there to hit. Its walk cycles are what the
// flush cost that CPU.

// MarkPendingFlush marks (or stops marking) the TLBIs this CPU issues as
// flush_tlb_batched_pending's, so that their side effect is counted.
func (c *CPU) MarkPendingFlush(on bool) { c.markFlush = on }

// flushedEntry is a translation a marked flush removed: its frame, and the
// CPU's fill count at the time.
type flushedEntry struct{ pfn, at uint64 }

// recordFlushed notes the leaf translations a marked invalidation removed.
func (c *CPU) recordFlushed(removed []tlbEntry) {
	for _, e := range removed {
		if tagKind(e.tag) != 0 {
			continue // walk-cache entries: their loss shows in the refill's walk
		}
		if c.flushed == nil {
			c.flushed = map[uint64]flushedEntry{}
		}
		c.flushed[e.tag] = flushedEntry{pfn: e.pfn, at: c.fills}
	}
	if len(c.flushed) > 4*int(c.fillHorizon) { // forget what can no longer count
		for tag, f := range c.flushed {
			if c.fills-f.at > c.fillHorizon {
				delete(c.flushed, tag)
			}
		}
	}
}

// flushedBefore returns (and forgets) what a marked flush removed for tag,
// if the entry would still be in the TLB without the flush.
func (c *CPU) flushedBefore(tag uint64) (flushedEntry, bool) {
	f, ok := c.flushed[tag]
	if !ok {
		return f, false
	}
	delete(c.flushed, tag)
	return f, c.fills-f.at <= c.fillHorizon
}
