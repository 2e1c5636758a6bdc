package workloads

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mmubench/mmubench/mm"
)

// The race workloads pit two racers against each other: reclaim against
// mprotect, two MADV_FREEs, two MADV_DONTNEEDs. Which one changes the
// shared PTEs first decides whether the race can happen at all, and a
// PCT schedule tends to settle it the same way in every seed (a priority
// and a spin barrier do not change between seeds). So the order is a
// parameter: the second racer waits until the first one's PTE change is
// visible in the page table (or its call returned) before it makes its
// own call, and everything after that is left to the schedule.

// OrderFree leaves the order to the schedule; OrderRandom (the default)
// takes the order from the run's seed: odd seeds run the race's own order
// (Workload.Orders[0]), even seeds the other. So seeds 1..N cover both
// orders evenly, and the default seed 1 runs the one in which the race can
// happen.
const (
	OrderFree   = "free"
	OrderRandom = "random"
)

// resolveOrder checks Params.Order against the workload and turns
// "random" into the order the seed picks.
func (w *Workload) resolveOrder(env *Env) error {
	p := &env.Params
	if w.Orders == nil {
		if p.Order != "" {
			return fmt.Errorf("%s: --order applies to the race workloads only", w.Name)
		}
		return nil
	}
	switch {
	case p.Order == "" || p.Order == OrderRandom:
		seed := env.Machine.Config().Sched.Seed
		p.Order = w.Orders[^seed&1]
	case p.Order == OrderFree || slices.Contains(w.Orders, p.Order):
	default:
		return fmt.Errorf("%s: order %q (valid: %s, %s, %s)", w.Name, p.Order,
			strings.Join(w.Orders, ", "), OrderRandom, OrderFree)
	}
	return nil
}

// waitFor waits until cond holds: blocking in det mode (the scheduler
// re-evaluates cond when it next chooses), spinning in parallel mode.
// cond must be free of side effects and safe from any goroutine.
func waitFor(t *mm.Task, what string, cond func() bool) {
	if t.Thread().Det() {
		t.Thread().Block(what, cond)
		return
	}
	for !cond() {
		t.CPU().Yield()
		t.Thread().Relax()
	}
}

// after is whether the racer called who must wait for the other one (the
// order names the one that goes first).
func after(env *Env, who string) bool {
	o := env.Params.Order
	return o != OrderFree && o != who
}
