package explore

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/mmubench/mmubench/sched"
)

// toy is a Runner over a fixed tree of choices: n visible yield points of
// thread 0 with threads 0 and 1 eligible, then one Chance; the "bug" needs
// a switch to thread 1 at point bugAt and the Chance held.
func toy(n, bugAt int) Runner {
	return func(ch sched.Chooser) (Outcome, error) {
		v := ch.(sched.VisibilityChooser)
		var path []int
		for i := 0; i < n; i++ {
			path = append(path, v.PickAt(uint64(i), 0, true, []int{0, 1}))
		}
		held := ch.Chance(uint64(n), 0, 0, 1, 2)
		out := Outcome{State: uint64(len(path))}
		for i, p := range path {
			out.State = out.State*3 + uint64(p)
			if i == bugAt && p == 1 && held {
				out.Violation = fmt.Sprintf("bug at %d", i)
			}
		}
		out.State *= 2
		if held {
			out.State++
		}
		return out, nil
	}
}

func TestExploreCountsAndFinds(t *testing.T) {
	for _, tc := range []struct {
		name       string
		n, bugAt   int
		bound      int
		all        bool
		schedules  int
		violating  int
		firstDepth int
	}{
		// n+1 binary choice points: 1 + (n+1) + C(n+1, 2) schedules within 2.
		{"bound-0", 4, -1, 0, false, 1, 0, 0},
		{"bound-1", 4, -1, 1, false, 6, 0, 0},
		{"bound-2", 4, -1, 2, false, 16, 0, 0},
		{"bug-needs-2", 4, 2, 1, false, 6, 0, 0},
		{"bug-found", 4, 2, 2, true, 16, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := Explore(context.Background(), toy(tc.n, tc.bugAt), Options{Bound: tc.bound, All: tc.all, Quantum: 1 << 30})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Schedules != tc.schedules || rep.Violating != tc.violating || (tc.violating > 0 && rep.FirstDepth != tc.firstDepth) {
				t.Fatalf("got %+v", rep)
			}
			if rep.States != tc.schedules { // every schedule of the toy ends differently
				t.Fatalf("%d distinct states of %d schedules", rep.States, rep.Schedules)
			}
			if !rep.Exhausted {
				t.Fatal("not exhausted")
			}
		})
	}
}

// The search and its first counterexample do not depend on the number of
// jobs.
func TestExploreDeterministicAcrossJobs(t *testing.T) {
	var reps []*Report
	for _, jobs := range []int{1, 2, 7} {
		rep, err := Explore(context.Background(), toy(6, 3), Options{Bound: 2, Jobs: jobs, Quantum: 1 << 30})
		if err != nil {
			t.Fatal(err)
		}
		rep.First.Trace = nil
		reps = append(reps, rep)
	}
	for _, r := range reps[1:] {
		if !reflect.DeepEqual(r, reps[0]) {
			t.Fatalf("jobs change the result: %+v vs %+v", r, reps[0])
		}
	}
}

// A Runner that does not replay its choices is an error, not a wrong answer.
func TestExploreNondeterministicRunner(t *testing.T) {
	calls := 0
	run := func(ch sched.Chooser) (Outcome, error) {
		calls++
		n := 2
		if calls > 1 {
			n = 1 // fewer alternatives the second time round
		}
		eligible := []int{0, 1}[:n]
		ch.(sched.VisibilityChooser).PickAt(0, 0, true, eligible)
		return Outcome{}, nil
	}
	if _, err := Explore(context.Background(), run, Options{Bound: 1, Jobs: 1}); err == nil {
		t.Fatal("no error for a runner that changes its choice points")
	}
}

// The base schedule is round robin: a thread keeps the turn for a quantum
// of yield points, and a hand-off goes to the next thread by id.
func TestBaseSchedule(t *testing.T) {
	c := &chooser{quantum: 2, last: -1}
	var got []int
	cur := -1
	for i := 0; i < 7; i++ {
		cur = c.PickAt(0, cur, false, []int{0, 1, 2})
		got = append(got, cur)
	}
	if want := []int{0, 0, 1, 1, 2, 2, 0}; !reflect.DeepEqual(got, want) {
		t.Fatalf("base schedule %v, want %v", got, want)
	}
	if len(c.points) != 1 { // only the first (a hand-off) was a choice point
		t.Fatalf("%d choice points at invisible yields", len(c.points))
	}
}
