package sched

import (
	"fmt"
	"runtime"
	"sync/atomic"
)

// Task is code that runs as one Thread at a time and can move to another:
// a task migrating between CPUs. It has a goroutine of its own, and a
// thread hosts it by lending it its identity: the host's goroutine waits
// while the task's runs as the thread (its yield points, blocking, service
// work), so that at any moment exactly one goroutine acts as each thread.
// The hand-overs are plain channel operations made by the goroutine that
// acts as the thread — in Det mode the one holding the turn — so they take
// no scheduler choice and a recorded run replays as it ran.
//
// Every thread the task may run on calls Host until Host reports the task
// finished: the first thread hosts it at once, the others when it migrates
// to them (MigrateTo). A run that ends with a task stranded — migrated to a
// thread that never hosted it — ends with an error.
//
// A task migrates holding no Mutex or RWMutex: those are owned by threads
// (Linux's spinlocks disable preemption, so no task migrates holding one).
type Task struct {
	s     *Scheduler
	name  string
	body  func(tk *Task) error
	grant chan hosting // a host lends its thread (buffered: the host does not wait for the task to take it)
	q     WaitQueue    // threads waiting to host the task

	next atomic.Pointer[Thread] // the thread the task waits to run on; nil while it runs or after it finished
	done atomic.Bool            // body returned

	// Touched by the goroutine acting as the task's thread.
	started bool       // the goroutine runs (set by the first host)
	cur     hosting    // the task goroutine's current host
	err     error      // body's result, read by the host it returned on
	panic   *taskPanic // body's panic, read by the host it panicked on
}

// hosting is one stay of a task on a thread: the thread, and where the
// task says that the stay ended.
type hosting struct {
	th   *Thread
	done chan taskEnd // buffered: the task never waits for its host
}

// taskEnd is how a stay on a thread ended.
type taskEnd uint8

const (
	taskLeft     taskEnd = iota // migrated to another thread
	taskFinished                // body returned
	taskExited                  // the run ended while the task ran as the thread
	taskPanicked                // body panicked (Task.panic holds the value)
)

// taskPanic is a panic of a task's body, re-raised on its host's goroutine
// with the place it happened.
type taskPanic struct {
	value any
	site  string
}

// NewTask makes a task that runs body, starting on thread first. Make it
// before Run, or on first's goroutine.
func (s *Scheduler) NewTask(first *Thread, name string, body func(tk *Task) error) *Task {
	tk := &Task{s: s, name: name, body: body, grant: make(chan hosting, 1)}
	tk.next.Store(first)
	s.tasksMu.Lock()
	s.tasks = append(s.tasks, tk)
	s.tasksMu.Unlock()
	return tk
}

// Name is the task's name.
func (tk *Task) Name() string { return tk.name }

// Thread is the thread the task runs as; call it on the task's goroutine.
func (tk *Task) Thread() *Thread { return tk.cur.th }

// Done reports whether the task's body has returned.
func (tk *Task) Done() bool { return tk.done.Load() }

// Host runs tk as th, on th's goroutine: it waits (blocked, th doing its
// service work) until tk is to run on th or has finished, then runs it
// until it migrates away (finished false) or its body returns (finished
// true, with the body's error). A task that finished on another thread
// returns finished true and a nil error. A panic of the body is re-raised
// here, so that the run ends with it as th's.
func (th *Thread) Host(tk *Task) (finished bool, err error) {
	tk.q.Wait(th, "task "+tk.name+" to migrate here", func() bool { return tk.next.Load() == th || tk.done.Load() })
	if !tk.next.CompareAndSwap(th, nil) {
		return true, nil
	}
	h := hosting{th: th, done: make(chan taskEnd, 1)}
	if !tk.started {
		tk.started = true
		go tk.main()
	}
	tk.grant <- h
	switch <-h.done {
	case taskLeft:
		return false, nil
	case taskFinished:
		return true, tk.err
	case taskPanicked:
		panic(tk.panic)
	}
	runtime.Goexit() // taskExited: the run ended, as it would have for th's own goroutine
	return false, nil
}

// MigrateTo moves tk to dst: tk stops running as its thread, whose host
// returns, and resumes as dst once dst hosts it. Call it on tk's goroutine;
// it returns running as dst. A migration to its own thread does nothing.
func (tk *Task) MigrateTo(dst *Thread) {
	cur := tk.cur
	if dst == cur.th {
		return
	}
	tk.next.Store(dst)
	tk.q.Notify()
	tk.cur = hosting{}
	cur.done <- taskLeft
	tk.await()
}

// await waits for the next host; it leaves the goroutine if the run ends
// first.
func (tk *Task) await() {
	select {
	case h := <-tk.grant:
		tk.cur = h
	case <-tk.s.abort:
		runtime.Goexit()
	}
}

// main is the task's goroutine.
func (tk *Task) main() {
	returned := false
	defer func() {
		end := taskExited
		if r := recover(); r != nil {
			tk.panic = &taskPanic{value: r, site: panicSite()}
			end = taskPanicked
		} else if returned {
			end = taskFinished
		}
		if tk.cur.done != nil { // else it left one host and the run ended before the next took it
			tk.cur.done <- end
		}
	}()
	tk.await()
	tk.err = tk.body(tk)
	tk.done.Store(true)
	tk.q.Notify() // the threads waiting to host it learn it finished
	returned = true
}

// strandedTask is the error of a run that ended with a task that migrated
// to a thread that never hosted it, or nil.
func (s *Scheduler) strandedTask() error {
	s.tasksMu.Lock()
	defer s.tasksMu.Unlock()
	for _, tk := range s.tasks {
		if th := tk.next.Load(); th != nil && !tk.done.Load() {
			return fmt.Errorf("sched: task %s was to run on cpu%d, which never hosted it", tk.name, th.id)
		}
	}
	return nil
}
