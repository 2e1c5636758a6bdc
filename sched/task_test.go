package sched

import (
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// hostAll hosts tk on th until it finishes, collecting the body's error.
func hostAll(th *Thread, tk *Task, errs *atomic.Value) {
	for {
		done, err := th.Host(tk)
		if err != nil {
			errs.Store(err)
		}
		if done {
			return
		}
	}
}

// A task runs as the threads it migrates to, in turn, with yield points and
// blocking on each; the hosts get it back and learn when it finished.
func TestTaskMigrates(t *testing.T) {
	errBody := errors.New("the body's error")
	for _, tc := range []struct {
		name  string
		mode  Mode
		seeds int
		path  []int // threads the task migrates to, in order
	}{
		{"det", Det, 30, []int{1, 2, 0, 2}},
		{"parallel", Parallel, 10, []int{1, 2, 0, 2}},
		{"det/stay", Det, 5, []int{0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := uint64(1); seed <= uint64(tc.seeds); seed++ {
				s := newSched(t, Config{Mode: tc.mode, Threads: 3, Seed: seed, ChangeEvery: 5})
				var ran []int // where the body found itself, after each step
				var errs atomic.Value
				var counter atomic.Int64
				tk := s.NewTask(s.Thread(0), "mover", func(tk *Task) error {
					ran = append(ran, tk.Thread().ID())
					for _, to := range tc.path {
						for i := 0; i < 10; i++ {
							tk.Thread().Yield()
							counter.Add(1)
						}
						tk.MigrateTo(s.Thread(to))
						ran = append(ran, tk.Thread().ID())
					}
					return errBody
				})
				err := s.Run(func(th *Thread) {
					for i := 0; i < 20; i++ { // the host's own work before and after
						th.Yield()
					}
					hostAll(th, tk, &errs)
					for i := 0; i < 20; i++ {
						th.Yield()
					}
				})
				if err != nil {
					t.Fatalf("seed %d: %v", seed, err)
				}
				want := append([]int{0}, tc.path...)
				if !slices.Equal(ran, want) {
					t.Fatalf("seed %d: ran on %v, want %v", seed, ran, want)
				}
				if got, _ := errs.Load().(error); got != errBody {
					t.Fatalf("seed %d: hosts got error %v, want the body's", seed, got)
				}
				if !tk.Done() || counter.Load() != int64(10*len(tc.path)) {
					t.Fatalf("seed %d: done %v, %d steps", seed, tk.Done(), counter.Load())
				}
			}
		})
	}
}

// A migrating task keeps a det run deterministic: the same seed, the same
// recorded schedule, and the trace replays.
func TestTaskDetReplay(t *testing.T) {
	run := func(cfg Config) ([]int, *Scheduler) {
		s := newSched(t, cfg)
		var log []int
		var mu Mutex
		tk := s.NewTask(s.Thread(0), "mover", func(tk *Task) error {
			for _, to := range []int{1, 0, 1} {
				for i := 0; i < 5; i++ {
					mu.Lock(tk.Thread())
					log = append(log, 10+tk.Thread().ID())
					mu.Unlock(tk.Thread())
				}
				tk.MigrateTo(s.Thread(to))
			}
			return nil
		})
		var errs atomic.Value
		if err := s.Run(func(th *Thread) {
			for i := 0; i < 10; i++ {
				mu.Lock(th)
				log = append(log, th.ID())
				mu.Unlock(th)
			}
			hostAll(th, tk, &errs)
		}); err != nil {
			t.Fatal(err)
		}
		return log, s
	}
	a, s := run(Config{Mode: Det, Threads: 2, Seed: 7, ChangeEvery: 3, Record: true})
	b, _ := run(Config{Mode: Det, Threads: 2, Seed: 7, ChangeEvery: 3})
	c, _ := run(Config{Mode: Det, Threads: 2, Replay: s.Trace()})
	if !slices.Equal(a, b) || !slices.Equal(a, c) {
		t.Fatalf("runs differ:\n%v\n%v\n%v", a, b, c)
	}
}

// The errors of a task: one migrated to a thread that never hosts it
// strands, a panic in its body ends the run naming where it happened.
func TestTaskErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		body func(s *Scheduler) func(tk *Task) error
		want []string
	}{
		{"stranded", func(s *Scheduler) func(tk *Task) error {
			return func(tk *Task) error { tk.MigrateTo(s.Thread(1)); return nil }
		}, []string{"task mover was to run on cpu1, which never hosted it"}},
		{"panic", func(s *Scheduler) func(tk *Task) error {
			return func(tk *Task) error {
				var m map[int]int
				m[0] = 1 // a bug
				return nil
			}
		}, []string{"internal error on cpu0", "task_test.go"}},
	} {
		for _, m := range modes {
			t.Run(tc.name+"/"+m.String(), func(t *testing.T) {
				s := newSched(t, Config{Mode: m, Threads: 2, Seed: 1})
				tk := s.NewTask(s.Thread(0), "mover", tc.body(s))
				err := s.Run(func(th *Thread) {
					if th.ID() == 0 { // thread 1 never hosts
						th.Host(tk)
					}
				})
				for _, w := range tc.want {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Fatalf("error %v, want %q", err, w)
					}
				}
			})
		}
	}
}
