package pagetable

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

const goroutines = 8

// barrierMem holds the first n AllocTable calls until all n have arrived, so
// that n goroutines racing for one missing table all allocate one.
type barrierMem struct {
	*testMem
	mu      sync.Mutex
	cond    *sync.Cond
	waiting int
	n       int
}

func (m *barrierMem) AllocTable() (uint64, error) {
	m.mu.Lock()
	if m.n > 0 {
		m.waiting++
		if m.waiting == m.n {
			m.n = 0
			m.cond.Broadcast()
		}
		for m.n > 0 {
			m.cond.Wait()
		}
	}
	m.mu.Unlock()
	return m.testMem.AllocTable()
}

// TestEnsureRaceLosers forces goroutines to race for the same missing
// level-1 table: all allocate one, one CAS wins, the others free theirs.
func TestEnsureRaceLosers(t *testing.T) {
	mem := &barrierMem{testMem: newTestMem()}
	tbl, err := New(mem.testMem)
	if err != nil {
		t.Fatal(err)
	}
	tbl.mem = mem
	mem.cond = sync.NewCond(&mem.mu)
	mem.n = goroutines
	const va = 0x7fff_1234_5000
	addrs := make([]uint64, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			s, err := tbl.Ensure(va)
			if err != nil {
				t.Error(err)
				return
			}
			addrs[g] = s.Addr
		})
	}
	wg.Wait()
	for g := range addrs {
		if addrs[g] != addrs[0] {
			t.Errorf("goroutine %d got slot %#x, goroutine 0 %#x", g, addrs[g], addrs[0])
		}
	}
	if mem.frees < goroutines-1 || mem.live() != 4 || reachable(t, tbl) != 4 {
		t.Errorf("frees %d (want >= %d), live %d, reachable %d (want 4)", mem.frees, goroutines-1, mem.live(), reachable(t, tbl))
	}
	mem.checkMisuse(t)
}

// TestEnsureConcurrent has goroutines Ensure overlapping VAs in different
// orders (and Map the ones they own) while a hardware walker reads the
// tables, then checks one table per prefix and no leaks.
func TestEnsureConcurrent(t *testing.T) {
	rounds := 30
	if raceEnabled || testing.Short() {
		rounds = 8
	}
	totalFrees := 0
	for round := range uint64(rounds) {
		r := rand.New(rand.NewPCG(round, 99))
		set := map[uint64]bool{}
		for len(set) < 256 {
			var va uint64
			switch r.IntN(4) {
			case 0, 1: // a few 2 MiB regions
				va = clusters2M[r.IntN(len(clusters2M))] + r.Uint64N(Entries)<<PageShift
			case 2: // many L3 tables under one L2, many L2 under one L1
				va = clusters1G[0] + r.Uint64N(8)<<30 + r.Uint64N(8)<<21 + r.Uint64N(4)<<PageShift
			default:
				va = r.Uint64N(MaxVA>>PageShift) << PageShift
			}
			set[va] = true
		}
		vas := make([]uint64, 0, len(set))
		for va := range set {
			vas = append(vas, va)
		}
		slices.Sort(vas)

		tbl, mem := newTables(t)
		addrs := make([][]uint64, goroutines)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				<-start
				order := make([]int, len(vas))
				for i := range order {
					order[i] = i
				}
				if g%2 == 1 { // half in the same order, half shuffled
					rand.New(rand.NewPCG(round, uint64(g))).Shuffle(len(order), func(i, j int) {
						order[i], order[j] = order[j], order[i]
					})
				}
				addrs[g] = make([]uint64, len(vas))
				for _, i := range order {
					s, err := tbl.Ensure(vas[i])
					if err != nil {
						t.Error(err)
						return
					}
					addrs[g][i] = s.Addr
					if i%goroutines == g {
						if err := tbl.Map(vas[i], NewPage(uint64(i+1), PTEAF)); err != nil {
							t.Error(err)
						}
					}
				}
			})
		}
		wg.Go(func() { // the hardware walker
			<-start
			for n := range 4 * len(vas) {
				i := n % len(vas)
				w := tbl.Walk(vas[i])
				if w.Reads != w.Level+1 || (w.OK && (w.Level != 3 || w.PTE != NewPage(uint64(i+1), PTEAF))) {
					t.Errorf("concurrent Walk(%#x) = %+v", vas[i], w)
				}
			}
		})
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}

		for i, va := range vas {
			for g := 1; g < goroutines; g++ {
				if addrs[g][i] != addrs[0][i] {
					t.Fatalf("round %d: Ensure(%#x) gave slot %#x to goroutine %d, %#x to goroutine 0", round, va, addrs[g][i], g, addrs[0][i])
				}
			}
			if p, ok := tbl.Lookup(va); !ok || p != NewPage(uint64(i+1), PTEAF) {
				t.Fatalf("round %d: Lookup(%#x) = %v %v", round, va, p, ok)
			}
		}
		need := needed(set)
		if live, reach := mem.live(), reachable(t, tbl); live != need || reach != need || mem.allocs-mem.frees != need {
			t.Fatalf("round %d: live %d reachable %d allocs-frees %d, want %d tables", round, live, reach, mem.allocs-mem.frees, need)
		}
		mem.checkMisuse(t)
		totalFrees += mem.frees
	}
	t.Logf("%d rounds: %d tables freed by CAS losers", rounds, totalFrees)
}
