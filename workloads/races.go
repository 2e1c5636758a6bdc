package workloads

import (
	"sync/atomic"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/sched"
)

func init() {
	register(&Workload{
		Name: "reclaim-mprotect",
		Description: "seed 000's race: reclaim unmaps with a deferred flush while another CPU mprotects " +
			"the page read-only and a third keeps writing through its cached translation",
		MinCPUs: 3,
		Rounds:  4,
		Orders:  []string{"reclaim", "mprotect"},
		Setup:   setupReclaimMprotect,
	})
	register(&Workload{
		Name: "madvfree-race",
		Description: "seed 001's race: two CPUs MADV_FREE the same range, one then writes through its " +
			"stale writable entry, and reclaim discards the clean lazy-free pages",
		MinCPUs: 2,
		Rounds:  4,
		Orders:  []string{"helper", "writer"},
		Setup:   setupMadvFreeRace,
	})
	register(&Workload{
		Name: "dontneed-race",
		Description: "Nadav Amit's MADV_DONTNEED reproducer: a helper zaps N pages while the main thread " +
			"zaps one of them and reads it back; a stale TLB entry shows the old value",
		MinCPUs: 2,
		Rounds:  4,
		Orders:  []string{"helper", "main"},
		Setup:   setupDontneedRace,
	})
}

// The writer's buffer: the first reclaimMprotectDirty pages are written
// (dirty PTEs, cached writable: the race needs one), the rest only read
// (clean PTEs, whose flushes reclaim really batches).
const (
	reclaimMprotectDirty = 16
	reclaimMprotectClean = 64
)

// setupReclaimMprotect is seed 000's race, one trial per dirty page and
// round. CPU0 (the writer) loops over its buffer, writing the dirty pages
// and reading the clean ones. For each dirty page P, CPU2 (a kernel
// reclaimer: kswapd having picked P) unmaps P with TTU_BATCH_FLUSH while
// CPU1 calls mprotect(P, PROT_READ), waits for the writer to make a full
// pass, and makes P writable again. A write to P that succeeds after the
// mprotect returned is the race. Each round ends with the reclaimer
// paging out the clean pages in batches.
func setupReclaimMprotect(env *Env) (func(c *mmu.CPU), error) {
	k := env.Kernel
	space, err := k.NewMM()
	if err != nil {
		return nil, err
	}
	rounds := env.Rounds
	writer := k.NewTask(env.Machine.CPU(0), space, "writer")
	mprot := k.NewTask(env.Machine.CPU(1), space, "mprotect")
	kswapd := k.NewTask(env.Machine.CPU(2), nil, "kswapd")
	dirty, clean := uint64(reclaimMprotectDirty), uint64(reclaimMprotectClean)
	if env.Params.Small {
		dirty, clean = 2, 1
	}
	pages := dirty + clean
	trials := rounds * int(dirty)
	var buf uint64
	var mapped, done latch
	var passes atomic.Uint64
	var passQ sched.WaitQueue
	announced, protected := latches(trials), latches(trials)
	unmapped, changed := latches(trials), latches(trials) // the racers' calls returned
	present := func(va uint64) bool { return isMapped(space, va) }
	readOnly := func(va uint64) bool { pte, ok := space.Tables().Lookup(va); return ok && pte.Rdonly() }
	pfnOf := func(va uint64) []uint64 { return mappedFolio(k, space, va) }
	return func(c *mmu.CPU) {
		switch c.ID() {
		case 0:
			var err error
			if buf, err = writer.Mmap(pages*page, mm.ProtRead|mm.ProtWrite, false); err != nil {
				env.Fail("mmap: %v", err)
				return
			}
			for i := uint64(0); i < pages; i++ {
				if err := writer.Store(buf+i*page, i); err != nil {
					env.Fail("populate: %v", err)
				}
			}
			mapped.Set()
			for n := uint64(1); !done.set.Load(); n++ {
				for i := uint64(0); i < pages; i++ {
					var err error
					if i < dirty {
						err = writer.Store(buf+i*page, n<<8|i)
					} else {
						_, err = writer.Load(buf + i*page)
					}
					if err != nil && !isSegv(err) {
						env.Fail("writer: %v", err)
						return
					}
				}
				passes.Add(1)
				passQ.Notify()
			}
		case 1:
			mapped.Wait(mprot, "buffer mapped")
			for n := 0; n < trials; n++ {
				va := buf + uint64(n)%dirty*page
				announced[n].Wait(mprot, "reclaim of the page")
				if after(env, "mprotect") {
					waitFor(mprot, "reclaim's unmap", func() bool { return !present(va) || unmapped[n].set.Load() })
				}
				if err := mprot.Mprotect(va, page, mm.ProtRead); err != nil {
					env.Fail("mprotect: %v", err)
				}
				changed[n].Set()
				// Let the writer try the page at least once.
				seen := passes.Load()
				passQ.Wait(mprot.Thread(), "a writer pass", func() bool { return passes.Load() >= seen+1 })
				if err := mprot.Mprotect(va, page, mm.ProtRead|mm.ProtWrite); err != nil {
					env.Fail("mprotect: %v", err)
				}
				protected[n].Set()
			}
		case 2:
			mapped.Wait(kswapd, "buffer mapped")
			for n := 0; n < trials; n++ {
				i := uint64(n) % dirty
				va := buf + i*page
				pfns := pfnOf(va)
				announced[n].Set()
				if after(env, "reclaim") {
					waitFor(kswapd, "mprotect's change", func() bool { return readOnly(va) || changed[n].set.Load() })
				}
				env.Reclaim.ReclaimPages(kswapd, pfns)
				unmapped[n].Set()
				protected[n].Wait(kswapd, "mprotect of the page")
				if i == dirty-1 { // end of a round: the clean pages, batched
					var cleanPFNs []uint64
					for j := dirty; j < pages; j++ {
						cleanPFNs = append(cleanPFNs, pfnOf(buf+j*page)...)
					}
					env.Reclaim.ReclaimPages(kswapd, cleanPFNs)
				}
			}
			done.Set()
		}
	}, nil
}

// madvFreePages is the range both CPUs MADV_FREE.
const madvFreePages = 16

// setupMadvFreeRace: CPU0 (W) dirties its pages, then MADV_FREEs them while
// CPU1 does the same; W writes them again once its madvise returned, CPU1
// then pages them out (discarding clean lazy-free pages), and W reads them
// back. A write lost to the discard is the race.
func setupMadvFreeRace(env *Env) (func(c *mmu.CPU), error) {
	k := env.Kernel
	space, err := k.NewMM()
	if err != nil {
		return nil, err
	}
	rounds := env.Rounds
	w := k.NewTask(env.Machine.CPU(0), space, "writer")
	other := k.NewTask(env.Machine.CPU(1), space, "helper")
	pages := uint64(madvFreePages)
	if env.Params.Small {
		pages = 2
	}
	var buf uint64
	var mapped latch
	dirtied, rewritten, reclaimed := latches(rounds), latches(rounds), latches(rounds)
	wDone, otherDone := latches(rounds), latches(rounds) // the racers' MADV_FREEs returned
	var arrived atomic.Int64
	length := pages * page
	cleaned := func() bool { // every page's PTE made clean: somebody's MADV_FREE passed
		for i := uint64(0); i < pages; i++ {
			if pte, ok := space.Tables().Lookup(buf + i*page); ok && pte.Dirty() {
				return false
			}
		}
		return true
	}
	return func(c *mmu.CPU) {
		switch c.ID() {
		case 0:
			var err error
			if buf, err = w.Mmap(length, mm.ProtRead|mm.ProtWrite, false); err != nil {
				env.Fail("mmap: %v", err)
			}
			mapped.Set()
			for r := 0; r < rounds; r++ {
				for i := uint64(0); i < pages; i++ {
					if err := w.Store(buf+i*page, uint64(r)<<32|i); err != nil {
						env.Fail("store: %v", err)
					}
				}
				dirtied[r].Set()
				startTogether(w, &arrived, r)
				if after(env, "writer") {
					waitFor(w, "the helper's MADV_FREE", func() bool { return cleaned() || otherDone[r].set.Load() })
				}
				if err := w.Madvise(buf, length, mm.MadvFree); err != nil {
					env.Fail("madvise: %v", err)
				}
				wDone[r].Set()
				for i := uint64(0); i < pages; i++ {
					if err := w.Store(buf+i*page, uint64(r)<<32|1<<16|i); err != nil {
						env.Fail("store: %v", err)
					}
				}
				rewritten[r].Set()
				reclaimed[r].Wait(w, "pageout")
				for i := uint64(0); i < pages; i++ {
					if _, err := w.Load(buf + i*page); err != nil { // the oracle checks the value
						env.Fail("load: %v", err)
					}
				}
			}
		case 1:
			mapped.Wait(other, "buffer mapped")
			for r := 0; r < rounds; r++ {
				dirtied[r].Wait(other, "pages dirtied")
				startTogether(other, &arrived, r)
				if after(env, "helper") {
					waitFor(other, "the writer's MADV_FREE", func() bool { return cleaned() || wDone[r].set.Load() })
				}
				if err := other.Madvise(buf, length, mm.MadvFree); err != nil {
					env.Fail("madvise: %v", err)
				}
				otherDone[r].Set()
				rewritten[r].Wait(other, "pages rewritten")
				if err := other.Madvise(buf, length, mm.MadvPageout); err != nil {
					env.Fail("madvise: %v", err)
				}
				reclaimed[r].Set()
			}
		}
	}, nil
}

// dontneedPages is how many pages the helper zaps.
const dontneedPages = 64

// setupDontneedRace is Nadav Amit's reproducer: the main thread (CPU0)
// writes *p = 8, sets a flag, spins briefly, MADV_DONTNEEDs p's page and
// reads *p; the helper (CPU1) waits for the flag and MADV_DONTNEEDs all N
// pages. Reading 8 after the main thread's madvise returned means a stale
// TLB entry survived: the page must read as zero.
func setupDontneedRace(env *Env) (func(c *mmu.CPU), error) {
	k := env.Kernel
	space, err := k.NewMM()
	if err != nil {
		return nil, err
	}
	rounds := env.Rounds
	main := k.NewTask(env.Machine.CPU(0), space, "main")
	helper := k.NewTask(env.Machine.CPU(1), space, "helper")
	pages := uint64(dontneedPages)
	if env.Params.Small {
		pages = 3
	}
	var buf uint64
	var mapped latch
	flag, helped, zapped := latches(rounds), latches(rounds), latches(rounds)
	length := pages * page
	gone := func() bool { _, ok := space.Tables().Lookup(buf); return !ok } // *p's PTE zapped
	return func(c *mmu.CPU) {
		switch c.ID() {
		case 0:
			var err error
			if buf, err = main.Mmap(length, mm.ProtRead|mm.ProtWrite, false); err != nil {
				env.Fail("mmap: %v", err)
			}
			mapped.Set()
			for r := 0; r < rounds; r++ {
				for i := pages - 1; ; i-- { // *p last, so its entry is fresh
					if err := main.Store(buf+i*page, 8); err != nil {
						env.Fail("store: %v", err)
					}
					if i == 0 {
						break
					}
				}
				flag[r].Set()
				for i := 0; i < 8; i++ { // spin briefly
					main.CPU().Yield()
				}
				if after(env, "main") {
					waitFor(main, "the helper's zap", func() bool { return gone() || helped[r].set.Load() })
				}
				if err := main.Madvise(buf, page, mm.MadvDontneed); err != nil {
					env.Fail("madvise: %v", err)
				}
				zapped[r].Set()
				if _, err := main.Load(buf); err != nil { // the oracle wants 0
					env.Fail("load: %v", err)
				}
				helped[r].Wait(main, "helper's madvise")
			}
		case 1:
			mapped.Wait(helper, "buffer mapped")
			for r := 0; r < rounds; r++ {
				flag[r].Spin(helper, "flag") // the reproducer's helper spins on a volatile flag
				if after(env, "helper") {
					waitFor(helper, "main's zap", func() bool { return gone() || zapped[r].set.Load() })
				}
				if err := helper.Madvise(buf, length, mm.MadvDontneed); err != nil {
					env.Fail("madvise: %v", err)
				}
				helped[r].Set()
			}
		}
	}, nil
}

// isMapped reports whether va has a valid page descriptor in space.
func isMapped(space *mm.MM, va uint64) bool { _, ok := space.Tables().Lookup(va); return ok }

// mappedFolio takes a reference on the folio va maps (folio_get: kswapd
// having picked it from the LRU) and returns its frame; nothing if va
// maps none, or its folio is being freed.
func mappedFolio(k *mm.Kernel, space *mm.MM, va uint64) []uint64 {
	if pte, ok := space.Tables().Lookup(va); ok && k.FolioGet(pte.PFN()) {
		return []uint64{pte.PFN()}
	}
	return nil
}

// writePasses is a catalogue race's writer after setup: pass after pass
// until done, it loads each page's word (the oracle checks the value) and
// stores a new one, so its TLB holds the pages writable and dirty; each
// pass is counted for the racers that wait for the writer to go round.
func writePasses(env *Env, w *mm.Task, buf, pages uint64, done *latch, passes *atomic.Uint64, passQ *sched.WaitQueue) {
	for n := uint64(1); !done.set.Load(); n++ {
		for i := uint64(0); i < pages; i++ {
			va := buf + i*page
			if _, err := w.Load(va); err != nil {
				env.Fail("writer: %v", err)
				return
			}
			if err := w.Store(va, n<<8|i); err != nil {
				env.Fail("writer: %v", err)
				return
			}
		}
		passes.Add(1)
		passQ.Notify()
	}
}

// startTogether is a spin barrier for two threads at round r: each waits,
// yielding, until both have arrived. Racing syscalls must start together
// in parallel mode, where a blocking wait's wake-up takes longer in host
// time than the race window lasts.
func startTogether(t *mm.Task, arrived *atomic.Int64, r int) {
	want := int64(2 * (r + 1))
	arrived.Add(1)
	for arrived.Load() < want {
		t.CPU().Yield()
		t.Thread().Relax()
	}
}
