package sched

import (
	"slices"

	gsync "gvisor.dev/gvisor/pkg/sync"
)

// WaitQueue lets threads wait for a condition that another thread makes true
// and then announces with Notify. The zero value is ready to use.
type WaitQueue struct {
	mu      gsync.Mutex
	waiters []*Thread
}

// Wait blocks t until ready() is true (see Thread.Block for what ready may
// do). The thread registers before it first checks ready, so a Notify that
// comes in between is not lost.
func (q *WaitQueue) Wait(t *Thread, what string, ready func() bool) {
	q.mu.Lock()
	q.waiters = append(q.waiters, t)
	q.mu.Unlock()
	if t.onBlock != nil && !ready() {
		t.onBlock()
	}
	t.Block(what, ready)
	q.mu.Lock()
	if i := slices.Index(q.waiters, t); i >= 0 {
		q.waiters = slices.Delete(q.waiters, i, i+1)
	}
	q.mu.Unlock()
}

// Notify wakes every waiting thread to re-check its condition.
func (q *WaitQueue) Notify() {
	q.mu.Lock()
	for _, t := range q.waiters {
		t.Wake()
	}
	q.mu.Unlock()
}
