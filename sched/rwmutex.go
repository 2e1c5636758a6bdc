package sched

import (
	"sync/atomic"

	gsync "gvisor.dev/gvisor/pkg/sync"
)

// RWMutex is an emulated reader/writer semaphore (the mmap lock): many
// readers or one writer. Like Mutex, its operations are yield points and a
// waiting thread keeps doing its service work. The zero value is unlocked.
type RWMutex struct {
	// Name says which lock this is in deadlock reports.
	Name string

	mu      gsync.Mutex  // makes check-and-take atomic in Parallel mode
	readers atomic.Int32 // threads holding it for reading
	writer  atomic.Int32 // thread id + 1 of the writer; 0 = none
	// released is the releasing thread's emulated time at the last write
	// release (Unlock, Downgrade), or the latest of the read releases since:
	// a thread that waited takes rw no earlier (clocked Det mode).
	released atomic.Uint64
	q        WaitQueue
}

// RLock takes rw for reading on behalf of t (down_read).
func (rw *RWMutex) RLock(t *Thread) {
	t.YieldVisible()
	for waited := false; ; waited = true {
		rw.mu.Lock()
		if rw.writer.Load() == 0 {
			rw.readers.Add(1)
			rw.mu.Unlock()
			if waited {
				t.catchUp(rw.released.Load())
			}
			return
		}
		rw.mu.Unlock()
		rw.q.Wait(t, rw.name()+" (read)", rw.noWriter)
	}
}

// RUnlock releases a read hold (up_read).
func (rw *RWMutex) RUnlock(t *Thread) {
	// Readers release in any clock order: a writer waiting for them all
	// takes rw no earlier than the latest (the next write release resets it).
	storeMax(&rw.released, t.releaseTime())
	if rw.readers.Add(-1) < 0 {
		panic("sched: RUnlock of an RWMutex not held for reading") // a bug in the emulated kernel
	}
	rw.q.Notify()
	t.YieldVisible()
}

// Lock takes rw for writing on behalf of t (down_write).
func (rw *RWMutex) Lock(t *Thread) {
	t.YieldVisible()
	for waited := false; ; waited = true {
		rw.mu.Lock()
		if rw.writer.Load() == 0 && rw.readers.Load() == 0 {
			rw.writer.Store(int32(t.id) + 1)
			rw.mu.Unlock()
			if waited {
				t.catchUp(rw.released.Load())
			}
			return
		}
		rw.mu.Unlock()
		rw.q.Wait(t, rw.name()+" (write)", rw.free)
	}
}

// Unlock releases the write hold, which t must have (up_write).
func (rw *RWMutex) Unlock(t *Thread) {
	if rw.writer.Load() != int32(t.id)+1 {
		panic("sched: Unlock of an RWMutex not write-held by the thread")
	}
	rw.released.Store(t.releaseTime())
	rw.writer.Store(0)
	rw.q.Notify()
	t.YieldVisible()
}

// Downgrade turns t's write hold into a read hold without letting another
// writer in between (downgrade_write, mmap_write_downgrade); waiting readers
// may now proceed.
func (rw *RWMutex) Downgrade(t *Thread) {
	if rw.writer.Load() != int32(t.id)+1 {
		panic("sched: Downgrade of an RWMutex not write-held by the thread")
	}
	rw.mu.Lock()
	rw.released.Store(t.releaseTime())
	rw.readers.Add(1)
	rw.writer.Store(0)
	rw.mu.Unlock()
	rw.q.Notify()
	t.YieldVisible()
}

func (rw *RWMutex) noWriter() bool { return rw.writer.Load() == 0 }
func (rw *RWMutex) free() bool     { return rw.writer.Load() == 0 && rw.readers.Load() == 0 }

func (rw *RWMutex) name() string {
	if rw.Name == "" {
		return "rwsem"
	}
	return rw.Name
}

// storeMax raises a to v if v is larger.
func storeMax(a *atomic.Uint64, v uint64) {
	for old := a.Load(); v > old && !a.CompareAndSwap(old, v); old = a.Load() {
	}
}
