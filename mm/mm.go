package mm

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	gsync "gvisor.dev/gvisor/pkg/sync"

	"github.com/mmubench/mmubench/pagetable"
	"github.com/mmubench/mmubench/sched"
)

// Prot is a mapping's protection (PROT_*).
type Prot uint8

const (
	ProtNone  Prot = 0
	ProtRead  Prot = 1 << 0
	ProtWrite Prot = 1 << 1
)

func (p Prot) String() string {
	switch p {
	case ProtNone:
		return "PROT_NONE"
	case ProtRead:
		return "PROT_READ"
	case ProtRead | ProtWrite:
		return "PROT_READ|PROT_WRITE"
	}
	return fmt.Sprintf("prot(%d)", uint8(p))
}

// Errors returned by system calls (errno).
var (
	ErrInval = errors.New("EINVAL")
	ErrNoMem = errors.New("ENOMEM")
)

// VMA is one mapping (struct vm_area_struct): anonymous memory, or pages
// of a file (shmem for shared anonymous memory), private or shared.
type VMA struct {
	Start, End uint64
	Prot       Prot
	Shared     bool
	File       *File  // nil: anonymous private memory
	PgOff      uint64 // the file page mapped at Start
	HugePage   bool   // VM_HUGEPAGE (MADV_HUGEPAGE): anonymous faults may map large folios (mthp.go)
}

// slice returns the part [start, end) of v, with its file offset.
func (v *VMA) slice(start, end uint64) *VMA {
	w := *v
	w.Start, w.End = start, end
	if v.File != nil {
		w.PgOff += (start - v.Start) >> pagetable.PageShift
	}
	return &w
}

// pageIndex is the file page mapped at va.
func (v *VMA) pageIndex(va uint64) uint64 { return v.PgOff + (va-v.Start)>>pagetable.PageShift }

func (v *VMA) allows(write bool) bool {
	if write {
		return v.Prot&ProtWrite != 0
	}
	return v.Prot&ProtRead != 0
}

// MM is one address space (struct mm_struct).
type MM struct {
	k      *Kernel
	asid   uint16
	tables *pagetable.Tables

	cpumask  mmCPUMask     // mm_cpumask: the CPUs that ran it (archflush.go)
	users    atomic.Int32  // mm_users: the tasks using it (NewMM and Fork give 1; exec and exit drop it)
	dead     bool          // exit_mmap tore it down; under rmapLock
	mmapLock sched.RWMutex // mmap_lock: VMAs; read for faults and madvise, write for mmap/munmap/mprotect
	rmapLock sched.RWMutex // anon_vma lock: rmap walks (read) against page-table freeing (write)
	vmas     []*VMA        // sorted, disjoint; under mmapLock
	nextMap  uint64

	ptlMu gsync.Mutex
	ptls  map[uint64]*ptLock // split PTLs by level-3 table frame

	// tlbFlushBatched is mm->tlb_flush_batched: bits 0-14 count pending
	// batched flushes, bits 16-30 flushed ones.
	tlbFlushBatched atomic.Int32
	// tlbFlushPending is mm->tlb_flush_pending: live mmu_gathers.
	tlbFlushPending atomic.Int32
	// pendingFlushes counts flush_tlb_batched_pending calls on this mm that
	// found batches pending and flushed (the events after which Ryan
	// Roberts expected the mm's TLB miss rate to jump); it moves before the
	// flush is issued, so a window opened on it sees the flush's misses.
	pendingFlushes atomic.Uint64

	// PendingSet is the exact set of pages pending batches cover (the
	// range-ideal policy); PendingInterval is what a kernel could keep
	// instead (the range policy).
	PendingSet      PendingRange
	PendingInterval PendingInterval

	shadow shadow // the oracle's view of what the program may see
}

// mmapBase is where Mmap places mappings (2 MiB aligned, well inside 48 bits).
const mmapBase = 0x10_0000_0000

// NewMM creates an address space with a fresh ASID.
func (k *Kernel) NewMM() (*MM, error) {
	t, err := pagetable.New(k.phys)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	var asid uint16
	switch {
	case len(k.freeASIDs) > 0:
		asid = k.freeASIDs[0]
		k.freeASIDs = k.freeASIDs[1:]
	case k.nextASID != 0:
		asid = k.nextASID
		if next := uint32(asid) + k.asidStep(); next <= 0xffff {
			k.nextASID = uint16(next)
		} else {
			k.nextASID = 0
		}
	default:
		k.phys.FreeTable(t.Root())
		return nil, fmt.Errorf("mm: out of ASIDs")
	}
	mm := &MM{k: k, asid: asid, tables: t, nextMap: mmapBase, ptls: map[uint64]*ptLock{}}
	mm.users.Store(1)
	mm.mmapLock.Name = fmt.Sprintf("mmap_lock of asid %d", mm.asid)
	mm.rmapLock.Name = fmt.Sprintf("anon_vma lock of asid %d", mm.asid)
	k.mms = append(k.mms, mm)
	return mm, nil
}

// ASIDs go to mms in order, from 1; 0 is no mm's. With KPTI an mm's ASID
// is the odd one of a pair whose even one the kernel runs with
// (kptiKernelASID), so they go from 3 in steps of 2: the pair (0, 1) is
// reserved, as Linux reserves ASID 0.
func (k *Kernel) firstASID() uint16 {
	if k.kpti {
		return 3
	}
	return 1
}

func (k *Kernel) asidStep() uint32 {
	if k.kpti {
		return 2
	}
	return 1
}

// kptiKernelASID is the ASID the kernel runs with for an mm whose user
// ASID is asid (USER_ASID_FLAG is bit 0 of Linux's ASID field): nothing
// user code does is tagged with it, so its TLBIs find nothing, but they
// cost what a TLBI costs.
func kptiKernelASID(asid uint16) uint16 { return asid &^ 1 }

// ASID is the address space's ASID.
func (mm *MM) ASID() uint16 { return mm.asid }

// Tables returns the translation tables.
func (mm *MM) Tables() *pagetable.Tables { return mm.tables }

// PendingFlushes is how many flush_tlb_batched_pending calls on mm flushed.
func (mm *MM) PendingFlushes() uint64 { return mm.pendingFlushes.Load() }

// TLBFlushBatched returns the raw mm->tlb_flush_batched word.
func (mm *MM) TLBFlushBatched() int32 { return mm.tlbFlushBatched.Load() }

// findVMA returns the VMA containing va (under mmapLock).
func (mm *MM) findVMA(va uint64) *VMA {
	i, found := slices.BinarySearchFunc(mm.vmas, va, func(v *VMA, va uint64) int {
		switch {
		case v.End <= va:
			return -1
		case v.Start > va:
			return 1
		}
		return 0
	})
	if !found {
		return nil
	}
	return mm.vmas[i]
}

// VMAs returns a copy of the mappings (for tests and reports).
func (mm *MM) VMAs() []VMA {
	out := make([]VMA, len(mm.vmas))
	for i, v := range mm.vmas {
		out[i] = *v
	}
	return out
}

// ptl returns the split page-table lock of the level-3 table holding slot
// s (pte_lockptr).
func (mm *MM) ptl(table uint64) *ptLock {
	mm.ptlMu.Lock()
	defer mm.ptlMu.Unlock()
	l := mm.ptls[table]
	if l == nil {
		l = &ptLock{Mutex: sched.Mutex{Name: fmt.Sprintf("PTL of table %#x (asid %d)", table, mm.asid)}}
		mm.ptls[table] = l
	}
	return l
}

func (mm *MM) dropPTL(table uint64) {
	mm.ptlMu.Lock()
	delete(mm.ptls, table)
	mm.ptlMu.Unlock()
}

// MaxDVMOps is arm64's MAX_DVM_OPS for a 4K granule: a range flush of this
// many pages or more becomes flush_tlb_mm.
const MaxDVMOps = 512
