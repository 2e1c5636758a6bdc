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
// scanned when the workload is made, so a bad line is reported before
// anything runs; the scan keeps only the pages it touches, and a replay
// played once streams the file again (parsed on a goroutine of its own
// while the emulated CPU replays), so a trace is never held whole unless it
// is replayed again in the process (then 8 bytes an access).
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
//     the access's index in the replay (a deterministic value); M is a load
//     then a store. Alone (lackey:PATH) nothing races the replay, so it
//     bypasses the oracle; as mprotect-under-reclaim's victims the oracle
//     checks every access.
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
	"sync/atomic"

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

// lackeyTrace is a scanned trace: what it touches, and the means to replay
// it. A trace file is not held in memory: the replay parses it again as it
// goes (stream). A trace replayed more than once in the process (rounds,
// several hot threads, the points of a sweep) is kept in its compact form,
// 8 bytes an access, made on its second use (compact).
type lackeyTrace struct {
	path   string
	n      int // accesses
	runs   []lackeyRun
	pages  int // distinct pages
	counts [4]int

	open   func() (io.ReadCloser, error) // the text again; nil: acc holds it all
	uses   atomic.Int32
	once   sync.Once
	acc    []uint64 // packed accesses, once compact has made them
	accErr error
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
			tr.path, tr.n, tr.counts[lackeyI], tr.counts[lackeyL], tr.counts[lackeyS], tr.counts[lackeyM], tr.pages, len(tr.runs)),
		MinCPUs: 1,
		Rounds:  1,
		Setup: func(env *Env) (func(c *mmu.CPU), error) {
			body, _, err := tr.setup(env)
			return body, err
		},
	}
}

// parseLackeyFile scans the trace at path (gzip-compressed if its name ends
// in .gz): it is parsed and checked whole, but only what it touches is kept.
func parseLackeyFile(path string) (*lackeyTrace, error) {
	open := func() (io.ReadCloser, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("lackey trace: %w", err)
		}
		if !strings.HasSuffix(path, ".gz") {
			return f, nil
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lackey trace %s: %w", path, err)
		}
		return readCloser{zr, f}, nil
	}
	r, err := open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	tr := &lackeyTrace{path: path, open: open}
	if err := tr.scan(r, nil); err != nil {
		return nil, err
	}
	return tr, nil
}

// readCloser closes a decompressor and the file under it.
type readCloser struct {
	io.Reader
	f io.Closer
}

func (r readCloser) Close() error { return r.f.Close() }

// parseLackey parses a whole trace from r, kept in memory (compact form);
// name is what errors call it.
func parseLackey(name string, r io.Reader) (*lackeyTrace, error) {
	tr := &lackeyTrace{path: name}
	if err := tr.scan(r, func(a uint64) { tr.acc = append(tr.acc, a) }); err != nil {
		return nil, err
	}
	tr.once.Do(func() {})
	return tr, nil
}

// scan parses the trace from r, recording its pages and counts, and passes
// each access to keep (if not nil).
func (tr *lackeyTrace) scan(r io.Reader, keep func(a uint64)) error {
	seen := map[uint64]struct{}{}
	var last [2]uint64 // the last page of instruction and data accesses, +1 (0: none)
	err := eachLackey(tr.path, r, func(a uint64) error {
		tr.n++
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
		if keep != nil {
			keep(a)
		}
		return nil
	})
	if err != nil {
		return err
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
	return nil
}

// eachLackey parses the lines of r, calling f with each access; a line that
// does not parse is an error naming name and the line.
func eachLackey(name string, r io.Reader, f func(a uint64) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		a, ok, err := parseLackeyLine(sc.Bytes())
		if err != nil {
			return fmt.Errorf("%s line %d: %v", name, n, err)
		}
		if ok { // else a valgrind message or a blank line
			if err := f(a); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// compact returns the trace's accesses in memory, parsing the file once.
func (tr *lackeyTrace) compact() ([]uint64, error) {
	tr.once.Do(func() {
		r, err := tr.open()
		if err != nil {
			tr.accErr = err
			return
		}
		defer r.Close()
		acc := make([]uint64, 0, tr.n)
		tr.accErr = eachLackey(tr.path, r, func(a uint64) error { acc = append(acc, a); return nil })
		if tr.accErr == nil && len(acc) != tr.n {
			tr.accErr = fmt.Errorf("%s changed since it was read (%d accesses, then %d)", tr.path, tr.n, len(acc))
		}
		tr.acc = acc
	})
	return tr.acc, tr.accErr
}

// lackeyBatch is how many accesses the streaming parser hands over at once.
const lackeyBatch = 4096

// stream calls f with the trace's accesses in order, in batches, parsing
// the file on a goroutine of its own while f runs (two host cores: the
// parse and the emulation overlap). f must not keep a batch.
func (tr *lackeyTrace) stream(f func(batch []uint64) error) error {
	if tr.open == nil {
		return f(tr.acc)
	}
	r, err := tr.open()
	if err != nil {
		return err
	}
	defer r.Close()
	full := make(chan []uint64, 4)
	free := make(chan []uint64, 4)
	for range 4 {
		free <- make([]uint64, 0, lackeyBatch)
	}
	done := make(chan struct{})
	parseErr := make(chan error, 1)
	go func() {
		defer close(full)
		b := <-free
		err := eachLackey(tr.path, r, func(a uint64) error {
			b = append(b, a)
			if len(b) == lackeyBatch {
				select {
				case full <- b:
				case <-done:
					return errStopped
				}
				select {
				case b = <-free:
				case <-done:
					return errStopped
				}
				b = b[:0]
			}
			return nil
		})
		if err == nil && len(b) > 0 {
			select {
			case full <- b:
			case <-done:
			}
		}
		parseErr <- err
	}()
	var ferr error
	for b := range full {
		if ferr == nil {
			ferr = f(b)
			if ferr != nil {
				close(done)
			}
		}
		free <- b
	}
	if ferr != nil {
		return ferr
	}
	if err := <-parseErr; err != nil && err != errStopped {
		return err
	}
	return nil
}

var errStopped = errors.New("stopped")

// parseLackeyLine returns the packed access of a line; ok is false for a
// line to skip. The common line ("I  04001c70,3", " L 1ffefffd38,8") takes
// one pass over its bytes; anything else, well formed or not, goes to
// parseLackeyLineSlow, which says what is wrong.
func parseLackeyLine(b []byte) (a uint64, ok bool, err error) {
	if len(b) < 5 {
		return parseLackeyLineSlow(b)
	}
	var kind uint64
	i := 3
	switch {
	case b[0] == 'I' && b[1] == ' ':
		kind, i = lackeyI, 2
	case b[0] == ' ' && b[2] == ' ' && b[1] == 'L':
		kind = lackeyL
	case b[0] == ' ' && b[2] == ' ' && b[1] == 'S':
		kind = lackeyS
	case b[0] == ' ' && b[2] == ' ' && b[1] == 'M':
		kind = lackeyM
	default:
		return parseLackeyLineSlow(b)
	}
	for i < len(b) && b[i] == ' ' {
		i++
	}
	var addr uint64
	digits := 0
	for ; i < len(b); i++ {
		d := hexDigit[b[i]]
		if d > 15 {
			break
		}
		addr = addr<<4 | uint64(d)
		digits++
	}
	if digits == 0 || digits > 12 || i >= len(b) || b[i] != ',' {
		return parseLackeyLineSlow(b)
	}
	i++
	var size uint64
	digits = 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		size = size*10 + uint64(b[i]-'0')
		digits++
	}
	if digits == 0 || digits > 9 || i != len(b) || size == 0 || addr+size-1 >= 1<<lackeyVABits {
		return parseLackeyLineSlow(b)
	}
	return addr<<lackeyAddrShift | min(size, lackeySizeMax)<<2 | kind, true, nil
}

// hexDigit is each byte's value as a hexadecimal digit, 255 if it is none.
var hexDigit = func() (t [256]byte) {
	for i := range t {
		t[i] = 255
	}
	for c := byte('0'); c <= '9'; c++ {
		t[c] = c - '0'
	}
	for c := byte('a'); c <= 'f'; c++ {
		t[c], t[c-'a'+'A'] = c-'a'+10, c-'a'+10
	}
	return t
}()

// parseLackeyLineSlow is parseLackeyLine for every line, with its errors.
func parseLackeyLineSlow(b []byte) (a uint64, ok bool, err error) {
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
		if rounds == 1 && tr.uses.Add(1) == 1 && tr.open != nil {
			// Played once: streamed from the file, never held whole, a
			// batch of word accesses at a time (its stores write the
			// batch's number: no value of this replay is read).
			i := 0
			var ops []uint64
			if err := tr.stream(func(batch []uint64) error {
				val++
				ops = lackeyOps(ops[:0], batch)
				if done, err := task.ReplayUnchecked(ops, val); err != nil {
					j := lackeyOpAccess(batch, done)
					return accessError(i+j, batch[j], err)
				}
				i += len(batch)
				return nil
			}); err != nil {
				env.Fail("lackey: %v", err)
			}
			return
		}
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
	acc, err := tr.compact()
	if err != nil {
		return err
	}
	n := len(acc)
	for j := 0; j < n; j++ {
		i := (from + j) % n
		a := acc[i]
		*val++
		if err := replayLackey(t, a, *val); err != nil {
			return accessError(i, a, err)
		}
		if stop != nil && j%1024 == 0 && stop() {
			return nil
		}
	}
	return nil
}

// accessError names the access of the trace that failed.
func accessError(i int, a uint64, err error) error {
	return fmt.Errorf("access %d (%s %#x,%d): %v", i, lackeyKindNames[a&3], a>>lackeyAddrShift, a>>2&lackeySizeMax, err)
}

// lackeyOps appends the word accesses of the packed accesses batch to ops,
// as mm.Task.ReplayUnchecked takes them: each access's loads (unless it is
// a store), then its stores (if it stores), as replayLackey makes them. The
// streamed replay of lackey:PATH runs them without the oracle: it is one
// task with nothing racing it — no other thread, no system call or reclaim
// during it (every page it touches is mapped first and fits the machine)
// — so the oracle could find nothing.
func lackeyOps(ops, batch []uint64) []uint64 {
	for _, a := range batch {
		first, words := lackeyWords(a)
		kind := a & 3
		end := first + words*8
		if kind != lackeyS {
			for va := first; va < end; va += 8 {
				ops = append(ops, va)
			}
		}
		if kind >= lackeyS {
			for va := first; va < end; va += 8 {
				ops = append(ops, va|mmu.OpStore)
			}
		}
	}
	return ops
}

// lackeyOpAccess is the index in batch of the access whose word access is
// op n of lackeyOps(nil, batch).
func lackeyOpAccess(batch []uint64, n int) int {
	for j, a := range batch {
		_, words := lackeyWords(a)
		if a&3 == lackeyM {
			words *= 2
		}
		if n < int(words) {
			return j
		}
		n -= int(words)
	}
	return len(batch) - 1
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
