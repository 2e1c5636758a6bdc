package mmu

import (
	"sync/atomic"
	"testing"

	"github.com/mmubench/mmubench/pagetable"
	"github.com/mmubench/mmubench/sched"
)

// userRW is a clean, writable, young user page as Linux maps one on arm64
// (PAGE_SHARED with PTE_RDONLY until the first write: hardware dirty state).
const userRW = pagetable.PTEUser | pagetable.PTENG | pagetable.PTEAF | pagetable.PTEDBM | pagetable.PTERdonly

// space is an address space set up for a test: tables plus the frames
// mapped at consecutive pages from base.
type space struct {
	asid   uint16
	tables *pagetable.Tables
	base   uint64
	frames []uint64
}

const testBase = 0x40_0000_0000

// newMachine builds a machine; mod adjusts the default config.
func newMachine(tb testing.TB, cpus int, mode sched.Mode, seed uint64, mod func(*Config)) *Machine {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.CPUs = cpus
	cfg.Frames = 512 // 2 MiB: enough for the tests, cheap to build a thousand times
	cfg.Sched = sched.Config{Mode: mode, Seed: seed}
	if mod != nil {
		mod(&cfg)
	}
	m, err := NewMachine(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// mapPages maps n fresh frames at base in a new address space.
func mapPages(tb testing.TB, m *Machine, asid uint16, base uint64, n int, attrs pagetable.PTE) *space {
	tb.Helper()
	t, err := pagetable.New(m.Phys())
	if err != nil {
		tb.Fatal(err)
	}
	sp := &space{asid: asid, tables: t, base: base}
	for i := 0; i < n; i++ {
		f, err := m.Phys().AllocZeroed()
		if err != nil {
			tb.Fatal(err)
		}
		if err := t.Map(sp.va(i), pagetable.NewPage(f, attrs)); err != nil {
			tb.Fatal(err)
		}
		sp.frames = append(sp.frames, f)
	}
	return sp
}

func (sp *space) va(i int) uint64 { return sp.base + uint64(i)<<pagetable.PageShift }

// enter points c at the space.
func (sp *space) enter(c *CPU) { c.SetTTBR0(sp.asid, sp.tables.Root()) }

// flag is a one-shot event CPUs wait on across both schedulers.
type flag struct {
	set atomic.Bool
	q   sched.WaitQueue
}

func (f *flag) Set()                     { f.set.Store(true); f.q.Notify() }
func (f *flag) Wait(c *CPU, what string) { f.q.Wait(c.Thread(), what, f.set.Load) }

// hits reports whether an access by c to va was served by a TLB (no walk).
func hits(c *CPU, va uint64) (hit bool, f Fault) {
	walks := c.ctr.Walks
	_, f = c.Load(va)
	return c.ctr.Walks == walks && f == FaultNone, f
}
