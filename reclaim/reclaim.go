// Package reclaim is page reclaim for the emulated kernel: LRU lists
// (anonymous and file, each inactive and active, scanned in swappiness's
// proportion; lazy-free first), shrink_folio_list with TTU_BATCH_FLUSH —
// unmapping each folio from every process that maps it — writeback to swap
// after try_to_unmap_flush_dirty, removal of page-cache folios from their
// file, discard of clean lazy-free folios, the MADV_PAGEOUT path
// (reclaim_pages) and a background reclaimer (kswapd) woken by a
// free-memory watermark.
//
// A folio taken off a list for reclaim is isolated: reclaim holds a
// reference to it, so a concurrent munmap cannot free the frame under it,
// and frees it (drops the reference) only after the batch's TLB flush.
//
// Not modelled: an anonymous folio that several processes map (after fork,
// until they write it or exit) is kept rather than swapped, so that swap
// entries never share a swap-cache folio; Linux reclaims it too. The
// refault-driven balance of anonymous and file scanning is a fixed ratio.
//
// The reclaiming task may migrate to another CPU after unmapping a folio
// (mm.Task.PreemptionPoint), its batch pending: the batch then ends on the
// new CPU, which is what __switch_to()'s dsb(ish) makes safe.
//
// Lock order: Reclaim.mu is a leaf lock; shrinking runs without it, taking
// the mm's rmap lock and PTLs (never the mmap lock).
package reclaim

import (
	"container/list"
	"slices"
	"sync/atomic"

	gsync "gvisor.dev/gvisor/pkg/sync"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/sched"
)

// SwapClusterMax is how many folios one shrink pass takes (SWAP_CLUSTER_MAX).
const SwapClusterMax = 32

// Config configures reclaim.
type Config struct {
	// Low and High are the free-frame watermarks: kswapd wakes below Low
	// and reclaims until High. 0 picks 1/64 and 1/32 of memory.
	Low, High int
}

type lru int

// The lists: Linux keeps anonymous (swap-backed, shmem included) and file
// folios apart, each inactive and active, and puts MADV_FREE'd folios where
// reclaim finds them first.
const (
	inactiveAnon lru = iota
	activeAnon
	inactiveFile
	activeFile
	lazyfree
	numLRU
)

// Whether a folio goes to the active or the inactive list of its kind.
const (
	inactive = false
	active   = true
)

// swappiness is the kernel's default vm.swappiness: anonymous memory gets
// 60/200 of the scan, file pages the rest (get_scan_count, without its
// refault-cost feedback).
const swappiness = 60

// Reclaim is the reclaim of one kernel; it implements mm.Reclaimer.
type Reclaim struct {
	k         *mm.Kernel
	low, high int

	mu    gsync.Mutex
	lists [numLRU]list.List
	where map[uint64]*list.Element // pfn -> element, for folios on a list
	on    map[uint64]lru

	wake    sched.WaitQueue
	pending atomic.Bool // kswapd has been woken
	stopped atomic.Bool
}

// New builds reclaim for k and installs it as k's reclaimer.
func New(k *mm.Kernel, cfg Config) *Reclaim {
	frames := k.Machine().Phys().Frames()
	if cfg.Low <= 0 {
		cfg.Low = max(frames/64, 4)
	}
	if cfg.High <= cfg.Low {
		cfg.High = max(frames/32, cfg.Low+SwapClusterMax)
	}
	r := &Reclaim{k: k, low: cfg.Low, high: cfg.High, where: map[uint64]*list.Element{}, on: map[uint64]lru{}}
	k.SetReclaim(r)
	return r
}

// listFor is the list a folio goes to: by kind, active or not.
func (r *Reclaim) listFor(pfn uint64, act bool) lru {
	l := inactiveFile
	if r.k.Folio(pfn).Flags()&mm.FolioSwapBacked != 0 {
		l = inactiveAnon
	}
	if act {
		l++
	}
	return l
}

func (r *Reclaim) add(pfn uint64, l lru) {
	r.mu.Lock()
	r.removeLocked(pfn)
	r.where[pfn] = r.lists[l].PushFront(pfn)
	r.on[pfn] = l
	r.mu.Unlock()
}

func (r *Reclaim) removeLocked(pfn uint64) {
	if e := r.where[pfn]; e != nil {
		r.lists[r.on[pfn]].Remove(e)
		delete(r.where, pfn)
		delete(r.on, pfn)
	}
}

// FolioAddLRU implements mm.Reclaimer (folio_add_lru).
func (r *Reclaim) FolioAddLRU(pfn uint64) { r.add(pfn, r.listFor(pfn, inactive)) }

// FolioDelLRU implements mm.Reclaimer.
func (r *Reclaim) FolioDelLRU(pfn uint64) {
	r.mu.Lock()
	r.removeLocked(pfn)
	r.mu.Unlock()
}

// FolioMarkLazyfree implements mm.Reclaimer (folio_mark_lazyfree: Linux
// moves the folio to the inactive file list, reclaimed first).
func (r *Reclaim) FolioMarkLazyfree(pfn uint64) {
	r.mu.Lock()
	_, listed := r.where[pfn]
	r.mu.Unlock()
	if listed { // an isolated folio stays isolated
		r.add(pfn, lazyfree)
	}
}

// Len is the number of folios on the LRU lists.
func (r *Reclaim) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.where)
}

// isolate takes up to n folios off the lists' tails and holds a reference
// to each (isolate_lru_folios): lazy-free ones first, then file and
// anonymous ones in swappiness's proportion, each kind's inactive list
// before its active one (an empty inactive list is refilled from the
// active one: shrink_active_list, without the rotation heuristics). A kind
// that runs short leaves its share to the other.
func (r *Reclaim) isolate(n int) []uint64 {
	r.mu.Lock()
	var out []uint64
	take := func(want int, lists ...lru) {
		for _, l := range lists {
			for want > 0 {
				e := r.lists[l].Back()
				if e == nil {
					break
				}
				pfn := e.Value.(uint64)
				r.removeLocked(pfn)
				out = append(out, pfn)
				want--
			}
		}
	}
	take(n, lazyfree)
	rest := n - len(out)
	anon := rest * swappiness / 200
	take(rest-anon, inactiveFile, activeFile)
	take(n-len(out), inactiveAnon, activeAnon)
	take(n-len(out), inactiveFile, activeFile)
	r.mu.Unlock()
	held := out[:0]
	for _, pfn := range out {
		if r.k.FolioGet(pfn) {
			held = append(held, pfn)
		}
	}
	return held
}

// ShrinkLRU reclaims up to n folios from the LRU on t, returning how many
// frames it freed (shrink_inactive_list).
func (r *Reclaim) ShrinkLRU(t *mm.Task, n int) int {
	return r.ShrinkFolioList(t, r.isolate(n), false)
}

// ReclaimPages implements mm.Reclaimer: reclaim isolated folios on t
// regardless of their referenced state (reclaim_pages, MADV_PAGEOUT).
func (r *Reclaim) ReclaimPages(t *mm.Task, pfns []uint64) {
	for len(pfns) > 0 {
		n := min(len(pfns), SwapClusterMax)
		for _, pfn := range pfns[:n] {
			r.FolioDelLRU(pfn)
		}
		r.ShrinkFolioList(t, pfns[:n], true)
		pfns = pfns[n:]
	}
}

// ShrinkFolioList reclaims isolated folios on t (shrink_folio_list): each
// is unmapped from every PTE that maps it with TTU_BATCH_FLUSH; a
// swap-backed one (anonymous or shmem) is written to swap after
// try_to_unmap_flush_dirty; a page-cache folio leaves its file (a shmem
// page's swap slot takes its place); a clean lazy-free one is discarded; a
// referenced one (unless ignoreRefs) is activated. An anonymous folio that
// several processes map (after fork, until they write or exit) is kept:
// their swap entries would have to share the slot and its swap-cache
// folio. A large folio is split first, its pages reclaimed one by one.
// Frames are freed after the batch's try_to_unmap_flush. It returns how
// many it released.
func (r *Reclaim) ShrinkFolioList(t *mm.Task, pfns []uint64, ignoreRefs bool) int {
	k := r.k
	cost := k.Machine().Config().Cost
	type release struct {
		pfn  uint64
		slot int
	}
	var freed []release
	var keep []uint64
	for i := 0; i < len(pfns); i++ {
		pfn := pfns[i]
		k.Stats.Scanned.Add(1)
		t.CPU().Charge(cost.ReclaimFolio)
		if k.FolioTestLarge(pfn) {
			// No swap slots for a large folio: split it, its tails
			// joining the list (split_folio_to_list).
			tails, err := t.SplitFolioToList(pfn)
			if err != nil {
				keep = append(keep, pfn)
				continue
			}
			pfns = append(slices.Clip(pfns), tails...)
		}
		f := k.Folio(pfn)
		flags := f.Flags()
		if flags&mm.FolioAnon != 0 && f.Mapcount() > 1 {
			r.putback(t, pfn, r.listFor(pfn, active))
			continue
		}
		if !ignoreRefs && t.FolioReferenced(pfn) {
			r.putback(t, pfn, r.listFor(pfn, active))
			continue
		}
		swapBacked := flags&mm.FolioSwapBacked != 0
		slot := -1
		if swapBacked {
			s, err := k.AllocSwapSlot() // add_to_swap
			if err != nil {
				keep = append(keep, pfn)
				continue
			}
			slot = s
		}
		if !t.TryToUnmap(pfn, slot, true) {
			if slot >= 0 {
				k.FreeSwapSlot(slot)
			}
			keep = append(keep, pfn)
			continue
		}
		// Preemptible here (no spinlock held, the folio lock sleeps): the
		// task may move to another CPU with its batch's TLBIs issued and
		// not completed — a no-op unless a migration was asked for.
		t.PreemptionPoint()
		if f.File() != nil && !swapBacked && k.FolioTestDirty(pfn) {
			// A written shared file page: write it back first.
			t.TryToUnmapFlushDirty()
			k.Writeback(t, pfn)
		}
		if f.File() != nil && !k.RemoveMapping(t, pfn, slot) {
			if slot >= 0 {
				k.FreeSwapSlot(slot)
			}
			keep = append(keep, pfn)
			continue
		}
		if swapBacked {
			// No CPU may write the folio while it is written back.
			t.TryToUnmapFlushDirty()
			k.Pageout(t, pfn, slot)
		}
		freed = append(freed, release{pfn, slot})
	}
	t.TryToUnmapFlush()
	for _, f := range freed {
		if f.slot >= 0 {
			k.SwapCacheRelease(f.slot, f.pfn)
		}
		k.FolioPut(t, f.pfn)
	}
	for _, pfn := range keep {
		r.putback(t, pfn, r.listFor(pfn, inactive))
	}
	return len(freed)
}

// putback returns an isolated folio to a list if anything but the isolation
// still holds it (a mapping, the page cache), and drops the isolation
// reference (folio_putback_lru).
func (r *Reclaim) putback(t *mm.Task, pfn uint64, l lru) {
	if r.k.Folio(pfn).Refs() > 1 {
		r.add(pfn, l)
	}
	r.k.FolioPut(t, pfn)
}

// WakeKswapd implements mm.Reclaimer (wakeup_kswapd).
func (r *Reclaim) WakeKswapd() {
	if r.k.FreeFrames() < r.low && !r.pending.Swap(true) {
		r.wake.Notify()
	}
}

// DirectReclaim implements mm.Reclaimer (try_to_free_pages): it scans
// batches until one frees something, giving up after twice the LRU — the
// first pass may only clear referenced bits (the priority escalation of
// do_try_to_free_pages, in one step).
func (r *Reclaim) DirectReclaim(t *mm.Task) bool {
	return r.shrinkUntilProgress(t) > 0
}

// shrinkUntilProgress reclaims batches until one frees a frame or twice the
// LRU has been scanned; it returns what it freed.
func (r *Reclaim) shrinkUntilProgress(t *mm.Task) int {
	for scanned, limit := 0, 2*r.Len()+SwapClusterMax; scanned < limit; scanned += SwapClusterMax {
		if n := r.ShrinkLRU(t, SwapClusterMax); n > 0 {
			return n
		}
	}
	return 0
}

// Kswapd is the body of the background reclaimer's task: it sleeps until
// free memory falls below the low watermark, then reclaims batches until it
// is above the high one. It returns after Stop.
func (r *Reclaim) Kswapd(t *mm.Task) {
	for {
		r.wake.Wait(t.Thread(), "kswapd wake-up", func() bool { return r.pending.Load() || r.stopped.Load() })
		if r.stopped.Load() {
			return
		}
		for r.k.FreeFrames() < r.high && !r.stopped.Load() {
			if r.shrinkUntilProgress(t) == 0 {
				break // nothing reclaimable: sleep until woken again
			}
		}
		r.pending.Store(false)
	}
}

// Stop ends Kswapd.
func (r *Reclaim) Stop() {
	r.stopped.Store(true)
	r.wake.Notify()
}
