package workloads

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/policy"
	"github.com/mmubench/mmubench/reclaim"
	"github.com/mmubench/mmubench/sched"
)

const lackeyBanner = "==12345== Lackey, an example Valgrind tool\n"

func TestLackeyParseLines(t *testing.T) {
	type acc struct {
		kind       uint64
		addr, size uint64
	}
	cases := []struct {
		line string
		want []acc  // nil: skipped
		err  string // the whole error, for a bad line
	}{
		{line: "I  04001c70,3", want: []acc{{lackeyI, 0x4001c70, 3}}},
		{line: " S 1ffefffd38,8", want: []acc{{lackeyS, 0x1ffefffd38, 8}}},
		{line: " L 04019e58,8", want: []acc{{lackeyL, 0x4019e58, 8}}},
		{line: " M 0402ad50,4", want: []acc{{lackeyM, 0x402ad50, 4}}},
		{line: " L 0401AB70,16\r", want: []acc{{lackeyL, 0x401ab70, 16}}},
		{line: " L ffffffffffff,1", want: []acc{{lackeyL, 1<<48 - 1, 1}}},
		{line: " S 10,100000", want: []acc{{lackeyS, 0x10, lackeySizeMax}}},
		{line: "==12345== Exit code:       0"},
		{line: ""},
		{line: "  \t"},
		{line: " L 04zz,8", err: `t.lackey line 2: bad address "04zz"`},
		{line: " L ,8", err: `t.lackey line 2: bad address ""`},
		{line: " L 0400,x", err: `t.lackey line 2: bad size "x"`},
		{line: " L 0400,-1", err: `t.lackey line 2: bad size "-1"`},
		{line: " L 0400,", err: `t.lackey line 2: bad size ""`},
		{line: " L 0400,99999999999", err: `t.lackey line 2: bad size "99999999999"`},
		{line: " S 0400,0", err: `t.lackey line 2: size 0`},
		{line: " L 1000000000000,1", err: `t.lackey line 2: access 1000000000000,1 beyond 48 bits of address`},
		{line: " L ffffffffffff,2", err: `t.lackey line 2: access ffffffffffff,2 beyond 48 bits of address`},
		{line: " L 123456789abcdef0123,8", err: `t.lackey line 2: access 123456789abcdef0123,8 beyond 48 bits of address`},
		{line: " L 0400", err: `t.lackey line 2: no ",size" after the address: "0400"`},
		{line: "X  0400,4", err: `t.lackey line 2: not an I, L, S or M record: "X  0400,4"`},
		{line: "SB 0400", err: `t.lackey line 2: not an I, L, S or M record: "SB 0400"`},
		{line: "L  0400,4", err: `t.lackey line 2: not an I, L, S or M record: "L  0400,4"`},
		{line: "= Lackey", err: `t.lackey line 2: not an I, L, S or M record: "= Lackey"`},
	}
	for _, c := range cases {
		tr, err := parseLackey("t.lackey", strings.NewReader(lackeyBanner+c.line+"\n"))
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%q: error %v, want %s", c.line, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.line, err)
			continue
		}
		var got []acc
		for _, a := range tr.acc {
			got = append(got, acc{a & 3, a >> lackeyAddrShift, a >> 2 & lackeySizeMax})
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%q: got %x, want %x", c.line, got, c.want)
		}
	}
}

// A bad line is reported with its own number, after good ones.
func TestLackeyErrorLine(t *testing.T) {
	trace := lackeyBanner + "I  0400,4\n\n L 0800,8\n==1== x\n M 08zz,4\n"
	_, err := parseLackey("t.lackey", strings.NewReader(trace))
	if want := `t.lackey line 6: bad address "08zz"`; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

func TestLackeyWords(t *testing.T) {
	for _, c := range []struct{ addr, size, first, words uint64 }{
		{0x1000, 8, 0x1000, 1},
		{0x1003, 8, 0x1000, 2},
		{0x1007, 1, 0x1000, 1},
		{0x1004, 4, 0x1000, 1},
		{0x1000, 64, 0x1000, 8},
		{0x1001, 64, 0x1000, 8}, // 9 words, capped
		{0x1000, lackeySizeMax, 0x1000, 8},
	} {
		first, words := lackeyWords(c.addr<<lackeyAddrShift | c.size<<2 | lackeyL)
		if first != c.first || words != c.words {
			t.Errorf("%#x,%d: %#x, %d words; want %#x, %d", c.addr, c.size, first, words, c.first, c.words)
		}
	}
}

// TestLackeyOps checks the word accesses the streamed replay makes of a
// batch — each access's loads, then its stores — and that every op is
// traced back to its access for an error message.
func TestLackeyOps(t *testing.T) {
	pack := func(addr, size, kind uint64) uint64 { return addr<<lackeyAddrShift | size<<2 | kind }
	batch := []uint64{
		pack(0x1000, 8, lackeyI),  // one load
		pack(0x2004, 8, lackeyM),  // two words: two loads, two stores
		pack(0x3000, 4, lackeyS),  // one store
		pack(0x4000, 16, lackeyL), // two loads
	}
	st := uint64(mmu.OpStore)
	want := []uint64{0x1000, 0x2000, 0x2008, 0x2000 | st, 0x2008 | st, 0x3000 | st, 0x4000, 0x4008}
	wantAccess := []int{0, 1, 1, 1, 1, 2, 3, 3}
	got := lackeyOps(nil, batch)
	if !slices.Equal(got, want) {
		t.Fatalf("ops %#x, want %#x", got, want)
	}
	for n, w := range wantAccess {
		if j := lackeyOpAccess(batch, n); j != w {
			t.Errorf("op %d: access %d, want %d", n, j, w)
		}
	}
}

func TestLackeyPageRuns(t *testing.T) {
	trace := lackeyBanner +
		" L 1ffc,8\n" + // pages 1 and 2
		"I  3000,1\n" + // 3
		" S 5008,8\n" + // 5
		" M 1000,4\n" + // 1 again
		"I  9ff8,4096\n" + // 9 and 10 (capped at 8 words: 0x9ff8..0xa030)
		" L 1fff,1\n" // 1 again
	tr, err := parseLackey("t.lackey", strings.NewReader(trace))
	if err != nil {
		t.Fatal(err)
	}
	want := []lackeyRun{{1, 3}, {5, 1}, {9, 2}}
	if !slices.Equal(tr.runs, want) || tr.pages != 6 {
		t.Errorf("runs %v, %d pages; want %v, 6", tr.runs, tr.pages, want)
	}
	if tr.counts != [4]int{2, 2, 1, 1} {
		t.Errorf("counts %v", tr.counts)
	}
}

func TestLackeyMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.lackey")
	_, err := Lackey(path)
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing trace: %v", err)
	}
	t.Log(err)
}

// newLackeyEnv builds a machine and kernel as bench.Run does.
func newLackeyEnv(t *testing.T, rounds int) (*mmu.Machine, *mm.Kernel, *Env) {
	t.Helper()
	cfg := mmu.DefaultConfig()
	cfg.Sched = sched.Config{Mode: sched.Det, Seed: 1}
	cfg.Frames = 16384
	m, err := mmu.NewMachine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	batch, _ := policy.Batch("flush-mm")
	nested, _ := policy.Nested("fullmm")
	k, err := mm.New(m, mm.Config{Batch: batch, Nested: nested})
	if err != nil {
		t.Fatal(err)
	}
	return m, k, &Env{Kernel: k, Reclaim: reclaim.New(k, reclaim.Config{}), Machine: m, Rounds: rounds}
}

// The first 20000 lines of `valgrind --tool=lackey --trace-mem=yes
// /bin/true`, replayed twice.
func TestLackeyTrueTrace(t *testing.T) {
	const path = "testdata/true.lackey"
	w, err := Lackey(path)
	if err != nil {
		t.Fatal(err)
	}
	if w.Name != "lackey:"+path || w.MinCPUs != 1 || w.Rounds != 1 {
		t.Errorf("workload %+v", w)
	}
	t.Log(w.Description)
	tr, err := parseLackeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if tr.n != 20000 {
		t.Errorf("%d accesses, want 20000", tr.n)
	}
	const rounds = 2
	m, k, env := newLackeyEnv(t, rounds)
	body, space, err := tr.setup(env)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := m.Run(body); err != nil {
		t.Fatal(err)
	}
	t.Logf("replay of %d accesses x %d rounds: %v", tr.n, rounds, time.Since(start))
	if errs := env.Errors(); len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}
	if n := k.Oracle().Total(); n != 0 {
		t.Errorf("%d violations, first %v", n, k.Oracle().FirstAny())
	}
	ctr := m.Counters()
	if ctr.Accesses < uint64(rounds*tr.n) {
		t.Errorf("%d accesses counted, want at least %d", ctr.Accesses, rounds*tr.n)
	}
	t.Logf("counters: %d accesses, %d stores, %d walks, %d faults", ctr.Accesses, ctr.Stores, ctr.Walks, ctr.FaultCount())
	vmas := space.VMAs()
	var pages uint64
	for _, v := range vmas {
		pages += (v.End - v.Start) / page
		if v.Prot != mm.ProtRead|mm.ProtWrite || v.Shared {
			t.Errorf("mapping %#x-%#x is %v, shared %v", v.Start, v.End, v.Prot, v.Shared)
		}
	}
	if pages != uint64(tr.pages) || len(vmas) != len(tr.runs) {
		t.Errorf("%d pages in %d mappings, want %d in %d", pages, len(vmas), tr.pages, len(tr.runs))
	}
	for _, r := range tr.runs { // every page was touched, so every page is present
		for p := r.start; p < r.start+r.pages; p++ {
			if _, ok := space.Tables().Lookup(p * page); !ok {
				t.Errorf("page %#x not present", p*page)
			}
		}
	}
	t.Logf("%d accesses (I %d, L %d, S %d, M %d), %d pages in %d mappings",
		tr.n, tr.counts[lackeyI], tr.counts[lackeyL], tr.counts[lackeyS], tr.counts[lackeyM], tr.pages, len(tr.runs))
}

// The public Setup, on a small trace: stores read back as the oracle expects.
func TestLackeySetup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "small.lackey")
	trace := lackeyBanner + " S 7fff0000,8\n L 7fff0000,8\n M 7fff0ffc,8\nI  400000,15\n"
	if err := os.WriteFile(path, []byte(trace), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := Lackey(path)
	if err != nil {
		t.Fatal(err)
	}
	m, k, env := newLackeyEnv(t, 3)
	if err := w.Prepare(env); err != nil {
		t.Fatal(err)
	}
	body, err := w.Setup(env)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Run(body); err != nil {
		t.Fatal(err)
	}
	if errs := env.Errors(); len(errs) != 0 || k.Oracle().Total() != 0 {
		t.Errorf("errors %v, %d violations", errs, k.Oracle().Total())
	}
	// 3 rounds of 1 + 1 + 2x2 + 2 words.
	if ctr := m.Counters(); ctr.Accesses < 3*8 || ctr.Stores < 3*3 {
		t.Errorf("%d accesses, %d stores", ctr.Accesses, ctr.Stores)
	}
}

// A trace streamed from its file (played once) and one held in memory
// (parsed whole, or made compact on reuse) replay to the same counters.
func TestLackeyStreamedEqualsCompact(t *testing.T) {
	const path = "testdata/true.lackey"
	run := func(tr *lackeyTrace, rounds int) mmu.Counters {
		t.Helper()
		m, _, env := newLackeyEnv(t, rounds)
		body, _, err := tr.setup(env)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Run(body); err != nil {
			t.Fatal(err)
		}
		if errs := env.Errors(); len(errs) != 0 {
			t.Fatal(errs)
		}
		c := m.Counters()
		c.Cycles, c.DSBWaitCycles = 0, 0
		return c
	}
	streamed, err := parseLackeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	inMemory, err := parseLackey(path, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	a := run(streamed, 1) // first use: streamed
	if streamed.acc != nil {
		t.Fatal("a trace played once was held in memory")
	}
	b := run(inMemory, 1)
	c := run(streamed, 1) // second use: compact
	if streamed.acc == nil {
		t.Fatal("a trace played twice was not made compact")
	}
	if a != b || a != c {
		t.Fatalf("counters differ:\nstreamed %+v\nin memory %+v\ncompact %+v", a, b, c)
	}
}
