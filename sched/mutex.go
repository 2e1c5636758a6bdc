package sched

import (
	"sync/atomic"

	gsync "gvisor.dev/gvisor/pkg/sync"
)

// Mutex is an emulated kernel lock (a page-table lock, an mmap lock) that
// works in both modes: acquiring and releasing it are yield points, and a
// thread that waits for it hands the turn on (Det) or parks (Parallel) while
// still doing its service work. The zero value is an unlocked mutex.
type Mutex struct {
	// Name says which lock this is in deadlock reports.
	Name string

	mu    gsync.Mutex
	owner atomic.Int32 // thread id + 1; 0 = unlocked
	// released is the releasing thread's emulated time at the last Unlock:
	// a thread that waited takes the lock no earlier (clocked Det mode).
	released atomic.Uint64
	q        WaitQueue
}

// Lock acquires m on behalf of t.
func (m *Mutex) Lock(t *Thread) {
	t.YieldVisible()
	waited := false
	for !m.mu.TryLock() {
		m.q.Wait(t, m.what(), m.unlocked)
		waited = true
	}
	m.owner.Store(int32(t.id) + 1)
	if waited {
		t.catchUp(m.released.Load())
	}
}

// TryLock acquires m if it is free.
func (m *Mutex) TryLock(t *Thread) bool {
	t.YieldVisible()
	if !m.mu.TryLock() {
		return false
	}
	m.owner.Store(int32(t.id) + 1)
	return true
}

// Unlock releases m, which t must hold.
func (m *Mutex) Unlock(t *Thread) {
	if m.owner.Load() != int32(t.id)+1 {
		panic("sched: Unlock of a mutex not held by the thread") // a bug in the emulated kernel
	}
	m.released.Store(t.releaseTime())
	m.owner.Store(0)
	m.mu.Unlock()
	m.q.Notify()
	t.YieldVisible()
}

// Holder returns the id of the thread holding m, or -1.
func (m *Mutex) Holder() int { return int(m.owner.Load()) - 1 }

func (m *Mutex) unlocked() bool { return m.owner.Load() == 0 }

func (m *Mutex) what() string {
	if m.Name == "" {
		return "mutex"
	}
	return m.Name
}
