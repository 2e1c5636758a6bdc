package mm

import (
	"fmt"
	"sync/atomic"

	gsync "gvisor.dev/gvisor/pkg/sync"

	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/sched"
)

// BatchPolicy is the architecture's side of batched unmap flushing during
// reclaim (arch_tlbbatch_* and arch_flush_tlb_batched_pending). Package
// policy implements it: no-batch, dsb-only, flush-mm, range.
type BatchPolicy interface {
	Name() string
	// ShouldDefer: may try_to_unmap defer the flush (arch_tlbbatch_should_defer)?
	ShouldDefer(mm *MM) bool
	// AddPending runs after a deferred unmap cleared the PTE of va
	// (arch_tlbbatch_add_pending), on the reclaiming task.
	AddPending(t *Task, mm *MM, va uint64)
	// Flush ends a batch (arch_tlbbatch_flush), on the reclaiming task.
	Flush(t *Task)
	// FlushPending is what flush_tlb_batched_pending does when batches are
	// pending on mm, on whichever task found them.
	FlushPending(t *Task, mm *MM)
}

// NestedPolicy is what tlb_finish_mmu does when another gather on the same
// mm is live (mm_tlb_flush_nested): nothing, the gather's range, or the
// whole mm. Package policy implements none, range, fullmm.
type NestedPolicy interface {
	Name() string
	FinishNested(t *Task, g *MMUGather)
}

// Reclaimer is what the kernel needs from page reclaim (package reclaim).
type Reclaimer interface {
	// FolioAddLRU puts a newly mapped folio on the LRU (folio_add_lru).
	FolioAddLRU(pfn uint64)
	// FolioDelLRU takes a folio being freed off the LRU.
	FolioDelLRU(pfn uint64)
	// FolioMarkLazyfree moves a folio to the lazy-free list (folio_mark_lazyfree).
	FolioMarkLazyfree(pfn uint64)
	// ReclaimPages reclaims isolated folios on t (reclaim_pages, MADV_PAGEOUT).
	ReclaimPages(t *Task, pfns []uint64)
	// WakeKswapd is called when free memory falls below the low watermark.
	WakeKswapd()
	// DirectReclaim frees memory on t when allocation failed; it reports
	// whether anything was freed (try_to_free_pages).
	DirectReclaim(t *Task) bool
}

// Config configures the kernel.
type Config struct {
	Batch     BatchPolicy
	Nested    NestedPolicy
	Reclaim   Reclaimer // nil: no reclaim (allocation failure is an error)
	SwapSlots int       // pages of swap; 0 = as many as there are frames
}

// Kernel is the emulated kernel of one machine.
type Kernel struct {
	m      *mmu.Machine
	phys   *mmu.Phys
	cfg    Config
	batch  BatchPolicy
	nested NestedPolicy
	folios []Folio // indexed by frame
	swap   swapDevice
	oracle *Oracle
	cost   mmu.CostModel
	arch   mmu.Arch // the machine flavour (archflush.go)
	kpti   bool     // arm64 KPTI: an ASID pair per mm, user TLBIs issued for both (tlbflush.go)

	reverted []Fix // fixes taken out (fixes.go); set before the run, read-only during it
	numa     numaState

	mthpOrder   int          // large anonymous folios for MADV_HUGEPAGE VMAs (mthp.go); set before the run
	largeFolios atomic.Int64 // large folios that exist
	splitMu     gsync.Mutex  // serialises the dissolving of large folios (a leaf lock above Folio.mu)

	clock atomic.Uint64
	retMu gsync.Mutex // serialises syscall returns against the clock
	det   bool        // the machine runs in det mode

	mu        gsync.Mutex
	nextASID  uint16
	freeASIDs []uint16 // of exited mms, whose TLB entries are gone everywhere
	mms       []*MM
	tasks     []*Task

	Stats Stats
}

// Stats counts kernel events (all atomic: any CPU updates them).
type Stats struct {
	FlushMM             atomic.Uint64 // flush_tlb_mm (ASIDE1IS + DSB)
	RangeFlushes        atomic.Uint64 // __flush_tlb_range done page by page
	RangeFallbacks      atomic.Uint64 // ranges of MAX_DVM_OPS pages or more: flush_tlb_mm instead
	BatchedPending      atomic.Uint64 // flush_tlb_batched_pending calls that found pending batches
	NestedFlushes       atomic.Uint64 // tlb_finish_mmu calls that found a nested gather
	Faults              atomic.Uint64 // user faults handled
	Segv                atomic.Uint64 // faults delivered to the program as SIGSEGV
	SwapIns             atomic.Uint64 // pages read back from swap
	SwapCacheHits       atomic.Uint64 // swap faults that found the page still in the swap cache
	Scanned             atomic.Uint64 // reclaim: folios scanned
	Unmapped            atomic.Uint64 // reclaim: folios unmapped
	UnmappedPTEs        atomic.Uint64 // reclaim: PTEs cleared unmapping them (several per shared folio)
	WrittenBack         atomic.Uint64 // reclaim: folios written to swap
	Discarded           atomic.Uint64 // reclaim: clean lazy-free folios discarded
	Redirtied           atomic.Uint64 // reclaim: lazy-free folios found dirty and kept
	Syscalls            atomic.Uint64
	PagesZapped         atomic.Uint64
	PagesLazyfreed      atomic.Uint64
	PagesWriteProtected atomic.Uint64
	FileReads           atomic.Uint64 // page-cache misses read from storage
	COWs                atomic.Uint64 // write faults that copied a shared page
	Forks               atomic.Uint64
	Execs               atomic.Uint64
	Exits               atomic.Uint64 // address spaces torn down (exit_mmap)
	Migrations          atomic.Uint64 // tasks moved to another CPU (migrate.go)
	// ptep_clear_flush calls (unbatched unmaps and COW), the cycles they
	// took, and the cycles of their final DSB: Barry Song's profile.
	PtepClearFlushes        atomic.Uint64
	PtepClearFlushCycles    atomic.Uint64
	PtepClearFlushDSBCycles atomic.Uint64
	MTHPAllocs              atomic.Uint64 // large anonymous folios mapped by a fault (mthp.go)
	FolioSplits             atomic.Uint64 // large folios split by split_folio
}

// New builds the kernel of machine m and installs its oracle as m's observer.
func New(m *mmu.Machine, cfg Config) (*Kernel, error) {
	if cfg.Batch == nil || cfg.Nested == nil {
		return nil, fmt.Errorf("mm: a batch and a nested policy are required")
	}
	if err := CheckBatchArch(cfg.Batch, m.Config().Arch); err != nil {
		return nil, err
	}
	phys := m.Phys()
	slots := cfg.SwapSlots
	if slots == 0 {
		slots = phys.Frames()
	}
	if slots < 0 {
		return nil, fmt.Errorf("mm: %d swap slots", slots)
	}
	k := &Kernel{
		m: m, phys: phys, cfg: cfg, batch: cfg.Batch, nested: cfg.Nested,
		folios: make([]Folio, phys.Frames()),
		cost:   m.Config().Cost,
		arch:   m.Config().Arch,
		kpti:   m.Config().KPTI,
		det:    m.Scheduler().Mode() == sched.Det,
	}
	k.nextASID = k.firstASID()
	k.swap.init(slots)
	k.oracle = newOracle(k)
	m.SetObserver(k.oracle)
	return k, nil
}

// Machine returns the hardware.
func (k *Kernel) Machine() *mmu.Machine { return k.m }

// Oracle returns the checker of user-visible semantics.
func (k *Kernel) Oracle() *Oracle { return k.oracle }

// Batch and Nested return the policies in force.
func (k *Kernel) Batch() BatchPolicy   { return k.batch }
func (k *Kernel) Nested() NestedPolicy { return k.nested }

// SetReclaim installs the reclaimer (which usually needs the kernel to exist
// first); set it before the machine runs.
func (k *Kernel) SetReclaim(r Reclaimer) { k.cfg.Reclaim = r }

// Now is the global clock: every user access reads it, every syscall return
// and every linearising PTE change advances it.
func (k *Kernel) Now() uint64 { return k.clock.Load() }

// tick advances the clock and returns the new time.
func (k *Kernel) tick() uint64 { return k.clock.Add(1) }

// accessStamp is the clock a user access starts at. In det mode every
// access takes a tick of its own, so that no two events tie and the oracle
// can order every store and load; in parallel mode accesses only read the
// clock (a shared counter bumped by every access would serialise the
// CPUs), and accesses tied with a store are not checked.
func (k *Kernel) accessStamp() uint64 {
	if k.det {
		return k.tick()
	}
	return k.clock.Load()
}

// Folio returns the metadata of frame pfn.
func (k *Kernel) Folio(pfn uint64) *Folio { return &k.folios[pfn] }

// FreeFrames is the number of free frames.
func (k *Kernel) FreeFrames() int { return k.phys.FreeFrames() }
