package mm

import (
	"errors"

	gsync "gvisor.dev/gvisor/pkg/sync"

	"github.com/mmubench/mmubench/mmu"
)

// ErrSwapFull is returned when no swap slot is free.
var ErrSwapFull = errors.New("mm: swap is full")

// swapDevice is an in-memory swap device (like zRAM without compression).
type swapDevice struct {
	mu    gsync.Mutex
	slots []*[mmu.FrameWords]uint64
	free  []int
	used  int
	// cache is the swap cache: slot -> the folio still in memory between
	// try_to_unmap (which installs the swap entry) and the end of its
	// reclaim. A fault in that window maps the folio back instead of
	// reading a slot that may not be written yet.
	cache map[int]uint64
}

func (s *swapDevice) init(n int) {
	s.slots = make([]*[mmu.FrameWords]uint64, n)
	s.free = make([]int, 0, n)
	s.cache = map[int]uint64{}
	for i := n - 1; i >= 0; i-- {
		s.free = append(s.free, i)
	}
}

// swapIn reads slot into frame pfn and frees the slot (swap_read_folio,
// then swap_free: there is no swap cache here).
func (k *Kernel) swapIn(slot int, pfn uint64) {
	s := &k.swap
	s.mu.Lock()
	buf := s.slots[slot]
	s.mu.Unlock()
	copyFrame(k.phys.Words(pfn), buf)
	k.swapFree(slot)
}

// swapFree releases a slot (swap_free).
func (k *Kernel) swapFree(slot int) {
	s := &k.swap
	s.mu.Lock()
	s.free = append(s.free, slot)
	s.used--
	s.mu.Unlock()
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
// maps it back (lookup_swap_cache), taking the mapping's reference. The
// slot stays allocated: reclaim frees it when it finds the folio gone.
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

// swapEntryFree drops a swap entry a zap removed (free_swap_and_cache):
// a slot whose folio is still in the swap cache is left for reclaim to free.
func (k *Kernel) swapEntryFree(slot int) {
	s := &k.swap
	s.mu.Lock()
	if _, ok := s.cache[slot]; ok {
		delete(s.cache, slot)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	k.swapFree(slot)
}

// SwapCacheRelease ends reclaim's hold on a written-back folio
// (__remove_mapping → delete_from_swap_cache): if the folio is still in the
// swap cache it leaves it, and the slot keeps the data for the swap entry;
// if a fault or a zap took it out meanwhile, nothing references the slot
// any more and it is freed. It reports whether the slot is still in use.
func (k *Kernel) SwapCacheRelease(slot int, pfn uint64) bool {
	s := &k.swap
	s.mu.Lock()
	if p, ok := s.cache[slot]; ok && p == pfn {
		delete(s.cache, slot)
		s.mu.Unlock()
		return true
	}
	s.mu.Unlock()
	k.swapFree(slot)
	return false
}
