package workloads

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
)

func init() {
	register(&Workload{
		Name: "unixbench-shell1",
		Description: "UnixBench's Shell Scripts (1 concurrent), THREADS copies (default: every CPU but the " +
			"kswapds'): each copy's shell runs tst.sh's pipeline of sh, sort, od, sort, grep, tee, wc, rm " +
			"ROUNDS times — fork (copy on write), exec of the program (text, libc and ld.so mapped from " +
			"shared files, with fault-around), relocation and RELRO mprotects, ACCESSES accesses over its " +
			"text, libc, heap, stack and input with COMPUTE cycles of work each, heap trims (munmap), exit — " +
			"while kswapd and direct reclaim evict shared file pages from every process that maps them; " +
			"reports loops per emulated minute and the UnixBench index",
		MinCPUs:  2,
		Rounds:   2,
		Defaults: Params{Accesses: 2000, Compute: 1442},
		Setup:    setupShell1,
	})
}

// A program of the shell script: its binary's size and how much of it, of
// libc and of the input file it touches.
type shellProg struct {
	name      string
	textPages uint64 // the binary
	textTouch int
	libcTouch int  // distinct libc pages it uses
	input     bool // reads sort.src (or the previous stage's output)
}

// tst.sh: sort >sort.$$ <sort.src; od sort.$$ | sort -n -k 1 >od.$$;
// grep the sort.$$ | tee grep.$$ | wc >wc.$$; rm ... — run by a sh.
var shellScript = []shellProg{
	{"sh", 256, 48, 96, false},
	{"sort", 48, 24, 64, true},
	{"od", 24, 12, 40, true},
	{"sort", 48, 24, 64, true},
	{"grep", 64, 24, 56, true},
	{"tee", 16, 8, 32, true},
	{"wc", 16, 8, 32, true},
	{"rm", 16, 8, 24, false},
}

// Shared files every process maps (sizes in pages, from a distribution's
// aarch64 packages, rounded).
const (
	libcPages   = 448
	ldsoPages   = 48
	inputPages  = 16
	dataPages   = 4  // a binary's or libc's .data/.got, copied on write by relocation
	heapPages   = 24 // malloc arena
	stackPages  = 8
	relroPages  = 2 // of libc's .data, made read-only after relocation
	phases      = 4 // the program's work is split by free()s that trim the heap
	heapTrimmed = 2 // pages of the arena each trim gives back (munmap)
)

// shellImages builds the executable images of the script's programs.
type shellImages struct {
	libc, ldso, input *mm.File
	images            map[string]*mm.Image
}

func newShellImages(k *mm.Kernel) *shellImages {
	fill := func(name string) func(uint64, *[mmu.FrameWords]uint64) {
		return func(i uint64, w *[mmu.FrameWords]uint64) {
			for j := range w {
				w[j] = uint64(len(name))<<48 | i<<16 | uint64(j)
			}
		}
	}
	si := &shellImages{
		libc:   k.NewFile("libc.so.6", libcPages+dataPages, fill("libc")),
		ldso:   k.NewFile("ld-linux-aarch64.so.1", ldsoPages, fill("ld")),
		input:  k.NewFile("sort.src", inputPages, fill("input")),
		images: map[string]*mm.Image{},
	}
	for _, p := range shellScript {
		if si.images[p.name] != nil {
			continue
		}
		bin := k.NewFile(p.name, p.textPages+dataPages, fill(p.name))
		rw := mm.ProtRead | mm.ProtWrite
		si.images[p.name] = &mm.Image{Name: p.name, Segments: []mm.Segment{
			{File: bin, Pages: p.textPages, Prot: mm.ProtRead},
			{File: bin, PgOff: p.textPages, Pages: dataPages, Prot: rw},
			{File: si.ldso, Pages: ldsoPages, Prot: mm.ProtRead},
			{File: si.libc, Pages: libcPages, Prot: mm.ProtRead},
			{File: si.libc, PgOff: libcPages, Pages: dataPages, Prot: rw},
			{Pages: heapPages, Prot: rw},
			{Pages: stackPages, Prot: rw},
			{File: si.input, Pages: inputPages, Prot: mm.ProtRead},
		}}
	}
	return si
}

// Segment indexes of an image's mapping addresses.
const (
	segText = iota
	segData
	segLdso
	segLibc
	segLibcData
	segHeap
	segStack
	segInput
)

// setupShell1 is UnixBench's shell1 with Threads copies on CPUs
// 0..Threads-1 and a kswapd per 48 CPUs on the last ones (Kunpeng 920 runs
// one per NUMA node of 48 cores). Each copy's figure is its loops over its
// own CPU's cycles; the run's is their sum, as UnixBench adds its copies'
// loops per minute.
func setupShell1(env *Env) (func(*mmu.CPU), error) {
	k := env.Kernel
	n := env.Machine.NumCPUs()
	kswapds := max(1, n/48)
	p := env.Params
	if p.Threads == 0 || p.Threads > n-kswapds {
		p.Threads = n - kswapds
	}
	if p.Threads < 1 {
		return nil, fmt.Errorf("unixbench-shell1: %d CPUs leave no CPU for a copy besides %d kswapd", n, kswapds)
	}
	env.Params = p
	si := newShellImages(k)
	shells := make([]*mm.Task, p.Threads)
	for i := range shells {
		space, err := k.NewMM()
		if err != nil {
			return nil, err
		}
		shells[i] = k.NewTask(env.Machine.CPU(i), space, "sh")
	}
	reclaimers := make([]*mm.Task, kswapds)
	for i := range reclaimers {
		reclaimers[i] = k.NewTask(env.Machine.CPU(n-1-i), nil, "kswapd")
	}
	var running atomic.Int32
	running.Store(int32(p.Threads))
	var loops atomic.Uint64
	var rate atomicFloat
	hz := float64(env.Machine.Config().Cost.ClockMHz) * 1e6
	seed := env.Machine.Config().Sched.Seed
	env.OnFinish(func() {
		lpm := rate.Load() * 60
		env.SetMetric("loops", float64(loops.Load()))
		env.SetMetric("loops_per_minute", lpm)
		env.SetMetric("index", lpm/42.4*10) // UnixBench's baseline: 42.4 lpm scores 10
	})
	return func(c *mmu.CPU) {
		id := c.ID()
		if id >= n-kswapds {
			env.Reclaim.Kswapd(reclaimers[n-1-id])
			return
		}
		if id >= p.Threads {
			return
		}
		defer func() {
			if running.Add(-1) == 0 {
				env.Reclaim.Stop()
			}
		}()
		t := shells[id]
		r := rand.New(rand.NewPCG(seed, uint64(id)))
		start := c.Counters().Cycles
		// The copy's shell: exec sh once; it forks the script's programs.
		shellVAs, err := t.Exec(si.images["sh"])
		if err != nil {
			env.Fail("exec sh: %v", err)
			return
		}
		for l := 0; l < env.Rounds; l++ {
			for _, prog := range shellScript {
				if err := runShellProg(t, si, shellVAs, prog, p, r); err != nil {
					env.Fail("%s: %v", prog.name, err)
					return
				}
			}
			loops.Add(1)
		}
		cycles := c.Counters().Cycles - start
		rate.Add(float64(env.Rounds) / (float64(cycles) / hz))
	}, nil
}

// runShellProg is one command of the script: the shell parses a line
// (touching its text and heap), forks, and the child execs prog, runs it
// and exits.
func runShellProg(t *mm.Task, si *shellImages, shellVAs []uint64, prog shellProg, p Params, r *rand.Rand) error {
	shell := t.MM()
	shellProgram := shellScript[0]
	// The shell reads the line and sets up the pipeline: its heap pages
	// were write-protected by the last fork, so writing them faults.
	for i := 0; i < 16; i++ {
		if _, err := t.Load(shellVAs[segText] + uint64(r.IntN(int(shellProgram.textPages)))*page); err != nil {
			return fmt.Errorf("shell text: %w", err)
		}
	}
	for i := uint64(0); i < 4; i++ {
		if err := t.Store(shellVAs[segHeap]+i*page, uint64(r.Uint32())); err != nil {
			return fmt.Errorf("shell heap: %w", err)
		}
	}
	child, err := t.Fork()
	if err != nil {
		return fmt.Errorf("fork: %w", err)
	}
	t.SwitchMM(child)
	vas, err := t.Exec(si.images[prog.name])
	if err != nil {
		return fmt.Errorf("exec: %w", err)
	}
	if err := runProgram(t, vas, prog, p, r); err != nil {
		return err
	}
	t.Exit()
	t.SwitchMM(shell)
	return nil
}

// runProgram is the life of an exec'd process: ld.so relocates (writing
// .data pages, copying them from the page cache) and makes the RELRO parts
// of libc and the program read-only; the program runs over its text, libc,
// heap, stack and input, in phases separated by free()s that trim the heap
// (munmap). Each mprotect and munmap takes PTLs and so runs
// flush_tlb_batched_pending, as does exit's unmapping.
func runProgram(t *mm.Task, vas []uint64, prog shellProg, p Params, r *rand.Rand) error {
	for i := uint64(0); i < 16; i++ { // ld.so runs
		if _, err := t.Load(vas[segLdso] + i*page); err != nil {
			return err
		}
	}
	for i := uint64(0); i < dataPages; i++ { // relocation: COW of .data
		if err := t.Store(vas[segData]+i*page, i); err != nil {
			return err
		}
		if err := t.Store(vas[segLibcData]+i*page, i); err != nil {
			return err
		}
	}
	for _, seg := range []int{segLibcData, segData} {
		if err := t.Mprotect(vas[seg], relroPages*page, mm.ProtRead); err != nil {
			return fmt.Errorf("mprotect: %w", err)
		}
	}
	heap := uint64(heapPages)
	for ph := 0; ph < phases; ph++ {
		if err := runPhase(t, vas, prog, p, heap, r); err != nil {
			return err
		}
		heap -= heapTrimmed
		if err := t.Munmap(vas[segHeap]+heap*page, heapTrimmed*page); err != nil {
			return fmt.Errorf("munmap: %w", err)
		}
	}
	return nil
}

// runPhase is a part of the program's work: accesses over a working set of
// its text, libc (a part each program uses, from a shared hot part and its
// own), the heap's first heap pages, the stack and its input, with
// p.Compute cycles of computation per access.
func runPhase(t *mm.Task, vas []uint64, prog shellProg, p Params, heap uint64, r *rand.Rand) error {
	for n := int64(0); n < p.Accesses/phases; n++ {
		t.CPU().Charge(uint64(p.Compute))
		var va uint64
		var store bool
		switch x := r.IntN(100); {
		case x < 35:
			va = vas[segText] + uint64(r.IntN(prog.textTouch))*page
		case x < 65:
			// libc: half of it hot for everyone, the rest spread by program.
			pg := r.IntN(prog.libcTouch)
			if pg >= prog.libcTouch/2 {
				pg = (pg*7 + int(prog.textPages)*13) % libcPages
			}
			va = vas[segLibc] + uint64(pg)*page
		case x < 85:
			va = vas[segHeap] + r.Uint64N(heap)*page
			store = true
		case x < 95:
			va = vas[segStack] + uint64(r.IntN(stackPages))*page
			store = true
		default:
			if !prog.input {
				continue
			}
			va = vas[segInput] + uint64(r.IntN(inputPages))*page
		}
		va += uint64(r.IntN(mmu.FrameWords)) * 8
		var err error
		if store {
			err = t.Store(va, uint64(n))
		} else {
			_, err = t.Load(va)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// atomicFloat accumulates a float64.
type atomicFloat struct{ bits atomic.Uint64 }

func (f *atomicFloat) Add(v float64) {
	for {
		old := f.bits.Load()
		if f.bits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

func (f *atomicFloat) Load() float64 { return math.Float64frombits(f.bits.Load()) }
