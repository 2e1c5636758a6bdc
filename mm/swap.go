package mm

import (
	"errors"

	gsync "gvisor.dev/gvisor/pkg/sync"

	"github.com/mmubench/mmubench/mmu"
)

// ErrSwapFull is returned when no swap slot is free.
var ErrSwapFull = errors.New("mm: swap is full")

// swapDevice is an in-memory swap device (like zRAM; its cost is
// CostModel.SwapOut and SwapIn). A slot is counted like Linux's swap_map:
// reclaim holds it from add_to_swap until it is done with the folio
// (SwapCacheRelease), each swap PTE holds it (several after fork), and a
// shmem file holds the slot of a page it swapped out. The last reference
// frees it.
type swapDevice struct {
	mu    gsync.Mutex
	slots []*[mmu.FrameWords]uint64
	count []int32
	free  []int
	used  int
	// cache is the swap cache: slot -> the folio still in memory between
	// try_to_unmap (which installs the swap entries) and the end of its
	// reclaim. A fault in that window maps the folio back instead of
	// reading a slot that may not be written yet.
	cache map[int]uint64
}

func (s *swapDevice) init(n int) {
	s.slots = make([]*[mmu.FrameWords]uint64, n)
	s.count = make([]int32, n)
	s.free = make([]int, 0, n)
	s.cache = map[int]uint64{}
	for i := n - 1; i >= 0; i-- {
		s.free = append(s.free, i)
	}
}

// AllocSwapSlot reserves a swap slot for a folio about to be unmapped
// (add_to_swap; the data is written by Pageout). The slot starts with
// reclaim's reference, which SwapCacheRelease drops.
func (k *Kernel) AllocSwapSlot() (int, error) {
	s := &k.swap
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.free)
	if n == 0 {
		return 0, ErrSwapFull
	}
	slot := s.free[n-1]
	s.free = s.free[:n-1]
	s.used++
	s.count[slot] = 1
	return slot, nil
}

// swapDup takes another reference on slot (swap_duplicate).
func (k *Kernel) swapDup(slot int) {
	k.swap.mu.Lock()
	k.swap.count[slot]++
	k.swap.mu.Unlock()
}

// swapPut drops a reference on slot (swap_free); the last frees it. It
// returns how many references remain.
func (k *Kernel) swapPut(slot int) int32 {
	s := &k.swap
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count[slot]--
	n := s.count[slot]
	switch {
	case n < 0:
		panic("mm: swap slot reference count below zero") // a bug in the emulated kernel
	case n == 0:
		s.free = append(s.free, slot)
		s.used--
	}
	return n
}

// swapCount is the number of references to slot.
func (k *Kernel) swapCount(slot int) int32 {
	k.swap.mu.Lock()
	defer k.swap.mu.Unlock()
	return k.swap.count[slot]
}

// swapCacheAdd puts folio pfn in the swap cache at slot (add_to_swap_cache).
func (k *Kernel) swapCacheAdd(slot int, pfn uint64) {
	k.swap.mu.Lock()
	k.swap.cache[slot] = pfn
	k.swap.mu.Unlock()
}

// swapCacheLookup returns the swap cache's folio of slot, if any.
func (k *Kernel) swapCacheLookup(slot int) (uint64, bool) {
	k.swap.mu.Lock()
	defer k.swap.mu.Unlock()
	pfn, ok := k.swap.cache[slot]
	return pfn, ok
}

// swapRead reads slot into frame pfn (swap_read_folio).
func (k *Kernel) swapRead(slot int, pfn uint64) {
	s := &k.swap
	s.mu.Lock()
	buf := s.slots[slot]
	s.mu.Unlock()
	if buf == nil {
		k.phys.Zero(pfn)
		return
	}
	copyFrame(k.phys.Words(pfn), buf)
}

// FreeSwapSlot releases a slot reserved for a folio that stayed mapped.
func (k *Kernel) FreeSwapSlot(slot int) {
	k.swap.mu.Lock()
	delete(k.swap.cache, slot)
	k.swap.mu.Unlock()
	k.swapPut(slot)
}

// SwapUsed is the number of slots in use.
func (k *Kernel) SwapUsed() int {
	k.swap.mu.Lock()
	defer k.swap.mu.Unlock()
	return k.swap.used
}

func copyFrame(dst, src *[mmu.FrameWords]uint64) {
	for i := range dst {
		// Frames are shared with running CPUs: word by word, atomically.
		storeWord(&dst[i], loadWord(&src[i]))
	}
}

// swapCacheTake removes slot's folio from the swap cache for a fault that
// maps it back (lookup_swap_cache), taking the mapping's reference.
// Reclaim's reference to the slot stays until SwapCacheRelease.
func (k *Kernel) swapCacheTake(slot int) (uint64, bool) {
	s := &k.swap
	s.mu.Lock()
	defer s.mu.Unlock()
	pfn, ok := s.cache[slot]
	if !ok || !k.FolioGet(pfn) {
		return 0, false
	}
	delete(s.cache, slot)
	return pfn, true
}

// SwapCacheRelease ends reclaim's hold on a written-back folio
// (__remove_mapping → delete_from_swap_cache): the folio leaves the swap
// cache if it is still there, and reclaim's reference to the slot goes; the
// slot lives on while swap entries refer to it. It reports whether the slot
// is still in use.
func (k *Kernel) SwapCacheRelease(slot int, pfn uint64) bool {
	s := &k.swap
	s.mu.Lock()
	if p, ok := s.cache[slot]; ok && p == pfn {
		delete(s.cache, slot)
	}
	s.mu.Unlock()
	return k.swapPut(slot) > 0
}
