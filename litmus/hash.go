package litmus

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"slices"

	"github.com/mmubench/mmubench/mmu"
)

// The state hash. Two states with the same encoding have the same futures
// as far as any outcome can tell, so the search visits one of them. The
// set of visited states keeps two independent 64-bit hashes of each
// encoding (a collision needs both to collide: about n²/2^129 for n states).

// visit records the current state; false if it was seen before.
func (e *explorer) visit() bool {
	b := e.encode(e.buf[:0])
	e.buf = b
	k := [2]uint64{maphash.Bytes(e.seeds[0], b), maphash.Bytes(e.seeds[1], b)}
	if _, ok := e.seen[k]; ok {
		return false
	}
	if len(e.seen) >= e.opt.MaxStates {
		e.err = &unsupportedError{fmt.Sprintf("more than %d states (raise --max-states)", e.opt.MaxStates)}
		return false
	}
	e.seen[k] = struct{}{}
	return true
}

// encode writes the state that decides what can still happen: the
// threads' pcs, flags, registers and faults; the descriptors and data
// cells; and, for CPUs whose TLB still matters, the cached translations
// and pending invalidations (as sets: their order does not matter, no
// capacity eviction ever happens, and applying invalidations commutes).
func (e *explorer) encode(b []byte) []byte {
	w := e.w
	u64 := func(v uint64) { b = binary.LittleEndian.AppendUint64(b, v) }
	for i := range w.th {
		th := &w.th[i]
		live := w.condLive[i]
		flags := byte(0x80)
		if !th.done || e.opt.noReduce {
			live, flags = w.live[i][th.pc], 0
		}
		if live&flagsBit != 0 || e.opt.noReduce {
			flags |= th.nzcv
		}
		b = append(b, byte(th.pc), byte(th.pc>>8), flags)
		for _, r := range w.regsUsed[i] {
			if live&(1<<r) != 0 || e.opt.noReduce {
				u64(th.regs[r])
			}
		}
		nf := 0
		for _, f := range th.faults {
			if e.opt.noReduce || w.faultMatters(i, f) {
				nf++
			}
		}
		b = append(b, byte(nf))
		for _, f := range th.faults {
			if e.opt.noReduce || w.faultMatters(i, f) {
				b = append(b, byte(f.pc), byte(f.pc>>8), byte(f.loc), byte(f.loc>>8), f.kind)
			}
		}
	}
	for _, s := range w.lay.slot {
		u64(uint64(s.Load()))
	}
	b = append(b, byte(len(w.offs)), byte(len(w.offs)>>8))
	for l := range w.data {
		if !e.opt.noReduce && !w.dataLive(l) {
			b = append(b, 0)
			continue
		}
		b = append(b, 1)
		for _, o := range w.offs {
			u64(w.wordAt(l, o))
		}
	}
	for i, c := range w.cpus {
		if !w.tlbMatters(i) && !e.opt.noReduce {
			b = append(b, 0xff)
			continue
		}
		e.cached = c.AppendCached(e.cached[:0])
		if !e.opt.noReduce {
			k := 0
			for _, x := range e.cached {
				if l := w.lay.locOfVA(x.VA()); l >= 0 && w.mutable[l] {
					e.cached[k] = x
					k++
				}
			}
			e.cached = e.cached[:k]
		}
		slices.SortFunc(e.cached, func(x, y mmu.Cached) int {
			return cmpU64(x.Tag, y.Tag)
		})
		b = append(b, byte(len(e.cached)))
		for _, x := range e.cached {
			u64(x.Tag)
			u64(x.PFN)
			b = append(b, x.Perm)
		}
		e.sorted = append(e.sorted[:0], e.pendOf[i]...)
		slices.SortFunc(e.sorted, cmpInval)
		b = append(b, byte(len(e.sorted)))
		for _, p := range e.sorted {
			b = append(b, byte(p.Kind), byte(p.Issuer), byte(p.ASID), byte(p.ASID>>8))
			u64(p.VA)
		}
	}
	return b
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func cmpInval(x, y mmu.Invalidation) int {
	if c := int(x.Issuer) - int(y.Issuer); c != 0 {
		return c
	}
	if c := int(x.Kind) - int(y.Kind); c != 0 {
		return c
	}
	if c := int(x.ASID) - int(y.ASID); c != 0 {
		return c
	}
	if c := cmpU64(x.VA, y.VA); c != 0 {
		return c
	}
	return cmpU64(x.Pages, y.Pages)
}
