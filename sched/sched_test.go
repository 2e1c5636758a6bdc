package sched

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

var modes = []Mode{Det, Parallel}

func newSched(t *testing.T, cfg Config) *Scheduler {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// interleave runs threads that append their id to a shared log under a
// Mutex, with yield points in between, and returns the log.
func interleave(t *testing.T, cfg Config) ([]int, *Scheduler) {
	t.Helper()
	s := newSched(t, cfg)
	var mu Mutex
	var log []int
	err := s.Run(func(th *Thread) {
		for i := 0; i < 50; i++ {
			th.Yield()
			mu.Lock(th)
			log = append(log, th.ID())
			mu.Unlock(th)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return log, s
}

func TestMutexExcludes(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			s := newSched(t, Config{Mode: m, Threads: 8, Seed: 1})
			var mu Mutex
			var inside atomic.Int32
			counter := 0
			err := s.Run(func(th *Thread) {
				for i := 0; i < 200; i++ {
					mu.Lock(th)
					if inside.Add(1) != 1 {
						t.Error("two threads inside the mutex")
					}
					counter++
					th.Yield()
					inside.Add(-1)
					mu.Unlock(th)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if counter != 8*200 {
				t.Fatalf("counter = %d, want %d", counter, 8*200)
			}
		})
	}
}

func TestDetSameSeedSameSchedule(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		cfg := Config{Mode: Det, Threads: 4, Seed: seed, ChangeEvery: 10, Record: true}
		a, sa := interleave(t, cfg)
		b, sb := interleave(t, cfg)
		if !slices.Equal(a, b) || !slices.Equal(sa.Trace().Events, sb.Trace().Events) {
			t.Fatalf("seed %d: two runs differ", seed)
		}
		if sa.Steps() != sb.Steps() {
			t.Fatalf("seed %d: steps %d vs %d", seed, sa.Steps(), sb.Steps())
		}
	}
}

func TestDetDifferentSeedsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for seed := uint64(0); seed < 20; seed++ {
		log, _ := interleave(t, Config{Mode: Det, Threads: 4, Seed: seed, ChangeEvery: 10})
		seen[fmtInts(log)] = true
	}
	if len(seen) < 15 {
		t.Fatalf("20 seeds gave only %d distinct schedules", len(seen))
	}
}

func fmtInts(v []int) string {
	var b strings.Builder
	for _, x := range v {
		b.WriteByte(byte('0' + x))
	}
	return b.String()
}

func TestDetReplay(t *testing.T) {
	for seed := uint64(0); seed < 10; seed++ {
		cfg := Config{Mode: Det, Threads: 3, Seed: seed, ChangeEvery: 7, Record: true}
		want, s := interleave(t, cfg)
		// Round-trip the trace through its text form.
		var buf bytes.Buffer
		if _, err := s.Trace().WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		tr, err := ReadTrace(&buf)
		if err != nil {
			t.Fatal(err)
		}
		// Replay under a different seed: the trace, not the seed, decides.
		got, _ := interleave(t, Config{Mode: Det, Threads: 3, Seed: seed + 1000, Replay: tr})
		if !slices.Equal(want, got) {
			t.Fatalf("seed %d: replay gave %v, want %v", seed, got, want)
		}
	}
}

func TestReplayDivergence(t *testing.T) {
	tr := &Trace{Events: []Event{{Step: 0, Kind: EvHandoff, Thread: 1}, {Step: 3, Kind: EvSwitch, Thread: 7}}}
	s := newSched(t, Config{Mode: Det, Threads: 2, Replay: tr})
	err := s.Run(func(th *Thread) {
		for i := 0; i < 10; i++ {
			th.Yield()
		}
	})
	var re *ReplayError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want a ReplayError", err)
	}
}

func TestReadTraceErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"seed x\n", "line 1: bad seed"},
		{"1 switch\n", "line 1: want"},
		{"seed 1\n1 jump 0\n", "line 2: unknown event"},
		{"5 switch 0\n4 switch 1\n", "line 2: step 4 goes backwards"},
		{"1 switch -1\n", "line 1: bad thread"},
	} {
		_, err := ReadTrace(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadTrace(%q) = %v, want error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestDeadlockReported(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			s := newSched(t, Config{Mode: m, Threads: 3, Seed: 3})
			var a, b Mutex
			a.Name, b.Name = "lock A", "lock B"
			var q WaitQueue
			var stage atomic.Int32
			err := s.Run(func(th *Thread) {
				switch th.ID() {
				case 0:
					a.Lock(th)
					stage.Add(1)
					q.Notify()
					q.Wait(th, "stage 2", func() bool { return stage.Load() >= 2 })
					b.Lock(th)
				case 1:
					b.Lock(th)
					stage.Add(1)
					q.Notify()
					q.Wait(th, "stage 2", func() bool { return stage.Load() >= 2 })
					a.Lock(th)
				}
			})
			var de *DeadlockError
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want a DeadlockError", err)
			}
			msg := de.Error()
			if !strings.Contains(msg, "cpu0 waits on lock B") || !strings.Contains(msg, "cpu1 waits on lock A") {
				t.Fatalf("report %q does not say who waits on what", msg)
			}
		})
	}
}

// A blocked thread still does service work when kicked: thread 1 waits for
// thread 0's service to run while thread 0 waits for thread 1.
func TestServiceWhileBlocked(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			for seed := uint64(0); seed < 50; seed++ {
				s := newSched(t, Config{Mode: m, Threads: 2, Seed: seed, ChangeEvery: 3})
				var served, flag atomic.Int32
				var q WaitQueue
				s.Thread(0).SetService(func() { served.Add(1); q.Notify() })
				err := s.Run(func(th *Thread) {
					if th.ID() == 0 {
						q.Wait(th, "flag", func() bool { return flag.Load() == 1 })
						return
					}
					th.Yield()
					s.Thread(0).Kick()
					q.Wait(th, "service", func() bool { return served.Load() > 0 })
					flag.Store(1)
					q.Notify()
				})
				if err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
			}
		})
	}
}

// Finished threads still serve kicks: nobody waits forever on them.
func TestServiceAfterFinish(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			for seed := uint64(0); seed < 30; seed++ {
				s := newSched(t, Config{Mode: m, Threads: 2, Seed: seed})
				var served atomic.Int32
				var q WaitQueue
				s.Thread(0).SetService(func() { served.Add(1); q.Notify() })
				var done atomic.Int32
				err := s.Run(func(th *Thread) {
					if th.ID() == 0 {
						done.Store(1)
						q.Notify()
						return
					}
					q.Wait(th, "thread 0 done", func() bool { return done.Load() == 1 })
					s.Thread(0).Kick()
					q.Wait(th, "service", func() bool { return served.Load() > 0 })
				})
				if err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
			}
		})
	}
}

func TestChanceReplays(t *testing.T) {
	run := func(cfg Config) ([]bool, *Scheduler) {
		s := newSched(t, cfg)
		var out []bool
		if err := s.Run(func(th *Thread) {
			for i := 0; i < 100; i++ {
				th.Yield()
				out = append(out, th.Chance(1, 4))
			}
		}); err != nil {
			t.Fatal(err)
		}
		return out, s
	}
	want, s := run(Config{Mode: Det, Threads: 2, Seed: 9, ChangeEvery: 5, Record: true})
	got, _ := run(Config{Mode: Det, Threads: 2, Seed: 10, Replay: s.Trace()})
	if !slices.Equal(want, got) {
		t.Fatal("replayed Chance outcomes differ")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Mode: Det, Threads: 0},
		{Mode: Det, Threads: MaxThreads + 1},
		{Mode: Mode(9), Threads: 1},
		{Mode: Parallel, Threads: 1, Replay: &Trace{}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	if _, err := ParseMode("fifo"); err == nil || !strings.Contains(err.Error(), "det, parallel") {
		t.Errorf("ParseMode error %v does not name the valid modes", err)
	}
}

func BenchmarkYield(b *testing.B) {
	for _, m := range modes {
		b.Run("mode="+m.String(), func(b *testing.B) {
			s, _ := New(Config{Mode: m, Threads: 1})
			_ = s.Run(func(th *Thread) {
				for i := 0; i < b.N; i++ {
					th.Yield()
				}
			})
		})
	}
}

func TestRWMutex(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			for seed := uint64(0); seed < 20; seed++ {
				s := newSched(t, Config{Mode: m, Threads: 6, Seed: seed, ChangeEvery: 5})
				var rw RWMutex
				var readers, writers atomic.Int32
				err := s.Run(func(th *Thread) {
					for i := 0; i < 30; i++ {
						if th.ID()%3 == 0 {
							rw.Lock(th)
							if writers.Add(1) != 1 || readers.Load() != 0 {
								t.Error("writer not alone")
							}
							th.Yield()
							writers.Add(-1)
							rw.Unlock(th)
						} else {
							rw.RLock(th)
							readers.Add(1)
							if writers.Load() != 0 {
								t.Error("reader beside a writer")
							}
							th.Yield()
							readers.Add(-1)
							rw.RUnlock(th)
						}
					}
				})
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// A panic in a thread's body ends the run with an error naming it, in both
// modes, instead of crashing the process.
func TestPanicEndsRun(t *testing.T) {
	for _, mode := range []Mode{Det, Parallel} {
		s, err := New(Config{Mode: mode, Threads: 2, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Run(func(th *Thread) {
			if th.ID() == 1 {
				var m map[int]int
				m[0] = 1 // a bug
			}
		})
		if err == nil || !strings.Contains(err.Error(), "internal error on cpu1") || !strings.Contains(err.Error(), "sched_test.go") {
			t.Fatalf("%v: %v", mode, err)
		}
	}
}
