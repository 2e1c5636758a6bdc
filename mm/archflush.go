package mm

import (
	"fmt"
	"sync/atomic"

	"github.com/mmubench/mmubench/mmu"
)

// The machine flavours' batched-unmap primitives (mmu.Arch). Policies call
// these, not the instructions, for what every batching policy does: the
// deferred flush of one page and the end of a batch.
//
//   - arm64: arch_tlbbatch_add_pending is __flush_tlb_page_nosync (DSB
//     ISHST; TLBI VALE1IS), arch_tlbbatch_flush is dsb(ish).
//   - x86-invlpgb ("x86/mm: do targeted broadcast flushing from tlbbatch
//     code", 2025): arch_tlbbatch_add_pending is
//     invlpgb_flush_user_nr_nosync (one INVLPGB of the page in the mm's
//     global PCID), arch_tlbbatch_flush is tlbsync(), as are
//     switch_mm_irqs_off() and enter_lazy_tlb().
//   - x86-ipi (the classic x86): arch_tlbbatch_add_pending only ORs
//     mm_cpumask(mm) into the batch's cpumask; arch_tlbbatch_flush is
//     flush_tlb_multi over that mask — a full flush on each CPU, waited for.
//
// Simplifications: on x86-invlpgb every mm has a global ASID (the kernel
// gives one only to an mm active on more than three CPUs, and uses the
// IPI path for the others); mm_cpumask only grows (a CPU that ran the mm
// stays in it).

// X86FlushCeiling is tlb_single_page_flush_ceiling: an x86 range flush of
// more pages than this flushes the whole mm.
const X86FlushCeiling = 33

// InvlpgbCountMax is the most pages one INVLPGB invalidates
// (invlpgb_count_max, CPUID 0x80000008 EDX[15:0] + 1). The value differs
// between parts; 8 is a guess.
const InvlpgbCountMax = 8

// mmCPUMask is mm_cpumask(mm): every CPU that has run the mm.
type mmCPUMask [mmu.CPUMaskWords]atomic.Uint64

func (m *mmCPUMask) set(cpu int) { m[cpu>>6].Or(1 << (cpu & 63)) }

func (m *mmCPUMask) load() mmu.CPUMask {
	var out mmu.CPUMask
	for i := range m {
		out[i] = m[i].Load()
	}
	return out
}

// Arch is the machine flavour the kernel runs on.
func (k *Kernel) Arch() mmu.Arch { return k.arch }

// loadMM points t's CPU at mm's tables (switch_mm's CR3 or TTBR0 write)
// and adds the CPU to mm_cpumask(mm).
func (t *Task) loadMM(mm *MM) {
	mm.cpumask.set(t.cpu.ID())
	t.cpu.SetTTBR0(mm.asid, mm.tables.Root())
}

// ArchTLBBatchAddPending records the deferred flush of va in mm
// (arch_tlbbatch_add_pending), on the reclaiming task.
func (t *Task) ArchTLBBatchAddPending(mm *MM, va uint64) {
	switch t.k.arch {
	case mmu.ArchX86IPI:
		m := mm.cpumask.load()
		t.UBC.CPUMask.Or(&m)
	case mmu.ArchX86INVLPGB:
		t.TLBIUser(mmu.VALE1IS, mm, va, 1) // INVLPGB, no TLBSYNC
	default:
		t.FlushTLBPageNosync(mm, va)
	}
}

// ArchTLBBatchFlush ends the task's batch (arch_tlbbatch_flush): the
// issuer's own completion barrier, or x86-ipi's shootdown of the batch's
// CPUs.
func (t *Task) ArchTLBBatchFlush() {
	switch t.k.arch {
	case mmu.ArchX86IPI:
		if t.UBC.CPUMask.Count() > 0 {
			t.cpu.FlushTLBMulti(&t.UBC.CPUMask, mmu.VMALLE1, 0, 0, 0)
		}
		t.UBC.CPUMask = mmu.CPUMask{}
	case mmu.ArchX86INVLPGB:
		t.tlbsync()
	default:
		t.cpu.DSBISH()
	}
}

// tlbsync is x86's tlbsync(): TLBSYNC if this CPU has INVLPGBs to wait
// for (cpu_tlbstate.need_tlbsync).
func (t *Task) tlbsync() {
	if t.cpu.SyncPending() {
		t.cpu.DSBISH()
	}
}

// switchSync is what a context switch does for this CPU's outstanding
// invalidations: arm64's __switch_to dsb(ish), x86-invlpgb's tlbsync() in
// switch_mm_irqs_off(); x86-ipi has none outstanding.
func (t *Task) switchSync() {
	switch t.k.arch {
	case mmu.ArchX86IPI:
	case mmu.ArchX86INVLPGB:
		t.tlbsync()
	default:
		t.cpu.DSBISH()
	}
}

// ArchLimited is implemented by a batch policy that cannot be expressed on
// every machine flavour: CheckArch says why not, in one line.
type ArchLimited interface {
	CheckArch(a mmu.Arch) error
}

// CheckBatchArch refuses a batch policy its machine flavour cannot express.
func CheckBatchArch(p BatchPolicy, a mmu.Arch) error {
	if l, ok := p.(ArchLimited); ok {
		if err := l.CheckArch(a); err != nil {
			return fmt.Errorf("policy %s on %s: %w", p.Name(), a, err)
		}
	}
	return nil
}

// flushTLBMultiMM shoots down mm on every CPU of mm_cpumask (x86-ipi's
// flush_tlb_mm_range): kind on pages from va, or the mm's whole PCID.
func (t *Task) flushTLBMultiMM(mm *MM, kind mmu.TLBIKind, va, pages uint64) {
	m := mm.cpumask.load()
	t.cpu.FlushTLBMulti(&m, kind, mm.asid, va, pages)
}
