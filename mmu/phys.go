package mmu

import (
	"errors"
	"fmt"
	"sync/atomic"

	gsync "gvisor.dev/gvisor/pkg/sync"
)

// FrameWords is the number of 64-bit words in a 4 KiB frame.
const FrameWords = 512

// ErrNoMemory is returned when every frame is allocated.
var ErrNoMemory = errors.New("mmu: out of physical memory")

// Phys is the emulated physical memory: frames of real data, each with a
// generation that is odd while the frame is allocated and changes on every
// allocation and free. Frame 0 is never handed out, so a zero descriptor
// never names a usable frame. Phys implements pagetable.Memory.
type Phys struct {
	data []uint64 // frame f is data[f*512 : (f+1)*512]
	gens []uint32

	mu   gsync.Mutex
	free []uint32 // stack: the most recently freed frame is reused first

	// frees moves by 2 for each Free: to odd before the generation
	// changes and to even after, so that while it is even and unmoved no
	// frame's generation changes but by an allocation of a free frame
	// (freeepoch.go). Read by every CPU on every L1 hit, so it has a cache
	// line of its own.
	_     [64]byte
	frees atomic.Uint64
	_     [56]byte
}

// NewPhys returns a memory of n frames (frame 0 reserved).
func NewPhys(n int) (*Phys, error) {
	if n < 2 || n > 1<<28 {
		return nil, fmt.Errorf("mmu: %d frames of physical memory (must be 2..%d)", n, 1<<28)
	}
	p := &Phys{
		data: make([]uint64, n*FrameWords), // zeroed lazily by the host: untouched frames cost nothing
		gens: make([]uint32, n),
		free: make([]uint32, 0, n-1),
	}
	for f := n - 1; f >= 1; f-- {
		p.free = append(p.free, uint32(f))
	}
	return p, nil
}

// Frames is the number of frames, frame 0 included.
func (p *Phys) Frames() int { return len(p.gens) }

// FreeFrames is the number of frames available to Alloc.
func (p *Phys) FreeFrames() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free)
}

// Alloc takes a free frame. Its contents are whatever its last user left.
func (p *Phys) Alloc() (uint64, error) {
	p.mu.Lock()
	n := len(p.free)
	if n == 0 {
		p.mu.Unlock()
		return 0, ErrNoMemory
	}
	f := p.free[n-1]
	p.free = p.free[:n-1]
	atomic.AddUint32(&p.gens[f], 1) // even -> odd
	p.mu.Unlock()
	return uint64(f), nil
}

// AllocZeroed takes a free frame and zeroes it.
func (p *Phys) AllocZeroed() (uint64, error) {
	f, err := p.Alloc()
	if err != nil {
		return 0, err
	}
	p.Zero(f)
	return f, nil
}

// Free returns frame f. Freeing a frame that is not allocated is an error
// (a bug in the emulated kernel).
func (p *Phys) Free(f uint64) error {
	if f == 0 || f >= uint64(len(p.gens)) {
		return fmt.Errorf("mmu: free of frame %#x out of range", f)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if atomic.LoadUint32(&p.gens[f])&1 == 0 {
		return fmt.Errorf("mmu: double free of frame %#x", f)
	}
	p.frees.Add(1)                  // odd: a generation is changing (freeepoch.go)
	atomic.AddUint32(&p.gens[f], 1) // odd -> even
	p.frees.Add(1)
	p.free = append(p.free, uint32(f))
	return nil
}

// Gen is frame f's generation (odd while allocated).
func (p *Phys) Gen(f uint64) uint32 { return atomic.LoadUint32(&p.gens[f]) }

// Allocated reports whether frame f is allocated.
func (p *Phys) Allocated(f uint64) bool { return p.Gen(f)&1 == 1 }

// Words returns frame f's words, or nil if there is no frame f (a walk
// through a garbage descriptor then faults); access them atomically while
// CPUs run.
func (p *Phys) Words(f uint64) *[FrameWords]uint64 {
	if f >= uint64(len(p.gens)) {
		return nil
	}
	return (*[FrameWords]uint64)(p.data[f*FrameWords : (f+1)*FrameWords])
}

// Zero clears frame f.
func (p *Phys) Zero(f uint64) {
	w := p.Words(f)
	for i := range w {
		atomic.StoreUint64(&w[i], 0)
	}
}

// Copy copies frame src into frame dst (the kernel's copy_page).
func (p *Phys) Copy(dst, src uint64) {
	d, s := p.Words(dst), p.Words(src)
	for i := range d {
		atomic.StoreUint64(&d[i], atomic.LoadUint64(&s[i]))
	}
}

// AllocTable implements pagetable.Memory.
func (p *Phys) AllocTable() (uint64, error) { return p.AllocZeroed() }

// FreeTable implements pagetable.Memory.
func (p *Phys) FreeTable(f uint64) { _ = p.Free(f) }
