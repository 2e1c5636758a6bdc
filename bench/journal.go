package bench

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
)

// A sweep's journal (OUT.partial, and a shard's OUT) is a results CSV with
// one line before it: what sweep it is, so that a resume or a merge never
// mixes rows of different sweeps.
//
//	# mmubench-sweep fingerprint=F points=N version=V reproducible=B shard=I/N templates=HASH:FIRST:COUNT,...
//
// Rows are whole lines written with one write each, so an interruption can
// only tear the last one, which readers drop.

// JournalHeader says which sweep a journal belongs to.
type JournalHeader struct {
	Fingerprint   string
	Points        int
	Version       string
	Reproducible  bool
	Shard, Shards int
	Templates     string
}

const journalMagic = "# mmubench-sweep"

// NewJournalHeader describes shard i of n of ps.
func NewJournalHeader(ps *PointSet, reproducible bool, i, n int) JournalHeader {
	v := Version()
	if reproducible {
		v = BaseVersion
	}
	return JournalHeader{Fingerprint: ps.Fingerprint(), Points: ps.Len(), Version: v, Reproducible: reproducible,
		Shard: i, Shards: n, Templates: ps.Templates()}
}

func (h JournalHeader) String() string {
	return fmt.Sprintf("%s fingerprint=%s points=%d version=%s reproducible=%t shard=%d/%d templates=%s",
		journalMagic, h.Fingerprint, h.Points, strings.ReplaceAll(h.Version, " ", "_"), h.Reproducible, h.Shard, h.Shards, h.Templates)
}

// parseJournalHeader reads the first line of a journal.
func parseJournalHeader(line string) (JournalHeader, error) {
	var h JournalHeader
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), journalMagic+" ")
	if !ok {
		return h, errors.New("no sweep header line (it is not a journal or shard of mmubench sweep)")
	}
	seen := map[string]bool{}
	for _, f := range strings.Fields(rest) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return h, fmt.Errorf("sweep header: bad field %q", f)
		}
		seen[k] = true
		var err error
		switch k {
		case "fingerprint":
			h.Fingerprint = v
		case "points":
			h.Points, err = strconv.Atoi(v)
		case "version":
			h.Version = v
		case "reproducible":
			h.Reproducible, err = strconv.ParseBool(v)
		case "shard":
			_, err = fmt.Sscanf(v, "%d/%d", &h.Shard, &h.Shards)
		case "templates":
			h.Templates = v
		default:
			err = errors.New("unknown field")
		}
		if err != nil {
			return h, fmt.Errorf("sweep header: field %q: %v", f, err)
		}
	}
	for _, k := range []string{"fingerprint", "points", "version", "reproducible", "shard", "templates"} {
		if !seen[k] {
			return h, fmt.Errorf("sweep header: no %s", k)
		}
	}
	return h, nil
}

// SameSweep reports why h is not the journal of want, or nil.
func (h JournalHeader) SameSweep(want JournalHeader) error {
	switch {
	case h.Fingerprint != want.Fingerprint || h.Points != want.Points:
		return fmt.Errorf("it is another sweep (fingerprint %s, %d points; this one is %s, %d points)",
			h.Fingerprint, h.Points, want.Fingerprint, want.Points)
	case h.Reproducible != want.Reproducible:
		return fmt.Errorf("it was run with reproducible=%t, this one has %t", h.Reproducible, want.Reproducible)
	case h.Version != want.Version:
		return fmt.Errorf("it was written by mmubench %s, this is %s", h.Version, want.Version)
	case h.Shard != want.Shard || h.Shards != want.Shards:
		return fmt.Errorf("it is shard %d/%d, this run is shard %d/%d", h.Shard, h.Shards, want.Shard, want.Shards)
	}
	return nil
}

// Journal is what a journal or results file holds, checked against a point set.
type Journal struct {
	Header    *JournalHeader   // nil for a plain results CSV
	Rows      map[int][]string // by point number
	Complete  int              // bytes of whole lines (a torn last line excluded)
	Foreign   int              // rows of points not in the sweep (or not in the shard), dropped
	Duplicate int              // rows of a point already seen, dropped
}

// ReadJournal reads data (a journal if it starts with the sweep header
// line, else a results CSV of a finished sweep) against ps, keeping the
// rows of the points in want (nil: every point). A row that is not a
// whole results row, or a header that is not this version's, is an error
// naming its line; a torn last line is dropped.
func ReadJournal(data []byte, ps *PointSet, want map[int]bool) (*Journal, error) {
	j := &Journal{Rows: map[int][]string{}}
	end := bytes.LastIndexByte(data, '\n') + 1
	j.Complete = end
	body := data[:end]
	line := 1
	if bytes.HasPrefix(body, []byte(journalMagic)) {
		nl := bytes.IndexByte(body, '\n')
		h, err := parseJournalHeader(string(body[:nl]))
		if err != nil {
			return nil, fmt.Errorf("line 1: %w", err)
		}
		j.Header = &h
		body = body[nl+1:]
		line = 2
	}
	r := csv.NewReader(bytes.NewReader(body))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err == io.EOF {
		return j, nil
	}
	if err != nil {
		return nil, fmt.Errorf("line %d: %v", line, err)
	}
	if !slices.Equal(header, SweepHeader()) {
		return nil, fmt.Errorf("line %d: not the header of this version's sweep CSV (%d columns, want %d: %s,...,config)",
			line, len(header), len(SweepHeader()), strings.Join(SweepHeader()[:3], ","))
	}
	for {
		row, err := r.Read()
		if err == io.EOF {
			return j, nil
		}
		ln, _ := r.FieldPos(0)
		ln += line - 1
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("line %d: %v", pe.Line+line-1, pe.Err)
			}
			return nil, err
		}
		if len(row) != len(header) {
			return nil, fmt.Errorf("line %d: %d fields, want %d", ln, len(row), len(header))
		}
		i, ok := ps.IndexOf(row[len(row)-1])
		switch {
		case !ok && !strings.HasPrefix(row[len(row)-1], "{"):
			return nil, fmt.Errorf("line %d: not a results row (its config column is not a configuration)", ln)
		case !ok || (want != nil && !want[i]):
			j.Foreign++
		case j.Rows[i] != nil:
			j.Duplicate++
		default:
			j.Rows[i] = row
		}
	}
}

// WriteJournal writes a journal: the header line, the CSV header and rows
// (in point order).
func WriteJournal(w io.Writer, h JournalHeader, rows map[int][]string) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, h.String())
	cw := csv.NewWriter(bw)
	if err := cw.Write(SweepHeader()); err != nil {
		return err
	}
	for _, i := range slices.Sorted(maps.Keys(rows)) {
		if err := cw.Write(rows[i]); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

// WriteResults writes rows — one per point of order, which must all be
// there — as a results CSV, whole or not at all; with header, as a journal
// (a shard's file).
func WriteResults(path string, header *JournalHeader, rows map[int][]string, order []int) error {
	var missing []int
	for _, i := range order {
		if rows[i] == nil {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%d of %d points have no row (the first: point %d)", len(missing), len(order), missing[0])
	}
	return AtomicWrite(path, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		if header != nil {
			fmt.Fprintln(bw, header.String())
		}
		cw := csv.NewWriter(bw)
		if err := cw.Write(SweepHeader()); err != nil {
			return err
		}
		for _, i := range order {
			if err := cw.Write(rows[i]); err != nil {
				return err
			}
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
		return bw.Flush()
	})
}

// FinishSweep writes the completed journal partial to path — every point of
// order exactly once, in order, the shard's header kept if it is one — and
// removes the journal.
func FinishSweep(partial, path string, ps *PointSet, order []int, shard *JournalHeader) error {
	data, err := os.ReadFile(partial)
	if err != nil {
		return err
	}
	want := make(map[int]bool, len(order))
	for _, i := range order {
		want[i] = true
	}
	j, err := ReadJournal(data, ps, want)
	if err != nil {
		return fmt.Errorf("%s: %w", partial, err)
	}
	if err := WriteResults(path, shard, j.Rows, order); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.Remove(partial)
}

// Merge checks that the shard files are the shards of one sweep, with
// every point exactly once, and writes path as the unsharded sweep would
// have: the same rows in the same order. It returns the number of points.
func Merge(path string, shards []string) (int, error) {
	var first *JournalHeader
	rows := map[int][]string{}
	var ps *PointSet
	seenShard := map[int]string{}
	for _, name := range shards {
		data, err := os.ReadFile(name)
		if err != nil {
			return 0, err
		}
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			return 0, fmt.Errorf("%s: empty", name)
		}
		h, err := parseJournalHeader(string(data[:nl]))
		if err != nil {
			return 0, fmt.Errorf("%s: line 1: %w", name, err)
		}
		if first == nil {
			first = &h
			if ps, err = pointSetOfTemplates(h.Templates); err != nil {
				return 0, fmt.Errorf("%s: %w", name, err)
			}
		}
		w := *first
		w.Shard = h.Shard
		if err := h.SameSweep(w); err != nil {
			return 0, fmt.Errorf("%s is not a shard of the sweep of %s: %w", name, shards[0], err)
		}
		if h.Shards != first.Shards {
			return 0, fmt.Errorf("%s is shard %d/%d, %s is of %d shards", name, h.Shard, h.Shards, shards[0], first.Shards)
		}
		if other, dup := seenShard[h.Shard]; dup {
			return 0, fmt.Errorf("%s and %s are both shard %d/%d", other, name, h.Shard, h.Shards)
		}
		seenShard[h.Shard] = name
		if len(data) > 0 && data[len(data)-1] != '\n' {
			return 0, fmt.Errorf("%s: its last line is cut short (the shard did not finish)", name)
		}
		want := map[int]bool{}
		for _, i := range ps.Shard(h.Shard, h.Shards) {
			want[i] = true
		}
		j, err := ReadJournal(data, ps, want)
		switch {
		case err != nil:
			return 0, fmt.Errorf("%s: %w", name, err)
		case j.Foreign > 0 || j.Duplicate > 0:
			return 0, fmt.Errorf("%s: %d rows not of its shard, %d duplicated", name, j.Foreign, j.Duplicate)
		case len(j.Rows) != len(want):
			return 0, fmt.Errorf("%s: %d of its shard's %d points", name, len(j.Rows), len(want))
		}
		for i, r := range j.Rows {
			rows[i] = r
		}
	}
	if first == nil {
		return 0, errors.New("no shard files")
	}
	if len(seenShard) != first.Shards {
		var missing []string
		for i := 0; i < first.Shards; i++ {
			if seenShard[i] == "" {
				missing = append(missing, strconv.Itoa(i))
			}
		}
		return 0, fmt.Errorf("shards %s of %d are missing", strings.Join(missing, ", "), first.Shards)
	}
	if err := WriteResults(path, nil, rows, ps.All()); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return ps.Len(), nil
}

// pointSetOfTemplates rebuilds the numbering of a sweep's points from a
// journal header's templates (hashes only: rows are matched to templates
// by the hash of their configuration).
func pointSetOfTemplates(s string) (*PointSet, error) {
	ps := &PointSet{byHash: map[string][]int{}}
	for _, f := range strings.Split(s, ",") {
		parts := strings.Split(f, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("sweep header: bad template %q", f)
		}
		first, err1 := strconv.ParseUint(parts[1], 10, 64)
		n, err2 := strconv.Atoi(parts[2])
		if err1 != nil || err2 != nil || n < 1 || ps.n+n > maxPoints {
			return nil, fmt.Errorf("sweep header: bad template %q", f)
		}
		t := len(ps.hashes)
		ps.byHash[parts[0]] = append(ps.byHash[parts[0]], t)
		ps.hashes = append(ps.hashes, parts[0])
		ps.first = append(ps.first, first)
		ps.count = append(ps.count, n)
		ps.start = append(ps.start, ps.n)
		ps.n += n
	}
	return ps, nil
}
