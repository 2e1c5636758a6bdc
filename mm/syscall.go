package mm

import (
	"fmt"
	"sync/atomic"

	"github.com/mmubench/mmubench/pagetable"
	"github.com/mmubench/mmubench/sched"
)

// What the checks of a returning mprotect, munmap or madvise need to know of
// the call: when it entered and returned, and which page tables it visited
// under their PTL, when, and whether anybody took that PTL after it. The
// oracle orders another call's PTE changes against this call's visits with
// them (a store after the storing thread's own MADV_FREE returned must
// survive), and the TLB invariant skips the tables somebody changed after
// the call left them (their flush is that somebody's business).

// callKind is the kind of a checked system call.
type callKind uint8

const (
	callMprotect callKind = iota
	callMunmap
	callDontneed
	callFree
	callPageout
	callMremap
)

// sysCall is one checked system call, in flight or returned.
type sysCall struct {
	t          *Task
	kind       callKind
	start, end uint64
	enter      uint64        // clock at entry
	ret        atomic.Uint64 // clock at return; 0 while in flight
	visits     []tableVisit
}

// tableVisit is a call's visit of one level-3 table under its PTL.
type tableVisit struct {
	lo, hi uint64  // the VAs of the table the call walked
	at     uint64  // the clock when it held the PTL (after flush_tlb_batched_pending)
	ptl    *ptLock // the PTL, and its acquisition count once the call held it
	seq    uint64
}

// returned reports whether c had returned at clock value now.
func (c *sysCall) returned(now uint64) bool {
	r := c.ret.Load()
	return r != 0 && r < now
}

// visitOf is the clock at which c visited va's table under its PTL.
func (c *sysCall) visitOf(va uint64) (uint64, bool) {
	for _, v := range c.visits {
		if va >= v.lo && va < v.hi {
			return v.at, true
		}
	}
	return 0, false
}

// ptLock is a split page-table lock that counts its acquisitions, so that a
// returning call can tell whether anybody changed a table after it left it.
type ptLock struct {
	sched.Mutex
	seq atomic.Uint64
}

// Lock takes the PTL.
func (l *ptLock) Lock(th *sched.Thread) {
	l.Mutex.Lock(th)
	l.seq.Add(1)
}

// maxRecentCalls is how many returned calls a task remembers for the oracle.
const maxRecentCalls = 8

// beginCall starts the record of a checked call on t.
func (t *Task) beginCall(kind callKind, start, end uint64) {
	t.call = &sysCall{t: t, kind: kind, start: start, end: end, enter: t.k.Now()}
	if t.cpu.Tracing() {
		t.cpu.Trace(TraceSyscall, start, 0, fmt.Sprintf("%v [%#x, %#x)", kind, start, end))
	}
}

// noteVisit records that t's call holds the PTL of lt for [lo, hi).
func (t *Task) noteVisit(ptl *ptLock, lt pagetable.LeafTable, lo, hi int) {
	c := t.call
	if c == nil {
		return
	}
	c.visits = append(c.visits, tableVisit{
		lo: lt.Base + uint64(lo)<<pagetable.PageShift, hi: lt.Base + uint64(hi)<<pagetable.PageShift,
		at: t.k.Now(), ptl: ptl, seq: ptl.seq.Load(),
	})
}

// endCall checks the TLBs against the call's range and closes its record;
// the caller publishes the return (syscallReturn) right after.
func (t *Task) endCall() {
	c := t.call
	if c == nil {
		return
	}
	t.call = nil
	if t.cpu.Tracing() {
		t.cpu.Trace(TraceReturn, c.start, 0, fmt.Sprintf("%v [%#x, %#x) returns", c.kind, c.start, c.end))
	}
	t.k.checkTLB(c)
	c.ret.Store(t.k.Now() + 1) // the tick syscallReturn is about to publish
	if len(t.calls) == maxRecentCalls {
		t.calls = append(t.calls[:0], t.calls[1:]...)
	}
	t.calls = append(t.calls, c)
}

// ownLaterVisit reports whether t has a returned call of class kinds that
// visited va's table after clock value after and returned before now: then
// t itself saw whatever the earlier change left and, under a correct
// policy, flushed for it before returning.
func (t *Task) ownLaterVisit(va, after, now uint64, kinds ...callKind) bool {
	for _, c := range t.calls {
		if !c.returned(now) || !hasKind(kinds, c.kind) {
			continue
		}
		if at, ok := c.visitOf(va); ok && at >= after {
			return true
		}
	}
	return false
}

func hasKind(kinds []callKind, k callKind) bool {
	for _, x := range kinds {
		if x == k {
			return true
		}
	}
	return false
}
