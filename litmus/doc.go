// Package litmus runs litmus tests in herd7's AArch64 syntax (the VMSA
// subset) on the emulated hardware, exploring every execution the model
// allows, and prints each result in herd7's shape so that it diffs against
// herd7's: Test, States, Ok/No, Witnesses, Condition, Observation, Time.
//
// # How a test runs
//
// Each thread is one mmu.CPU of a machine built for the test: one L1 TLB
// big enough never to evict (so replacement never decides anything), no
// L2 and no walk cache (nothing above the leaf descriptors ever changes),
// all threads in one address space (ASID 0), and one page per location,
// mapped by a level-3 descriptor in real page tables. Instructions that
// touch memory go through the CPU's own access path (Load, Store: TLB
// lookup, walk, fill, hardware AF and dirty-state updates, permission and
// translation faults); TLBIs through its TLBI operations, which post
// invalidations to every target; DSB through DSBISH, which completes only
// the CPU's own. So every verdict comes from the mmu, not from a table of
// rules. A store to pte_x (the descriptor's address) is the kernel writing
// the page table through its linear map: straight to the descriptor, not
// through a TLB.
//
// The mmu's CPUs are goroutines under the sched package, which makes
// re-executing schedules from scratch (stateless model checking) slow. The
// runner instead drives every CPU from one goroutine: the machine runs in
// det mode with a Chooser that always keeps the current thread and refuses
// every Chance, so no yield point switches and the mmu never applies an
// invalidation on its own. The hardware's own nondeterminism is then the
// explorer's to choose, through hooks added to mmu for the purpose
// (mmu/litmus_hooks.go): ApplyPending applies one posted invalidation on
// its target, Prefetch makes a speculative TLB fill, Save and Restore copy
// a CPU's TLBs and pending invalidations, and AppendCached, Pending and
// DSBComplete read them.
//
// # What is enumerated
//
// A depth-first search over states, with a hash of each state visited:
// every interleaving of the threads' instructions (each instruction is one
// atomic step: memory is sequentially consistent and execution in order);
// every point at which each pending invalidation is applied on each target,
// until the issuer's DSB, which waits for all of them; and, with
// Options.Speculative (the default), every point at which a CPU may fill a
// translation it was not asked for. transitions.go lists the reductions
// that keep this small and why each changes no outcome; the tests check
// every test of the directory against the unreduced search where it fits.
// The state hashed is the threads' pcs, flags, registers and faults that
// can still matter, the descriptors and data that can, and each CPU's
// cached translations and pending invalidations; spin loops are finite
// cycles of that graph, so no unrolling bound is needed.
//
// # The model and the architecture
//
// The model is stronger than the architecture: it never shows a Forbidden
// outcome, and may miss an Allowed one. Memory is sequentially consistent
// and each instruction completes before the next starts, so outcomes that
// need reordering (MP without barriers, SB) or a missing ISB never
// appear; DMB and ISB do nothing. Translation is in order: a TLB caches
// what a walk returned at some earlier point (the speculative fills), but
// no access is translated ahead of its instruction, and speculative walks
// never set AF. TLBs never drop entries by themselves. If a Forbidden
// outcome ever appears, that is a bug in the machine.
//
// # Supported
//
// Headers, Variant= (vmsa, fatal, handled, ets*), TTHM=HA|HD; initial
// states with virtual and physical locations (x, [x], phy_x, PA(x)),
// descriptors (pte_x=(oa:phy_y, valid:0, af:1, db:0, dbm:1), [PTE(x)]=…)
// and registers (0:X2=pte_x; 0:X1=(oa:phy_y); typed declarations); LDR,
// LDAR, LDAPR, STR, STLR (W and X, [Xn], [Xn,Xm], [Xn,#imm]); SWP, LD<op>
// and ST<op> for ADD, CLR, EOR, SET with A/L forms; MOV, ADD, SUB, EOR,
// AND, ORR, LSL, LSR, ASR, CMP, CSET, B, B.cond, CBZ, CBNZ, NOP; DMB (any
// option), ISB, DSB (SY, ISH, OSH complete this CPU's TLBIs; the ST and LD
// forms do not); TLBI VAE1IS, VALE1IS, VAAE1IS, VAALE1IS, ASIDE1IS,
// VMALLE1IS and their local forms; conditions exists, ~exists, forall over
// registers, memory, descriptors and fault(Pn,x), fault(Pn:L,x),
// fault(Pn:L,x,MMU:Translation|Permission), with a locations line.
// Anything else is reported as unsupported and the test skipped: among
// others, software AF or dirty management (the mmu always manages both in
// hardware, so a test without TTHM=HA whose execution walks a descriptor
// with af:0, or without TTHM=HD stores through a clean one, db:0 dbm:1, is
// refused when the search meets such an access), el0:0, changes to table
// descriptors above level 3, range TLBIs, CAS, mixed-size accesses. A fault ends its thread unless
// Variant=Handled (then the instruction is skipped). W stores write the
// whole 64-bit word, zero-extended.
//
// # Output
//
// As herd7 prints it, with two differences of unit: Positive and Negative
// count distinct final states, not candidate executions (so States is
// their sum), and Time is the runner's. The Test line gives the
// condition's kind as herd7 does (exists: Allowed, ~exists: Forbidden,
// forall: Required); Result.Verdict is what the model says, in kinds.txt's
// words: Allowed if some final state satisfies the proposition, Forbidden
// if none does, Required if every one does (forall).
//
// # Invariants
//
//   - Only the exploring goroutine touches the machine, and it calls CPU
//     methods only where the det scheduler cannot switch (the keep-turn
//     Chooser); a DSB is stepped only after the invalidations it waits for
//     have been applied, so it never blocks.
//   - A saved frame restores the whole state the hash covers and more:
//     every CPU's TLBs and pending invalidations, the threads, the
//     descriptors and every data cell written so far (a cell first written
//     after a frame was saved held 0 then).
//   - The state hash omits only what the analyses prove cannot change a
//     final state's printed locations; searches with and without the
//     reductions give the same final states (TestReductionsExact).
package litmus
