// The lackey:PATH workload replays a memory trace written by
//
//	valgrind --tool=lackey --trace-mem=yes --log-file=PATH program
//
// whose lines are
//
//	==12345== Lackey, an example Valgrind tool
//	I  04001c70,3
//	 S 1ffefffd38,8
//	 L 04019e58,8
//	 M 0402ad50,4
//
// "I" an instruction fetch, " L" a load, " S" a store, " M" a modify (a
// load then a store), each with a hexadecimal address and a decimal size in
// bytes. Lines starting with "==" (valgrind's own messages) and blank lines
// are skipped; every other line must parse, and a size of 0 or an access
// reaching beyond 48 bits of address is an error too. The whole trace is
// parsed when the workload is made, so a bad line is reported before
// anything runs.
//
// Mapping the trace onto the machine:
//   - One user task on CPU 0 of a fresh mm replays it; the other CPUs idle.
//   - Before the replay, every page the trace touches is mapped read-write
//     private with MmapFixed, contiguous pages coalesced into one mapping.
//     Traces of x86-64 programs use addresses below 2^47, which fit the
//     machine's 48-bit VA.
//   - The machine accesses 8-byte-aligned words: an access of n bytes at a
//     touches the words from a&^7 to (a+n-1)&^7, at most lackeyMaxWords of
//     them (a wider access, e.g. XSAVE, replays only its first 8 words, and
//     only their pages are mapped).
//   - I and L are loads; the machine has no separate instruction TLB, so
//     an instruction fetch is a data load through the same TLBs. S stores
//     the access's index in the replay (a deterministic value the oracle
//     checks later loads against); M is a load then a store.
//   - Rounds is how many times the whole trace is replayed (default 1).
//   - A SIGSEGV or other error ends the replay and is reported with Fail.
package workloads

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
)

// LackeyDescription describes the lackey:PATH workloads for `mmubench list`.
const LackeyDescription = "lackey:PATH — replay a valgrind lackey memory trace " +
	"(valgrind --tool=lackey --trace-mem=yes --log-file=PATH prog) on CPU 0: " +
	"every touched page mapped first, I/L as loads, S as stores, M as both, " +
	"in 8-byte words; rounds = replays of the whole trace"

// Kinds of trace access.
const (
	lackeyI = iota // instruction fetch
	lackeyL        // load
	lackeyS        // store
	lackeyM        // modify: load then store
)

var lackeyKindNames = [...]string{"I", "L", "S", "M"}

// An access is packed into one uint64: address<<16 | size<<2 | kind, the
// size saturating at lackeySizeMax (wider accesses are capped anyway).
const (
	lackeyAddrShift = 16
	lackeySizeMax   = 1<<14 - 1
	lackeyMaxWords  = 8 // words replayed of one access
	lackeyVABits    = 48
)

// lackeyRun is a range of contiguous pages the trace touches.
type lackeyRun struct{ start, pages uint64 }

// lackeyTrace is a parsed trace.
type lackeyTrace struct {
	path   string
	acc    []uint64 // packed accesses
	runs   []lackeyRun
	pages  int // distinct pages
	counts [4]int
}

// Lackey returns the workload replaying the lackey trace at path, parsing
// it whole first.
func Lackey(path string) (*Workload, error) {
	tr, err := loadLackey(path)
	if err != nil {
		return nil, err
	}
	return tr.workload(), nil
}

// loadLackey parses the trace at path once per process.
func loadLackey(path string) (*lackeyTrace, error) {
	if tr, ok := lackeyCache.Load(path); ok {
		return tr.(*lackeyTrace), nil
	}
	tr, err := parseLackeyFile(path)
	if err != nil {
		return nil, err
	}
	got, _ := lackeyCache.LoadOrStore(path, tr)
	return got.(*lackeyTrace), nil
}

// lackeyCache keeps parsed traces by path: a sweep validates and runs every
// point, and a trace of millions of lines takes a second to parse. The
// replay only reads the parsed trace, so runs may share it.
var lackeyCache sync.Map

func (tr *lackeyTrace) workload() *Workload {
	return &Workload{
		Name: "lackey:" + tr.path,
		Description: fmt.Sprintf("replay of the lackey trace %s: %d accesses (%d I, %d L, %d S, %d M), %d pages in %d mappings",
			tr.path, len(tr.acc), tr.counts[lackeyI], tr.counts[lackeyL], tr.counts[lackeyS], tr.counts[lackeyM], tr.pages, len(tr.runs)),
		MinCPUs: 1,
		Rounds:  1,
		Setup: func(env *Env) (func(c *mmu.CPU), error) {
			body, _, err := tr.setup(env)
			return body, err
		},
	}
}

// parseLackeyFile parses the trace at path, gzip-compressed if its name
// ends in .gz.
func parseLackeyFile(path string) (*lackeyTrace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("lackey trace: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("lackey trace %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	return parseLackey(path, r)
}

// parseLackey reads a trace; name is what errors call it.
func parseLackey(name string, r io.Reader) (*lackeyTrace, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	tr := &lackeyTrace{path: name}
	seen := map[uint64]struct{}{}
	var last [2]uint64 // the last page of instruction and data accesses, +1 (0: none)
	for n := 1; sc.Scan(); n++ {
		a, ok, err := parseLackeyLine(sc.Bytes())
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %v", name, n, err)
		}
		if !ok { // a valgrind message or a blank line
			continue
		}
		tr.acc = append(tr.acc, a)
		kind := a & 3
		tr.counts[kind]++
		first, words := lackeyWords(a)
		side := min(kind, 1)
		for p := first / page; p <= (first+(words-1)*8)/page; p++ {
			if last[side] != p+1 {
				seen[p] = struct{}{}
				last[side] = p + 1
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	pages := make([]uint64, 0, len(seen))
	for p := range seen {
		pages = append(pages, p)
	}
	slices.Sort(pages)
	tr.pages = len(pages)
	for _, p := range pages {
		if r := len(tr.runs) - 1; r >= 0 && tr.runs[r].start+tr.runs[r].pages == p {
			tr.runs[r].pages++
		} else {
			tr.runs = append(tr.runs, lackeyRun{p, 1})
		}
	}
	return tr, nil
}

// parseLackeyLine returns the packed access of a line; ok is false for a
// line to skip.
func parseLackeyLine(b []byte) (a uint64, ok bool, err error) {
	if len(b) >= 2 && b[0] == '=' && b[1] == '=' {
		return 0, false, nil
	}
	rest := trimSpace(b)
	if len(rest) == 0 {
		return 0, false, nil
	}
	var kind uint64
	switch {
	case b[0] == 'I' && len(b) > 1 && b[1] == ' ':
		kind, rest = lackeyI, b[1:]
	case b[0] == ' ' && len(b) > 2 && b[1] == 'L' && b[2] == ' ':
		kind, rest = lackeyL, b[2:]
	case b[0] == ' ' && len(b) > 2 && b[1] == 'S' && b[2] == ' ':
		kind, rest = lackeyS, b[2:]
	case b[0] == ' ' && len(b) > 2 && b[1] == 'M' && b[2] == ' ':
		kind, rest = lackeyM, b[2:]
	default:
		return 0, false, fmt.Errorf("not an I, L, S or M record: %s", clip(b))
	}
	rest = trimSpace(rest)
	comma := slices.Index(rest, ',')
	if comma < 0 {
		return 0, false, fmt.Errorf("no \",size\" after the address: %s", clip(rest))
	}
	as, ss := rest[:comma], rest[comma+1:]
	addr, ok := parseHex(as)
	if !ok {
		return 0, false, fmt.Errorf("bad address %s", clip(as))
	}
	size, ok := parseDec(ss)
	if !ok {
		return 0, false, fmt.Errorf("bad size %s", clip(ss))
	}
	if size == 0 {
		return 0, false, errors.New("size 0")
	}
	if addr >= 1<<lackeyVABits || addr+size-1 >= 1<<lackeyVABits {
		return 0, false, fmt.Errorf("access %s,%d beyond %d bits of address", as, size, lackeyVABits)
	}
	return addr<<lackeyAddrShift | min(size, lackeySizeMax)<<2 | kind, true, nil
}

// clip quotes the start of a malformed field (a binary file's line may be
// megabytes).
func clip(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%q...", b[:40])
	}
	return fmt.Sprintf("%q", b)
}

// parseHex parses a hexadecimal number, saturating at 2^60 (an address
// that large is rejected anyway).
func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		if v < 1<<56 {
			v = v<<4 | uint64(d)
		} else {
			v = 1 << 60
		}
	}
	return v, true
}

// parseDec parses a decimal size below 2^32.
func parseDec(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, v < 1<<32
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// lackeyWords returns the first word an access touches and how many words
// it replays (at most lackeyMaxWords).
func lackeyWords(a uint64) (first, words uint64) {
	addr := a >> lackeyAddrShift
	size := a >> 2 & lackeySizeMax
	first = addr &^ 7
	words = min(((addr+size-1)&^7-first)/8+1, lackeyMaxWords)
	return first, words
}

// setup builds the replay: one task on CPU 0 of a fresh mm (returned for
// tests).
func (tr *lackeyTrace) setup(env *Env) (func(c *mmu.CPU), *mm.MM, error) {
	k := env.Kernel
	space, err := k.NewMM()
	if err != nil {
		return nil, nil, err
	}
	rounds := max(env.Rounds, 1)
	// Every page the trace touches is mapped, and stays: it must fit.
	if need, have := tr.pages+tr.pages/512+16, env.Machine.Config().Frames; need > have {
		return nil, nil, fmt.Errorf("%s touches %d pages: the machine needs %d frames for them and their tables and has %d (use --mem %d or more)",
			tr.path, tr.pages, need, have, (need*4+1023)/1024)
	}
	task := k.NewTask(env.Machine.CPU(0), space, "lackey")
	return func(c *mmu.CPU) {
		if c.ID() != 0 {
			return
		}
		if err := tr.mapInto(task); err != nil {
			env.Fail("%v", err)
			return
		}
		var val uint64
		for round := 0; round < rounds; round++ {
			if err := tr.replay(task, 0, &val, nil); err != nil {
				env.Fail("lackey: round %d: %v", round, err)
				return
			}
		}
	}, space, nil
}

// mapInto maps every page the trace touches into t's address space.
func (tr *lackeyTrace) mapInto(t *mm.Task) error {
	for _, r := range tr.runs {
		if err := t.MmapFixed(r.start*page, r.pages*page, mm.ProtRead|mm.ProtWrite, false); err != nil {
			return fmt.Errorf("lackey: mmap of %#x, %d pages: %v", r.start*page, r.pages, err)
		}
	}
	return nil
}

// replay makes the trace's accesses on t once, from access from (wrapping
// round), storing *val (incremented per access); it stops early when stop
// (if not nil) says so.
func (tr *lackeyTrace) replay(t *mm.Task, from int, val *uint64, stop func() bool) error {
	n := len(tr.acc)
	for j := 0; j < n; j++ {
		i := (from + j) % n
		a := tr.acc[i]
		*val++
		if err := replayLackey(t, a, *val); err != nil {
			return fmt.Errorf("access %d (%s %#x,%d): %v", i,
				lackeyKindNames[a&3], a>>lackeyAddrShift, a>>2&lackeySizeMax, err)
		}
		if stop != nil && j%1024 == 0 && stop() {
			return nil
		}
	}
	return nil
}

// replayLackey performs one packed access on t, storing val.
func replayLackey(t *mm.Task, a, val uint64) error {
	first, words := lackeyWords(a)
	kind := a & 3
	end := first + words*8
	if kind != lackeyS { // I, L, M load
		for va := first; va < end; va += 8 {
			if _, err := t.Load(va); err != nil {
				return err
			}
		}
	}
	if kind >= lackeyS { // S, M store
		for va := first; va < end; va += 8 {
			if err := t.Store(va, val); err != nil {
				return err
			}
		}
	}
	return nil
}
