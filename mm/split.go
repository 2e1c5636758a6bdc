package mm

import (
	"fmt"

	"github.com/mmubench/mmubench/pagetable"
)

// A migration entry (pteMigration, numa.go) also marks the PTE of a page
// whose folio is being split. Here the rest of the entry is the PTE it
// replaced, with the valid bit cleared, so that the page, its permissions
// and its young and dirty state come back with it
// (make_migration_entry_{young,dirty}, remove_migration_pte). To the
// kernel it is present (it still maps the page, and rmap still lists it);
// to the hardware it is invalid, and a fault on it waits for the split.
func migrationPTE(p pagetable.PTE) pagetable.PTE { return p&^pagetable.PTEValid | pteMigration }

// restoreMigrationPTE is the PTE a migration entry stands for.
func restoreMigrationPTE(p pagetable.PTE) pagetable.PTE { return p&^pteMigration | pagetable.PTEValid }

// splitFolio splits the large folio whose head is head into small folios
// (split_folio → __folio_split), on t's time. Under the anon_vma lock for
// writing (the mm's rmap lock, anon_vma_lock_write) it replaces every PTE
// that maps the folio by a migration entry with a batched flush and ends
// the batch (unmap_folio: try_to_migrate with TTU_BATCH_FLUSH, then
// try_to_unmap_flush); does the split's work per page; checks that no page
// holds a reference beyond its mappings' and, on the head, the caller's
// (folio_ref_freeze) — else it fails with ErrBusy — and makes every page a
// small folio; and puts the PTEs back (remap_page). The caller holds
// PG_locked and a reference. The tails go on the LRU
// (lru_add_split_folio), or with toList stay isolated, each with a
// reference of its own, and are returned (split_folio_to_list). A folio
// mapped by more than one mm is not split (ErrBusy): the model has no
// anon_vma shared between processes to lock.
func (t *Task) splitFolio(head uint64, toList bool) ([]uint64, error) {
	k := t.k
	nr := k.FolioNrPages(head)
	if nr == 1 || k.FolioHead(head) != head {
		return nil, nil
	}
	var mm *MM
	for i := 0; i < nr; i++ {
		for _, m := range k.folios[head+uint64(i)].mappings() {
			if mm != nil && m.mm != mm {
				return nil, ErrBusy
			}
			mm = m.mm
		}
	}
	t.traceKernel(fmt.Sprintf("split_folio: %d pages from pfn %#x", nr, head))
	if mm != nil {
		mm.rmapLock.Lock(t.th) // anon_vma_lock_write
		defer mm.rmapLock.Unlock(t.th)
		t.unmapFolio(mm, head, nr)
	}
	for i := 0; i < nr; i++ {
		t.cpu.Yield()
		t.cpu.Charge(k.cost.PTEUpdate) // __split_folio_to_order: each page's metadata
	}
	for i := 0; i < nr; i++ {
		f := &k.folios[head+uint64(i)]
		f.mu.Lock()
		want := int32(len(f.maps))
		if i == 0 {
			want++
		}
		busy := f.refs != want
		f.mu.Unlock()
		if busy {
			if mm != nil {
				t.remapFolio(mm, head, nr)
			}
			return nil, ErrBusy
		}
	}
	var tails []uint64
	if toList {
		for i := 1; i < nr; i++ {
			if k.FolioGet(head + uint64(i)) {
				tails = append(tails, head+uint64(i))
			}
		}
	}
	k.Stats.FolioSplits.Add(1)
	k.dissolveFolio(head, !toList)
	if mm != nil {
		t.remapFolio(mm, head, nr)
	}
	return tails, nil
}

// unmapFolio replaces each valid PTE that maps a page of the folio from
// head by a migration entry, deferring the flush to t's batch, and ends
// the batch (unmap_folio → try_to_migrate_one, try_to_unmap_flush). The
// caller holds mm's rmap lock for writing.
func (t *Task) unmapFolio(mm *MM, head uint64, nr int) {
	k := t.k
	t.eachFolioPTE(mm, head, nr, func(m *MM, va, pfn uint64, s pagetable.Slot) {
		pte := s.Load()
		if !pte.Valid() || pte.PFN() != pfn {
			return
		}
		t.cpu.Yield()
		var old pagetable.PTE
		if k.batch.ShouldDefer(m) {
			old = s.Swap(0) // ptep_get_and_clear
			t.cpu.Charge(k.cost.PTEUpdate)
			t.setTLBUBCFlushPending(m, old, va)
		} else {
			old = t.ptepClearFlush(m, va, s)
		}
		s.Store(migrationPTE(old))
		t.tracePTE(va, old, migrationPTE(old), "split_folio's try_to_migrate_one installs a migration entry (flush batched)")
		if old.Dirty() {
			k.FolioMarkDirty(pfn)
		}
	})
	t.TryToUnmapFlush()
}

// remapFolio puts back the PTEs unmapFolio replaced (remap_page →
// remove_migration_ptes), each where its migration entry still is.
func (t *Task) remapFolio(mm *MM, head uint64, nr int) {
	t.eachFolioPTE(mm, head, nr, func(_ *MM, va, pfn uint64, s pagetable.Slot) {
		pte := s.Load()
		if !isMigrationEntry(pte) || pte.PFN() != pfn {
			return
		}
		t.cpu.Yield()
		s.Store(restoreMigrationPTE(pte))
		t.cpu.Charge(t.k.cost.PTEUpdate)
		t.tracePTE(va, pte, restoreMigrationPTE(pte), "remove_migration_pte maps the page of the split folio again")
	})
}

// eachFolioPTE calls f, under the PTL, for the PTE of every mapping of
// every page of the folio from head (an rmap walk: rmap_walk_locked). The
// caller holds mm's rmap lock for writing; a mapping in another mm (a fork
// while the folio was being split) is visited under that mm's rmap lock.
func (t *Task) eachFolioPTE(mm *MM, head uint64, nr int, f func(m *MM, va, pfn uint64, s pagetable.Slot)) {
	k := t.k
	for i := 0; i < nr; i++ {
		pfn := head + uint64(i)
		for _, m := range k.folios[pfn].mappings() {
			t.cpu.Charge(k.cost.RmapMapping)
			if m.mm != mm {
				m.mm.rmapLock.RLock(t.th)
			}
			if s, found := m.mm.tables.SlotOf(m.va); found && !m.mm.dead {
				ptl := m.mm.ptl(s.Addr >> pagetable.PageShift)
				ptl.Lock(t.th)
				f(m.mm, m.va, pfn, s)
				ptl.Unlock(t.th)
			}
			if m.mm != mm {
				m.mm.rmapLock.RUnlock(t.th)
			}
		}
	}
}

// dissolveFolio makes every page of the large folio whose head is head a
// small folio of its own; with lru, the tails still mapped go on the LRU.
func (k *Kernel) dissolveFolio(head uint64, lru bool) {
	k.splitMu.Lock()
	h := &k.folios[head]
	h.mu.Lock()
	nr := 1 << h.order
	h.mu.Unlock()
	if nr == 1 {
		k.splitMu.Unlock()
		return
	}
	var live []uint64
	for i := 1; i < nr; i++ { // tails first: a tail never names a head that is small
		f := &k.folios[head+uint64(i)]
		f.mu.Lock()
		f.head = 0
		if f.refs > 0 {
			live = append(live, head+uint64(i))
		}
		f.mu.Unlock()
	}
	h.mu.Lock()
	h.order = 0
	h.mu.Unlock()
	k.largeFolios.Add(-1)
	k.splitMu.Unlock()
	if r := k.cfg.Reclaim; r != nil && lru {
		for _, pfn := range live {
			r.FolioAddLRU(pfn)
		}
	}
}

// SplitFolioToList splits the large folio of isolated head page pfn for
// reclaim (shrink_folio_list → split_folio_to_list, when swap cannot take
// the folio whole): it takes the folio lock, splits, and returns the tails,
// isolated with a reference each, for the caller's list.
func (t *Task) SplitFolioToList(pfn uint64) ([]uint64, error) {
	k := t.k
	if k.FolioHead(pfn) != pfn || !k.folioTrylock(pfn) {
		return nil, ErrBusy
	}
	defer k.folioUnlock(pfn)
	return t.splitFolio(pfn, true)
}
