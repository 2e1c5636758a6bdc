package sched

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync/atomic"

	gsync "gvisor.dev/gvisor/pkg/sync"
)

// Mode selects how threads take turns.
type Mode uint8

const (
	// Parallel runs a goroutine per thread, free running.
	Parallel Mode = iota
	// Det runs one thread at a time, choosing at every yield point from a
	// seeded PRNG.
	Det
)

func (m Mode) String() string {
	if m == Det {
		return "det"
	}
	return "parallel"
}

// MarshalText writes "det" or "parallel" (in JSON configurations).
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads "det" or "parallel".
func (m *Mode) UnmarshalText(b []byte) error {
	v, err := ParseMode(string(b))
	*m = v
	return err
}

// ParseMode parses "det" or "parallel".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "det":
		return Det, nil
	case "parallel":
		return Parallel, nil
	}
	return 0, fmt.Errorf("unknown scheduler %q (valid: det, parallel)", s)
}

// relaxEvery is how often (in yield points, a power of two) an
// oversubscribed Parallel-mode thread lets others run.
const relaxEvery = 1024

// MaxThreads bounds Config.Threads.
const MaxThreads = 256

// DefaultChangeEvery is the default mean number of yield points between PCT
// priority-change points.
const DefaultChangeEvery = 500

// Config configures a Scheduler.
type Config struct {
	Mode    Mode `json:"mode"`
	Threads int  `json:"-"` // set by whoever runs the threads
	// Seed seeds every choice of Det mode.
	Seed uint64 `json:"seed"`
	// ChangeEvery is the mean number of yield points between priority
	// changes in Det mode (0 = DefaultChangeEvery). Smaller values switch
	// more often and explore shallower races.
	ChangeEvery uint64 `json:"change_every,omitempty"`
	// Quantum, if non-zero, makes Det mode keep emulated time instead of
	// PCT priorities: the thread with the smallest clock (see SetClock)
	// runs until it is Quantum ahead of the next one. Cost studies use it,
	// so that what CPUs do to each other happens at the emulated times it
	// would on hardware; race hunting uses PCT.
	Quantum uint64 `json:"quantum,omitempty"`
	// Record keeps the Det-mode choices in a Trace (see Scheduler.Trace).
	Record bool `json:"-"`
	// Replay, if non-nil, replaces the seed: Det mode follows its choices.
	Replay *Trace `json:"-"`
	// Chooser, if non-nil (and no Replay), makes every Det-mode choice
	// instead of the seed: see Chooser.
	Chooser Chooser `json:"-"`
}

// Scheduler runs a fixed set of threads in one of the two modes.
type Scheduler struct {
	cfg     Config
	det     bool
	threads []*Thread
	// oversubscribed: more threads than host Ps (Parallel mode).
	oversubscribed bool
	abort          chan struct{} // closed when the run ends, normally or not
	ended          atomic.Bool
	err            error

	d detState

	// Parallel-mode parking state.
	pmu      gsync.Mutex
	nparked  int
	finished int

	tasksMu gsync.Mutex // guards tasks
	tasks   []*Task     // the migratable tasks (task.go)
}

// New returns a scheduler for cfg.Threads threads.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Threads < 1 || cfg.Threads > MaxThreads {
		return nil, fmt.Errorf("sched: %d threads (must be 1..%d)", cfg.Threads, MaxThreads)
	}
	if cfg.Mode != Det && cfg.Mode != Parallel {
		return nil, fmt.Errorf("sched: unknown mode %d", cfg.Mode)
	}
	if cfg.Replay != nil && cfg.Mode != Det {
		return nil, fmt.Errorf("sched: a trace can be replayed only in det mode")
	}
	if cfg.Chooser != nil && (cfg.Mode != Det || cfg.Replay != nil || cfg.Quantum != 0) {
		return nil, fmt.Errorf("sched: a Chooser needs det mode without a replay or a quantum")
	}
	if cfg.ChangeEvery == 0 {
		cfg.ChangeEvery = DefaultChangeEvery
	}
	s := &Scheduler{cfg: cfg, det: cfg.Mode == Det, abort: make(chan struct{})}
	s.oversubscribed = !s.det && cfg.Threads > runtime.GOMAXPROCS(0)
	for i := 0; i < cfg.Threads; i++ {
		s.threads = append(s.threads, &Thread{
			s:    s,
			id:   i,
			turn: make(chan struct{}, 1),
			wake: make(chan struct{}, 1),
		})
	}
	if s.det {
		s.d.init(s)
	}
	return s, nil
}

// Mode reports the scheduler's mode.
func (s *Scheduler) Mode() Mode { return s.cfg.Mode }

// Config returns the configuration, with defaults filled in.
func (s *Scheduler) Config() Config { return s.cfg }

// Thread returns thread i.
func (s *Scheduler) Thread(i int) *Thread { return s.threads[i] }

// NumThreads is the number of threads.
func (s *Scheduler) NumThreads() int { return len(s.threads) }

// Steps is the number of yield points passed so far in Det mode (0 in
// Parallel mode). It is the deterministic clock of a run.
func (s *Scheduler) Steps() uint64 { return s.d.step }

// Trace returns the choices recorded in Det mode with Config.Record.
func (s *Scheduler) Trace() *Trace { return &Trace{Seed: s.cfg.Seed, Events: s.d.trace} }

// Run runs body on every thread, each on its own goroutine, and returns when
// every body has returned. It returns a *DeadlockError if the threads can no
// longer make progress, or a *ReplayError if a replayed trace does not fit.
// A Scheduler runs once.
func (s *Scheduler) Run(body func(t *Thread)) error {
	if s.ended.Load() || s.threads[0].started {
		return fmt.Errorf("sched: a scheduler runs once")
	}
	done := make(chan struct{}, len(s.threads))
	for _, t := range s.threads {
		t.started = true
		go t.main(body, done)
	}
	if s.det {
		s.d.start()
	}
	for range s.threads {
		<-done
	}
	return s.err
}

// end finishes the run with err (nil for a normal end) and releases every
// parked goroutine. Called with the turn in Det mode, or with pmu held in
// Parallel mode.
func (s *Scheduler) end(err error) {
	if s.ended.Swap(true) {
		return
	}
	if err == nil {
		err = s.strandedTask()
	}
	s.err = err
	close(s.abort)
}

// Thread is one emulated CPU's turn-taking identity.
type Thread struct {
	_       [64]byte // ticks is written at every yield point: keep it off neighbours' lines
	s       *Scheduler
	id      int
	started bool

	turn chan struct{} // Det: the turn is handed over on it
	wake chan struct{} // Parallel: a wake-up token (buffered, 1)

	service func()
	onBlock func()  // SetOnBlock
	clock   *uint64 // the thread's emulated time (Det mode with a Quantum); nil reads as 0
	kicked  atomic.Bool
	ticks   uint64 // Parallel: yield points passed

	// Guarded by the turn (Det) or Scheduler.pmu (Parallel).
	state threadState
	what  string
	ready func() bool
	prio  int64
	// visible: the thread is at a YieldVisible point (read by a Chooser).
	visible bool
	_       [64]byte
}

type threadState uint8

const (
	runnable threadState = iota
	blocked
	finished
)

// ID is the thread's index, 0..NumThreads-1.
func (t *Thread) ID() int { return t.id }

// Scheduler returns the thread's scheduler.
func (t *Thread) Scheduler() *Scheduler { return t.s }

// Det reports whether the thread runs in Det mode.
func (t *Thread) Det() bool { return t.s.det }

// SetClock tells the scheduler where the thread keeps its emulated time
// (its CPU's cycle count), for Det mode with a Quantum. The scheduler reads
// it while the thread does not run, and moves it forward when the thread
// resumes after blocking (time passed meanwhile). Set it before Run.
func (t *Thread) SetClock(c *uint64) { t.clock = c }

// now is the thread's emulated time.
func (t *Thread) now() uint64 {
	if t.clock == nil {
		return 0
	}
	return *t.clock
}

// catchUp moves a clocked thread's time forward to c, the emulated time at
// which a lock it waited for was released: it cannot have taken the lock
// earlier. Outside clocked Det mode emulated time is not the scheduler's,
// and nothing changes.
func (t *Thread) catchUp(c uint64) {
	if t.clocked() {
		*t.clock = max(*t.clock, c)
	}
}

// releaseTime is the thread's emulated time as a lock release records it:
// its clock in clocked Det mode, else 0 (catchUp ignores it there).
func (t *Thread) releaseTime() uint64 {
	if t.clocked() {
		return *t.clock
	}
	return 0
}

// clocked reports whether the scheduler runs the thread by its emulated
// time (Det mode with a Quantum, and a clock set).
func (t *Thread) clocked() bool { return t.s.det && t.s.d.clocked && t.clock != nil }

// SetOnBlock sets a function the thread runs, on its own goroutine, each
// time it is about to wait on a WaitQueue (a lock, a sleep): what it
// publishes to other threads as its rate of doing something should say it
// does nothing meanwhile. Waits that are part of the thread's own work (a
// DSB waiting for its invalidations, through BlockCharged) do not call it.
// It must not yield or block. Set it before Run.
func (t *Thread) SetOnBlock(f func()) { t.onBlock = f }

// SetService sets the function the thread runs, on its own goroutine,
// when kicked while it is blocked or finished. It must not yield or block.
// Set it before Run.
func (t *Thread) SetService(f func()) { t.service = f }

func (t *Thread) main(body func(*Thread), done chan<- struct{}) {
	defer func() { done <- struct{}{} }()
	defer func() {
		// A panic in the emulator is a bug, not a crash of the command: the
		// run ends with it as its error, which the command reports.
		if r := recover(); r != nil {
			site := panicSite()
			if tp, ok := r.(*taskPanic); ok { // a task's, re-raised by its host
				r, site = tp.value, tp.site
			}
			err := fmt.Errorf("internal error on cpu%d (a bug in mmubench): %v%s", t.id, r, site)
			if t.s.det {
				t.s.end(err)
				return
			}
			t.s.pmu.Lock()
			t.s.end(err)
			t.s.pmu.Unlock()
		}
	}()
	if t.s.det {
		// Wait for the first turn.
		select {
		case <-t.turn:
		case <-t.s.abort:
			return
		}
	}
	body(t)
	t.exit()
}

// exit parks a thread whose body returned; it keeps servicing kicks until the
// run ends, because other threads may still wait on its service work.
func (t *Thread) exit() {
	if t.s.det {
		t.s.d.exit(t)
		return
	}
	t.s.parkFinished(t)
}

// Yield is a yield point: in Det mode the scheduler may hand the turn to
// another thread here. In Parallel mode it is nearly free: only when there
// are more threads than host Ps does it give up the host CPU, every
// relaxEvery yield points, so a DSB waiting on a descheduled thread waits
// microseconds rather than the Go runtime's 10 ms preemption quantum.
func (t *Thread) Yield() {
	if !t.s.det {
		t.ticks++
		if t.ticks&(relaxEvery-1) == 0 && t.s.oversubscribed {
			runtime.Gosched()
		}
		return
	}
	d := &t.s.d
	d.step++
	if d.step >= d.nextChange || d.resched || (d.clocked && t.now() > d.limit) {
		d.reschedule(t)
	}
}

// YieldVisible is Yield before an operation other threads can observe — a
// lock, a descriptor update, a TLBI or DSB — where a systematic explorer
// (a Chooser) considers preempting; user-mode accesses in between are plain
// yield points. Without a Chooser it is Yield.
func (t *Thread) YieldVisible() {
	t.visible = true
	t.Yield()
	t.visible = false
}

// AtVisible reports whether t is at a YieldVisible point: a Chooser's Pick
// asks it of the thread at the yield point.
func (t *Thread) AtVisible() bool { return t.visible }

// Chance returns true with probability num/den. In Det mode the outcome is
// drawn from the run's seeded PRNG (or the replayed trace) and recorded, so
// callers use it for choices that must replay, such as when an invalidation
// is delivered. In Parallel mode it draws from a per-call PRNG.
func (t *Thread) Chance(num, den uint32) bool {
	if !t.s.det {
		return rand.Uint32N(den) < num
	}
	return t.s.d.chance(t, num, den)
}

// Block waits until ready() is true. ready must be side-effect free and safe
// to call from any goroutine. Whoever makes ready true must call Wake (a
// WaitQueue does so). While blocked the thread runs its service function
// whenever it is kicked. what says what the thread waits on, for deadlock
// reports.
func (t *Thread) Block(what string, ready func() bool) {
	t.block(what, ready, true)
}

// BlockCharged is Block for a wait whose emulated duration the caller has
// already charged (a DSB's completion, by the DVM formula): in clocked Det
// mode the thread resumes at its own clock instead of moving up to the
// threads that ran meanwhile, since the scheduling that let the targets
// apply its invalidations is not time the wait took.
func (t *Thread) BlockCharged(what string, ready func() bool) {
	t.block(what, ready, false)
}

func (t *Thread) block(what string, ready func() bool, resync bool) {
	if t.s.det {
		t.s.d.block(t, what, ready, resync)
		return
	}
	for !ready() {
		if t.kicked.Swap(false) {
			t.service()
			continue
		}
		t.s.park(t, what, ready)
	}
}

// Relax lets other goroutines run if there are more threads than host Ps
// (Parallel mode): callers that do not pass through Yield on their hot path
// call it every so often instead.
func (t *Thread) Relax() {
	if t.s.oversubscribed {
		runtime.Gosched()
	}
}

// Oversubscribed reports whether there are more Parallel-mode threads than
// host Ps, so that threads must Relax for one another.
func (s *Scheduler) Oversubscribed() bool { return s.oversubscribed }

// Wake tells a blocked thread that its ready function may have become true.
func (t *Thread) Wake() {
	if t.s.det {
		t.s.d.resched = true
		return
	}
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Kick tells the thread it has service work. A running thread is expected to
// find the work itself at its next yield point; a blocked or finished one
// runs its service function.
func (t *Thread) Kick() {
	t.kicked.Store(true)
	t.Wake()
}

// serve runs pending service work, if any.
func (t *Thread) serve() {
	if t.kicked.Swap(false) && t.service != nil {
		t.service()
	}
}

// park sleeps until woken (Parallel mode), detecting deadlock when every
// thread is parked.
func (s *Scheduler) park(t *Thread, what string, ready func() bool) {
	s.pmu.Lock()
	t.state, t.what, t.ready = blocked, what, ready
	s.nparked++
	if s.nparked == len(s.threads) {
		s.checkDeadlockLocked()
	}
	s.pmu.Unlock()
	select {
	case <-t.wake:
	case <-s.abort:
	}
	s.pmu.Lock()
	t.state = runnable
	s.nparked--
	s.pmu.Unlock()
	if s.ended.Load() {
		// The run was aborted while this thread could not proceed.
		runtime.Goexit()
	}
}

// parkFinished parks a thread whose body returned until the run ends,
// servicing kicks meanwhile. It counts as parked only while it sleeps.
func (s *Scheduler) parkFinished(t *Thread) {
	s.pmu.Lock()
	s.finished++
	if s.finished == len(s.threads) {
		s.end(nil)
	}
	s.pmu.Unlock()
	for {
		t.serve()
		s.pmu.Lock()
		t.state, t.what, t.ready = finished, "", nil
		s.nparked++
		if s.nparked == len(s.threads) {
			s.checkDeadlockLocked()
		}
		s.pmu.Unlock()
		select {
		case <-t.wake:
		case <-s.abort:
			return
		}
		s.pmu.Lock()
		s.nparked--
		s.pmu.Unlock()
	}
}

// checkDeadlockLocked ends the run with a DeadlockError if no parked thread
// can make progress. Called with pmu held and every thread parked.
func (s *Scheduler) checkDeadlockLocked() {
	for _, t := range s.threads {
		if len(t.wake) > 0 || t.kicked.Load() || (t.ready != nil && t.ready()) {
			return
		}
	}
	s.end(s.deadlock())
}

// DeadlockError reports threads waiting on something no thread can provide.
type DeadlockError struct {
	// Waiting lists "cpuN waits on WHAT" for each blocked thread.
	Waiting []string
	Step    uint64
}

func (e *DeadlockError) Error() string {
	at := ""
	if e.Step > 0 {
		at = fmt.Sprintf(" at step %d", e.Step)
	}
	return fmt.Sprintf("deadlock%s: %s", at, strings.Join(e.Waiting, "; "))
}

func (s *Scheduler) deadlock() *DeadlockError {
	e := &DeadlockError{Step: s.d.step}
	for _, t := range s.threads {
		if t.state == blocked {
			e.Waiting = append(e.Waiting, fmt.Sprintf("cpu%d waits on %s", t.id, t.what))
		}
	}
	return e
}

// panicSite names where a recovered panic happened: the first frame
// outside the runtime.
func panicSite() string {
	var pcs [16]uintptr
	n := runtime.Callers(4, pcs[:])
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "runtime.") {
			return fmt.Sprintf(" at %s:%d", f.File, f.Line)
		}
		if !more {
			return ""
		}
	}
}
