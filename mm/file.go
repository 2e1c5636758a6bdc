package mm

import (
	"fmt"

	gsync "gvisor.dev/gvisor/pkg/sync"

	"github.com/mmubench/mmubench/mmu"
)

// File is a file's page cache (struct address_space): the folios of its
// pages by index. A regular file's pages come from storage on a miss and
// are simply dropped by reclaim (they are clean: nothing here writes a file
// through a shared mapping and then reclaims it dirty without writing it
// back). A shmem file (tmpfs, and what MAP_SHARED|MAP_ANONYMOUS creates) is
// swap-backed: reclaim writes its pages to swap and keeps the swap slot in
// the page cache in their place, as shmem_writeout does.
//
// Each folio in the page cache holds one reference for being there.
type File struct {
	Name  string
	Pages uint64 // size in pages
	shmem bool
	// fill gives the contents of a regular file's page read from storage.
	fill func(index uint64, words *[mmu.FrameWords]uint64)

	mu      gsync.Mutex
	cache   map[uint64]uint64 // index -> pfn
	swapped map[uint64]int    // shmem: index -> swap slot of a page swapped out
}

// NewFile creates a regular file of pages pages whose contents, as read
// from storage, fill gives (nil: zeros).
func (k *Kernel) NewFile(name string, pages uint64, fill func(index uint64, words *[mmu.FrameWords]uint64)) *File {
	return &File{Name: name, Pages: pages, fill: fill, cache: map[uint64]uint64{}}
}

// NewShmemFile creates a shmem (tmpfs) file of pages pages, zero-filled
// until written; processes that map it shared see each other's writes.
func (k *Kernel) NewShmemFile(name string, pages uint64) *File {
	return &File{Name: name, Pages: pages, shmem: true, cache: map[uint64]uint64{}, swapped: map[uint64]int{}}
}

// newShmem creates the shmem file behind a MAP_SHARED|MAP_ANONYMOUS mapping
// (shmem_zero_setup).
func (k *Kernel) newShmem(pages uint64) *File { return k.NewShmemFile("dev/zero (deleted)", pages) }

// Shmem reports whether the file is shmem (swap-backed).
func (f *File) Shmem() bool { return f.shmem }

// Cached is the number of the file's pages in the page cache.
func (f *File) Cached() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.cache)
}

// filemapGetFolio returns the folio of page index of file with a reference
// taken for the caller (filemap_fault / shmem_get_folio): from the page
// cache, else read in on t — from storage, or for shmem from swap (or zero
// for a page never written).
func (t *Task) filemapGetFolio(file *File, index uint64) (uint64, error) {
	k := t.k
	if index >= file.Pages {
		return 0, fmt.Errorf("mm: page %d beyond the end of %s", index, file.Name)
	}
	for {
		file.mu.Lock()
		if pfn, ok := file.cache[index]; ok && k.FolioGet(pfn) {
			file.mu.Unlock()
			return pfn, nil
		}
		slot, swapped := -1, false
		if file.shmem {
			slot, swapped = file.swapped[index]
		}
		if swapped {
			// Still in the swap cache (reclaim has not finished with it):
			// take it back into the page cache.
			if pfn, ok := k.swapCacheTake(slot); ok {
				delete(file.swapped, index)
				file.cache[index] = pfn
				k.folios[pfn].setFile(file, index, true)
				file.mu.Unlock()
				k.swapPut(slot) // the file's reference to the slot
				k.Stats.SwapCacheHits.Add(1)
				if r := k.cfg.Reclaim; r != nil {
					r.FolioAddLRU(pfn) // reclaim isolated it and will not put it back
				}
				return pfn, k.getOrFail(pfn)
			}
		}
		file.mu.Unlock()

		pfn, err := k.allocFrame(t)
		if err != nil {
			return 0, err
		}
		switch {
		case swapped:
			k.swapRead(slot, pfn)
			t.cpu.Charge(k.cost.SwapIn)
		case file.shmem:
			t.cpu.Charge(k.cost.ZeroPage)
			k.phys.Zero(pfn)
		default:
			t.cpu.Charge(k.cost.FileRead)
			k.Stats.FileReads.Add(1)
			if file.fill != nil {
				file.fill(index, k.phys.Words(pfn))
			} else {
				k.phys.Zero(pfn)
			}
		}
		file.mu.Lock()
		_, raced := file.cache[index]
		if cur, still := file.swapped[index]; raced || (swapped && (!still || cur != slot)) || (!swapped && file.shmem && still) {
			// Someone else brought it in (or swapped it out) meanwhile.
			file.mu.Unlock()
			_ = k.phys.Free(pfn)
			continue
		}
		if swapped {
			delete(file.swapped, index)
			k.Stats.SwapIns.Add(1)
		}
		file.cache[index] = pfn
		k.newPageCacheFolio(pfn, file, index)
		file.mu.Unlock()
		if swapped {
			k.swapPut(slot)
		}
		return pfn, k.getOrFail(pfn)
	}
}

// getOrFail takes the caller's reference on a folio the caller knows to be
// alive.
func (k *Kernel) getOrFail(pfn uint64) error {
	if !k.FolioGet(pfn) {
		return fmt.Errorf("mm: folio %#x vanished", pfn)
	}
	return nil
}

// newPageCacheFolio sets up a frame as the page-cache folio of index in
// file, with the page cache's reference (filemap_add_folio), and puts it on
// the LRU.
func (k *Kernel) newPageCacheFolio(pfn uint64, file *File, index uint64) {
	f := &k.folios[pfn]
	f.mu.Lock()
	f.refs = 1
	f.flags = 0
	if file.shmem {
		f.flags = FolioSwapBacked | FolioDirty // a shmem page has no copy anywhere else
	}
	f.maps = f.maps[:0]
	f.file, f.index = file, index
	f.mu.Unlock()
	if r := k.cfg.Reclaim; r != nil {
		r.FolioAddLRU(pfn)
	}
}

// setFile puts a folio back into file's page cache (the caller holds its
// reference for that) and on the LRU.
func (f *Folio) setFile(file *File, index uint64, dirty bool) {
	f.mu.Lock()
	f.file, f.index = file, index
	if dirty {
		f.flags |= FolioDirty
	}
	f.mu.Unlock()
}

// RemoveMapping takes an unmapped, clean (or written back) page-cache folio
// out of its file (__remove_mapping): for shmem its swap slot takes its
// place, for a regular file it is simply dropped. It fails, leaving the
// folio where it is, if anyone but the page cache and the caller's
// isolation holds a reference (a fault is mapping it again). On success the
// page cache's reference is dropped; the caller's remains.
func (k *Kernel) RemoveMapping(t *Task, pfn uint64, slot int) bool {
	f := &k.folios[pfn]
	file := f.File()
	if file == nil {
		return false
	}
	file.mu.Lock()
	f.mu.Lock()
	ok := f.refs == 2 && len(f.maps) == 0 && file.cache[f.index] == pfn
	index := f.index
	if ok {
		f.file, f.index = nil, 0
	}
	f.mu.Unlock()
	if !ok {
		file.mu.Unlock()
		return false
	}
	delete(file.cache, index)
	if file.shmem {
		file.swapped[index] = slot
		k.swapDup(slot) // the file's reference
		k.swapCacheAdd(slot, pfn)
	}
	file.mu.Unlock()
	k.FolioPut(t, pfn) // the page cache's reference
	return true
}
