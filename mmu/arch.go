package mmu

import (
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Arch is the machine flavour: which instructions invalidate TLBs and what
// they cost. The zero value is arm64, so that a configuration that names
// no architecture (every one before there was a choice) keeps its JSON.
//
//   - arm64: broadcast TLBI …IS, completed by the issuer's DSB ISH.
//   - x86-invlpgb: AMD's INVLPGB (broadcast, by page, page range or PCID),
//     completed by the issuer's TLBSYNC, which — like DSB — waits only for
//     the INVLPGBs its own CPU issued (AMD APM vol. 3, TLBSYNC; Linux's
//     "x86/mm: do targeted broadcast flushing from tlbbatch code", 2025).
//     The same machinery as arm64 under other names and another cost table.
//   - x86-ipi: no broadcast invalidation at all. A remote flush is an IPI
//     shootdown (flush_tlb_multi): the issuer interrupts each target, each
//     flushes its own TLB and acknowledges, and the issuer waits for every
//     acknowledgement (CPU.FlushTLBMulti). Nothing is ever in flight after
//     the call returns, so there is nothing for a bare barrier to complete.
type Arch string

const (
	ArchARM64      Arch = "" // also spelled "arm64"
	ArchX86INVLPGB Arch = "x86-invlpgb"
	ArchX86IPI     Arch = "x86-ipi"
)

// ArchNames are the valid --arch values.
var ArchNames = []string{"arm64", string(ArchX86INVLPGB), string(ArchX86IPI)}

// ParseArch parses an architecture name; "arm64" and "" are the zero Arch.
func ParseArch(s string) (Arch, error) {
	switch s {
	case "", "arm64":
		return ArchARM64, nil
	case string(ArchX86INVLPGB), string(ArchX86IPI):
		return Arch(s), nil
	}
	return "", fmt.Errorf("unknown arch %q (valid: %s)", s, strings.Join(ArchNames, ", "))
}

func (a Arch) String() string {
	if a == ArchARM64 {
		return "arm64"
	}
	return string(a)
}

// Validate refuses an unknown architecture.
func (a Arch) Validate() error {
	_, err := ParseArch(string(a))
	return err
}

// X86 reports whether a is one of the x86 flavours.
func (a Arch) X86() bool { return a == ArchX86INVLPGB || a == ArchX86IPI }

// Broadcast reports whether a has broadcast TLB invalidation instructions
// (TLBI …IS, INVLPGB) and a completion barrier for them (DSB ISH, TLBSYNC).
func (a Arch) Broadcast() bool { return a != ArchX86IPI }

// SetArch sets the machine flavour and its default cost table.
func (c *Config) SetArch(a Arch) {
	c.Arch = a
	c.Cost = DefaultCostFor(a)
}

// archNames are the instruction names a flavour's traces use, by TLBIKind.
var archNames = map[Arch][NumTLBIKinds]string{
	ArchX86INVLPGB: {
		"INVLPGB va,pcid (final only)", "INVLPGB va,pcid", "INVLPGB pcid", "INVLPGB all", "INVLPGB va,pcid,count",
		"INVLPG", "INVLPG", "INVPCID single", "INVPCID all", "INVLPG range",
	},
	ArchX86IPI: {
		"(none)", "(none)", "(none)", "(none)", "(none)",
		"INVLPG", "INVLPG", "flush_tlb_local (PCID)", "flush_tlb_local (all)", "INVLPG range",
	},
}

// KindName is the name of the instruction k on this machine.
func (m *Machine) KindName(k TLBIKind) string {
	if n, ok := archNames[m.cfg.Arch]; ok && k < NumTLBIKinds {
		return n[k]
	}
	return k.String()
}

// SyncName is the name of the completion barrier for broadcast
// invalidations on this machine.
func (m *Machine) SyncName() string {
	switch m.cfg.Arch {
	case ArchX86INVLPGB:
		return "TLBSYNC"
	case ArchX86IPI:
		return "fence (x86-ipi has no broadcast invalidation to complete)"
	}
	return "DSB ISH"
}

// archFault records the first instruction a program issued that the
// machine does not have; Machine.Run returns it.
type archFault struct {
	once sync.Once
	err  error
}

func (f *archFault) set(err error) { f.once.Do(func() { f.err = err }) }

// ErrNoBroadcast is what Machine.Run returns (wrapped) when a broadcast
// TLBI was issued on a machine without broadcast invalidation.
var ErrNoBroadcast = errors.New("no broadcast TLB invalidation on this machine")
