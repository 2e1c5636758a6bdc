package mmu

// True LRU for a fully associative TLB with many ways (the default L1 is
// 48 ways): an intrusive list of the valid ways, most recent first, so that
// the victim is the tail rather than a scan of every stamp (a sweep past
// the L1 evicts on every access).
//
// A hit is the hottest operation of the emulator, and moving its way to the
// front of the list is most of one. So a hit only logs its way (useLRU);
// the moves are made when the order is next consulted or changed — before
// an insert (whose victim is the tail), a removal, a snapshot — or when the
// log is full (flushLRU). Replaying a log of uses gives the list the same
// order as moving each way at its use: the ways used, in the order of their
// last use, then the others in their old order; so only the last use of
// each way moves it, and a hot set hit many times between misses costs one
// move per way, not per hit.
//
// Invariants (fully associative LRU TLBs, links != nil):
//   - The list holds exactly the valid ways; with the moves of the log
//     (hitLog[:nlog], oldest first, each a valid way) made, it is in
//     order of last use, most recent first.
//   - The log is empty whenever the list is changed other than by a move,
//     or read (victim, snapshot).

// lruLogSize is how many hits the log holds before they are made moves.
const lruLogSize = 1024

// lruLink links a way into the LRU list (way indices; -1 = none).
type lruLink struct{ prev, next int32 }

// useLRU records a use of way i (a hit, or an insert over its own tag).
func (t *tlb) useLRU(i int) {
	if t.nlog == lruLogSize {
		t.flushLRU()
	}
	t.hitLog[t.nlog&(lruLogSize-1)] = uint16(i)
	t.nlog++
}

// flushLRU makes the logged uses moves: newest first, each way's last use
// puts it next in the new front of the list.
func (t *tlb) flushLRU() {
	if t.nlog == 0 {
		return
	}
	t.flushes++
	if t.flushes == 0 { // the marks wrapped: none is current
		clear(t.moved)
		t.flushes = 1
	}
	log, moved, id := t.hitLog[:t.nlog], t.moved, t.flushes
	after := int32(-1) // the way the next one goes after; -1: at the head
	// Once every valid way has moved, older uses change nothing: a hot set
	// that fills the TLB stops the scan early.
	for k, left := len(log)-1, t.n; k >= 0 && left > 0; k-- {
		w := int32(log[k])
		if moved[w] == id {
			continue // an older use of a way already moved
		}
		moved[w] = id
		left--
		next := t.lhead
		if after >= 0 {
			next = t.links[after].next
		}
		if w != next { // else in place already
			t.unlink(int(w))
			t.linkAfter(int(w), after)
		}
		after = w
	}
	t.nlog = 0
}

// linkAfter puts way i, not on the list, after way p (p < 0: at the head).
func (t *tlb) linkAfter(i int, p int32) {
	l := t.links
	n := t.lhead
	if p >= 0 {
		n = l[p].next
		l[p].next = int32(i)
	} else {
		t.lhead = int32(i)
	}
	l[i] = lruLink{p, n}
	if n >= 0 {
		l[n].prev = int32(i)
	} else {
		t.ltail = int32(i)
	}
}

// pushFront makes way i (not on the list) the most recently used.
func (t *tlb) pushFront(i int) { t.linkAfter(i, -1) }

// unlink takes way i off the LRU list.
func (t *tlb) unlink(i int) {
	l := t.links
	p, n := l[i].prev, l[i].next
	if p >= 0 {
		l[p].next = n
	} else {
		t.lhead = n
	}
	if n >= 0 {
		l[n].prev = p
	} else {
		t.ltail = p
	}
}
