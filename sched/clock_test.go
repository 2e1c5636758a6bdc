package sched

import (
	"sync/atomic"
	"testing"
)

// newClocked is a clocked Det scheduler of n threads, each with its clock.
func newClocked(t *testing.T, n int, seed uint64, quantum uint64) (*Scheduler, []uint64) {
	t.Helper()
	s := newSched(t, Config{Mode: Det, Threads: n, Seed: seed, Quantum: quantum})
	clocks := make([]uint64, n)
	for i := range clocks {
		s.Thread(i).SetClock(&clocks[i])
	}
	return s, clocks
}

// With a Quantum, Det mode keeps the threads' clocks within a quantum of
// each other, whatever their speeds, and is deterministic.
func TestClockedKeepsTime(t *testing.T) {
	const quantum = 100
	run := func() ([]int, uint64) {
		s, clocks := newClocked(t, 3, 7, quantum)
		speed := []uint64{1, 7, 30} // cycles per yield point
		var order []int
		var worst uint64
		err := s.Run(func(th *Thread) {
			id := th.ID()
			for clocks[id] < 20000 {
				clocks[id] += speed[id]
				th.Yield()
				if len(order) == 0 || order[len(order)-1] != id {
					order = append(order, id)
				}
				// Every thread still below the finish line is within a
				// quantum (plus one step) of the running one.
				for j, c := range clocks {
					if j != id && c < 20000 && clocks[id] > c+quantum+speed[id] {
						worst = max(worst, clocks[id]-c)
					}
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		return order, worst
	}
	order, worst := run()
	if worst != 0 {
		t.Fatalf("a thread ran %d cycles ahead of another (quantum %d)", worst, quantum)
	}
	if len(order) < 100 {
		t.Fatalf("only %d turns: the threads did not take turns by time", len(order))
	}
	again, _ := run()
	if len(again) != len(order) {
		t.Fatalf("not deterministic: %d turns, then %d", len(order), len(again))
	}
	for i := range order {
		if order[i] != again[i] {
			t.Fatalf("not deterministic at turn %d", i)
		}
	}
}

// A thread blocked on a lock does not hold the others back: clocked mode
// runs whoever is eligible.
func TestClockedBlocking(t *testing.T) {
	s, clocks := newClocked(t, 2, 1, 10)
	var mu Mutex
	err := s.Run(func(th *Thread) {
		id := th.ID()
		for i := 0; i < 100; i++ {
			mu.Lock(th)
			clocks[id] += 5
			th.Yield()
			clocks[id] += 5
			mu.Unlock(th)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A thread that waited for a lock takes it no earlier in emulated time than
// the holder released it — even when the holder's clock jumped (one long
// charge, as a DSB's wait is) just before the release, while a third
// thread's clock is still far behind.
func TestClockedLockHandOff(t *testing.T) {
	const hold = 1000
	var mu Mutex
	var rw RWMutex
	cases := []struct {
		name                  string
		hold, give, take, put func(th *Thread)
	}{
		{"mutex", mu.Lock, mu.Unlock, mu.Lock, mu.Unlock},
		{"rwmutex-reader-then-writer", rw.RLock, rw.RUnlock, rw.Lock, rw.Unlock},
		{"rwmutex-writer-then-reader", rw.Lock, rw.Unlock, rw.RLock, rw.RUnlock},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, clocks := newClocked(t, 3, 1, 10)
			var got, released uint64
			err := s.Run(func(th *Thread) {
				switch th.ID() {
				case 0: // ties go to the lowest id: it goes first
					c.hold(th)
					clocks[0] += 20
					th.Yield() // past the quantum: thread 1 runs and waits
					clocks[0] += hold
					released = clocks[0]
					c.give(th)
				case 1:
					c.take(th)
					got = clocks[1]
					c.put(th)
				case 2:
					for clocks[2] < 3*hold {
						clocks[2]++
						th.Yield()
					}
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if got < released {
				t.Errorf("the waiter took the lock at clock %d, before it was released at %d", got, released)
			}
		})
	}
}

// Readers release in any clock order: a writer that waited for two readers
// takes the lock no earlier than the later of their releases in emulated
// time, though the earlier-clocked reader released last.
func TestClockedWriterAfterReaders(t *testing.T) {
	s, clocks := newClocked(t, 3, 1, 10)
	var rw RWMutex
	var firstOut atomic.Bool
	var got uint64
	err := s.Run(func(th *Thread) {
		switch th.ID() {
		case 0: // ties go to the lowest id: it goes first
			rw.RLock(th)
			clocks[0] = 20
			th.Yield() // past the quantum: thread 1 reads too
			clocks[0] = 500
			rw.RUnlock(th)
			firstOut.Store(true)
			s.Thread(1).Wake()
			th.Yield() // thread 1 (15) is earlier: it releases now
		case 1:
			rw.RLock(th)
			clocks[1] = 15
			th.Yield() // past the quantum: thread 2 waits to write
			th.BlockCharged("thread 0's release", firstOut.Load)
			rw.RUnlock(th)
		case 2:
			clocks[2] = 1
			rw.Lock(th)
			got = clocks[2]
			rw.Unlock(th)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got < 500 {
		t.Errorf("the writer took the lock at clock %d, before the reader that released at 500", got)
	}
}

// Block resumes a clocked thread no earlier than the threads that ran while
// it waited; BlockCharged, for a wait whose time the caller charged itself
// (a DSB's completion), resumes it at its own clock.
func TestClockedBlockCharged(t *testing.T) {
	cases := []struct {
		name    string
		charged bool
		want    uint64
	}{
		{"block", false, 590},
		{"block-charged", true, 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, clocks := newClocked(t, 2, 1, 100)
			var done atomic.Bool
			var got uint64
			err := s.Run(func(th *Thread) {
				switch th.ID() {
				case 0:
					clocks[0] += 10
					if c.charged {
						th.BlockCharged("completion", done.Load)
					} else {
						th.Block("completion", done.Load)
					}
					got = clocks[0]
				case 1:
					clocks[1] += 90
					th.Yield()
					done.Store(true)
					s.Thread(0).Wake()
					clocks[1] += 500
					th.Yield() // past the quantum: thread 0 resumes
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("resumed at clock %d, want %d", got, c.want)
			}
		})
	}
}
