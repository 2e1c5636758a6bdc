// Package sched decides how emulated CPUs take turns.
//
// Every emulated CPU is a Thread running on its own goroutine, in both modes;
// the mode only changes what happens at a yield point and when a thread blocks:
//
//   - Parallel: threads run freely on the host's cores. Yield is a no-op;
//     blocking parks the goroutine on a channel.
//   - Det (deterministic): exactly one thread holds the turn at a time. At each
//     yield point a seeded PCT-style scheduler (random priorities with random
//     priority-change points) decides who runs next, so the same seed gives the
//     same interleaving, bit for bit. Switches and coin flips (Chance) are
//     recorded in a Trace, and a Trace can be replayed instead of the seed.
//
// A blocked thread still does its service work: whoever posts work to a
// thread (the mmu posts TLB invalidations) calls Kick, and the thread runs its
// service function while it waits, in both modes. So a CPU waiting for a lock
// still applies invalidations addressed to it, and no DSB can wait forever on
// a blocked CPU.
//
// Invariants:
//   - In Det mode only the goroutine of the thread holding the turn runs code
//     of the emulator; all other Thread goroutines are parked in switchTo.
//   - Ready functions passed to Block must be safe to call from any goroutine
//     and free of side effects: the scheduler evaluates them to decide
//     eligibility and to detect deadlock.
//   - Service functions never yield or block.
//   - A Task (task.go) runs as one thread at a time: while it does, the
//     thread's own goroutine waits for it, so each thread still has exactly
//     one goroutine acting as it. A task moves to another thread only at
//     MigrateTo, holding no Mutex or RWMutex (they are owned by threads).
//   - A run ends when every thread's body has returned; if every unfinished
//     thread waits on something no thread can provide, Run returns a
//     *DeadlockError naming who waits on what.
//
// Lock order: Mutex.mu (the emulated lock) → WaitQueue.mu → Scheduler.pmu →
// Scheduler.tasksMu. WaitQueue.mu, Scheduler.pmu and Scheduler.tasksMu are
// held for a few instructions.
package sched
