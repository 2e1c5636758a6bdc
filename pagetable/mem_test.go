package pagetable

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

var errNoMemory = errors.New("test: out of memory")

// testMem is a Memory of table frames keyed by PFN. Freed frames are
// dropped (never reused), so a use after free shows up as a missing frame;
// freeing a non-zero or unknown frame is recorded as a misuse.
type testMem struct {
	mu       sync.RWMutex
	frames   map[uint64]*[Entries]uint64
	next     uint64
	attempts int
	allocs   int
	frees    int
	failAt   int // if > 0, the failAt-th allocation attempt fails
	misuse   []string
}

func newTestMem() *testMem {
	return &testMem{frames: make(map[uint64]*[Entries]uint64), next: 0x80000}
}

func (m *testMem) Words(pfn uint64) *[512]uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.frames[pfn]
}

func (m *testMem) AllocTable() (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempts++
	if m.attempts == m.failAt {
		return 0, errNoMemory
	}
	pfn := m.next
	m.next++
	m.frames[pfn] = new([Entries]uint64)
	m.allocs++
	return pfn, nil
}

func (m *testMem) FreeTable(pfn uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.frames[pfn]
	if !ok {
		m.misuse = append(m.misuse, fmt.Sprintf("free of unknown frame %#x", pfn))
		return
	}
	for i := range w {
		if v := atomic.LoadUint64(&w[i]); v != 0 {
			m.misuse = append(m.misuse, fmt.Sprintf("free of non-empty frame %#x: [%d] = %v", pfn, i, PTE(v)))
			break
		}
	}
	delete(m.frames, pfn)
	m.frees++
}

// live returns the number of allocated, unfreed frames.
func (m *testMem) live() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.frames)
}

// checkMisuse fails t if the memory saw a bad free.
func (m *testMem) checkMisuse(t testing.TB) {
	t.Helper()
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, s := range m.misuse {
		t.Error(s)
	}
}

// reachable counts the tables reachable from tbl's root (root included),
// failing t if one is reachable twice or a linked frame is missing.
func reachable(t testing.TB, tbl *Tables) int {
	t.Helper()
	seen := map[uint64]bool{}
	var walk func(pfn uint64, level int)
	walk = func(pfn uint64, level int) {
		if seen[pfn] {
			t.Fatalf("table %#x reachable twice", pfn)
		}
		seen[pfn] = true
		words := tbl.Memory().Words(pfn)
		if words == nil {
			t.Fatalf("linked level-%d table %#x is not in memory", level, pfn)
		}
		if level == Levels-1 {
			return
		}
		for i := range words {
			if p := PTE(atomic.LoadUint64(&words[i])); p.IsTable(level) {
				walk(p.PFN(), level+1)
			}
		}
	}
	walk(tbl.Root(), 0)
	return len(seen)
}

// needed returns the number of tables needed to map vas: the root plus one
// table per distinct L1, L2 and L3 prefix.
func needed[V any](vas map[uint64]V) int {
	prefixes := map[[2]uint64]bool{}
	for va := range vas {
		for l := 1; l < Levels; l++ {
			prefixes[[2]uint64{uint64(l), va >> LevelShift(l-1)}] = true
		}
	}
	return 1 + len(prefixes)
}
