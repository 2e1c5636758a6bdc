package litmus

import (
	"fmt"
	"sync/atomic"

	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/pagetable"
	"github.com/mmubench/mmubench/sched"
)

// Where a test's locations live. Location i is the virtual page vaBase+i
// (one level-3 table maps them all), backed by its own physical frame;
// its descriptor is reached at linearMap | the descriptor's physical
// address, as the kernel reaches page tables through its linear map, which
// the test never remaps.
const (
	vaBase    = 0x4000_0000
	linearMap = 0xffff_0000_0000_0000
	asid      = 0 // every thread runs in one address space
	maxLocs   = pagetable.Entries
)

// Descriptor bits every location's PTE carries whatever the test says:
// a level-3 page, EL0-accessible, not global (so ASID operations reach it).
const pteFixed = pagetable.PTETable | pagetable.PTEUser | pagetable.PTENG

// layout maps a test's symbolic values to words.
type layout struct {
	pfn    []uint64         // location → its frame
	slot   []pagetable.Slot // location → its descriptor
	byPFN  map[uint64]int
	bySlot map[uint64]int // descriptor physical address → location
}

func (l *layout) va(i int) uint64 { return vaBase + uint64(i)<<pagetable.PageShift }

// locOfVA is the location whose page holds va, or -1.
func (l *layout) locOfVA(va uint64) int {
	if va < vaBase || va >= l.va(len(l.pfn)) {
		return -1
	}
	return int((va - vaBase) >> pagetable.PageShift)
}

func (l *layout) pteAddr(i int) uint64 { return linearMap | l.slot[i].Addr }

// locOfPTEAddr is the location whose descriptor a is the address of, or -1.
func (l *layout) locOfPTEAddr(a uint64) int {
	if a&linearMap != linearMap {
		return -1
	}
	if i, ok := l.bySlot[a&^linearMap]; ok {
		return i
	}
	return -1
}

// desc encodes a descriptor value.
func (l *layout) desc(v PTEVal) pagetable.PTE {
	d := pagetable.NewPage(l.pfn[v.OA], pteFixed)
	if !v.Valid {
		d &^= pagetable.PTEValid
	}
	if v.AF {
		d |= pagetable.PTEAF
	}
	if !v.DB {
		d |= pagetable.PTERdonly
	}
	if v.DBM {
		d |= pagetable.PTEDBM
	}
	return d
}

// decode is the inverse of desc; false if d is not a descriptor desc makes.
func (l *layout) decode(d pagetable.PTE) (PTEVal, bool) {
	known := pagetable.AddrMask | pteFixed | pagetable.PTEValid | pagetable.PTEAF | pagetable.PTERdonly | pagetable.PTEDBM
	oa, ok := l.byPFN[d.PFN()]
	if !ok || d&^known != 0 || d&pteFixed != pteFixed {
		return PTEVal{}, false
	}
	return PTEVal{OA: oa, Valid: d.Valid(), AF: d.Young(), DB: !d.Rdonly(), DBM: d.DBM()}, true
}

// word is a value's 64-bit encoding.
func (l *layout) word(v Value) uint64 {
	switch v.Kind {
	case VVA:
		return l.va(v.Loc)
	case VPTEAddr:
		return l.pteAddr(v.Loc)
	case VPA:
		return l.pfn[v.Loc] << pagetable.PageShift
	case VPTE:
		return uint64(l.desc(v.PTE))
	}
	return v.N
}

// keepChooser makes det mode run one goroutine's calls as they come: the
// current thread always keeps the turn and no coin comes up heads, so the
// mmu never applies an invalidation by itself (the explorer does, with
// ApplyPending).
type keepChooser struct{}

func (keepChooser) Pick(_ uint64, cur int, eligible []int) int {
	if cur >= 0 {
		return cur
	}
	return eligible[0]
}

func (keepChooser) Chance(uint64, int, int, uint32, uint32) bool { return false }

// world is a test loaded on a machine: the mmu CPUs, memory, and the
// threads' architectural state.
type world struct {
	t    *Test
	m    *mmu.Machine
	cpus []*mmu.CPU
	lay  layout
	th   []threadState
	data []*[mmu.FrameWords]uint64 // location → its frame's words
	// offs are the word offsets (within a page) of data accesses so far,
	// 0 first: the data cells are every location's frame at each of them.
	// A cell not yet tracked has never been written, so it holds 0.
	offs    []int
	offSeen [mmu.FrameWords]bool
	// memAhead[t][pc]: a memory instruction is reachable from pc.
	memAhead [][]bool
	regsUsed [][]uint8 // per thread, the registers it or the condition names
	// live[t][pc]: the registers (bit n; bit 32 the flags) whose values
	// can still matter at pc: read before written from pc on, or named by
	// the condition (live everywhere: a fault may end the thread anywhere).
	// The state hash ignores the others.
	live [][]uint64
	// condLive[t]: the registers the condition or the locations line name.
	condLive []uint64
	// readsAhead[t][pc]: the locations whose data a load (or atomic)
	// reachable from pc may read into a live register; nil entry = any
	// (an unknown address, or one whose translation software may change,
	// which can lead to any location's page).
	// With condMem, it decides which data cells the state hash keeps.
	readsAhead [][][]bool
	condMem    []bool // the condition or the locations line names [l]
	// quietAhead[t][pc]: from pc on, thread t can only do what no outcome
	// sees, as long as the data it may write (writesAhead[t][pc]; nil =
	// any) is dead: register operations, barriers, loads and stores of
	// data at known addresses, and only if no access can update a
	// descriptor in hardware (hwUpdates is false); no TLBI, no descriptor
	// access, no loop, no fault a fault atom names. See settle.
	quietAhead  [][]bool
	writesAhead [][][]bool
	hwUpdates   bool     // TTHM=HA or HD: an access may update a descriptor
	written     []uint64 // per thread, the registers it ever writes
	cachedBuf   []mmu.Cached

	// mutable[l]: software may write location l's descriptor — its
	// address pte_l is a value of the initial state. Only these
	// descriptors change other than by the hardware's own AF and dirty
	// updates, so only their translations can be stale.
	mutable    []bool
	anyMutable bool

	observeAll bool // Options.observeAll: every fault is part of the state

	printed []printed   // what a state line shows (stateLine fills it)
	faults  []FaultAtom // the condition's fault atoms
}

// newWorld builds the machine for t: one CPU per thread, an L1 TLB big
// enough never to evict (so replacement state never changes what happens),
// no L2 and no walk cache (the tables above the leaves never change), the
// tables and memory the initial state says.
func newWorld(t *Test) (*world, error) {
	n := len(t.Locs)
	if n > maxLocs {
		return nil, fmt.Errorf("%d locations (at most %d)", n, maxLocs)
	}
	entries := 4
	for entries < n {
		entries <<= 1
	}
	cfg := mmu.DefaultConfig()
	cfg.CPUs = max(len(t.Threads), 1)
	cfg.Frames = 1 + pagetable.Levels + n
	cfg.L1 = mmu.TLBGeometry{Entries: entries, Ways: entries}
	cfg.L2, cfg.WalkCache = mmu.TLBGeometry{}, mmu.TLBGeometry{}
	cfg.DeliverNum, cfg.DeliverDen = 1, 1
	cfg.Sched = sched.Config{Mode: sched.Det, Chooser: keepChooser{}}
	m, err := mmu.NewMachine(cfg)
	if err != nil {
		return nil, err
	}
	phys := m.Phys()
	tables, err := pagetable.New(phys)
	if err != nil {
		return nil, err
	}
	w := &world{t: t, m: m}
	w.lay.byPFN, w.lay.bySlot = map[uint64]int{}, map[uint64]int{}
	for i := 0; i < n; i++ {
		s, err := tables.Ensure(w.lay.va(i))
		if err != nil {
			return nil, err
		}
		w.lay.slot = append(w.lay.slot, s)
		w.lay.bySlot[s.Addr] = i
	}
	for i := 0; i < n; i++ {
		f, err := phys.AllocZeroed()
		if err != nil {
			return nil, err
		}
		w.lay.pfn = append(w.lay.pfn, f)
		w.lay.byPFN[f] = i
		w.data = append(w.data, phys.Words(f))
	}
	for i := 0; i < n; i++ {
		v, ok := t.InitPTE[i]
		if !ok {
			v = defaultPTE(i)
		}
		w.lay.slot[i].Store(w.lay.desc(v))
		if mv, ok := t.InitMem[i]; ok {
			atomic.StoreUint64(&w.data[i][0], w.lay.word(mv))
		}
	}
	w.offs, w.offSeen[0] = []int{0}, true
	for i := range t.Threads {
		c := m.CPU(i)
		c.SetTTBR0(asid, tables.Root())
		w.cpus = append(w.cpus, c)
	}
	w.th = make([]threadState, len(t.Threads))
	for i, th := range t.Threads {
		for r, v := range th.Init {
			w.th[i].regs[r] = w.lay.word(v)
		}
		w.th[i].done = len(th.Instrs) == 0
	}
	w.hwUpdates = t.HA || t.HD
	w.mutable = make([]bool, n)
	mark := func(v Value) {
		if v.Kind == VPTEAddr {
			w.mutable[v.Loc], w.anyMutable = true, true
		}
	}
	for _, v := range t.InitMem {
		mark(v)
	}
	for _, th := range t.Threads {
		for _, v := range th.Init {
			mark(v)
		}
	}
	w.analyse()
	return w, nil
}

// track makes the word at va's page offset a data cell.
func (w *world) track(va uint64) {
	o := int(va&(pagetable.PageSize-1)) >> 3
	if !w.offSeen[o] {
		w.offSeen[o] = true
		w.offs = append(w.offs, o)
	}
}
