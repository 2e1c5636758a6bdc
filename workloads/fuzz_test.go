package workloads

import (
	"bytes"
	"strings"
	"testing"
)

// The lackey parser takes any bytes: it returns a trace or an error naming
// the line, never panics, and every access it returns is within the VA
// space and maps onto the pages it counted.
func FuzzParseLackey(f *testing.F) {
	for _, s := range []string{
		"==1== Lackey\nI  0401000,3\n L 04021c0,8\n S 7ff000ff8,8\n M 0601040,4\n",
		" L ffffffffffff,8\n",
		" S 1000,0\n",
		"I 1000\n",
		"\x7fELF\x02\x01\x01\x00\x00",
		strings.Repeat(" L 1000,8\n", 50),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := parseLackey("fuzz", bytes.NewReader(data))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz") || len(err.Error()) > 300 {
				t.Fatalf("error does not name the trace, or is too long: %q", err)
			}
			return
		}
		pages := map[uint64]bool{}
		for _, r := range tr.runs {
			for p := r.start; p < r.start+r.pages; p++ {
				pages[p] = true
			}
		}
		if len(pages) != tr.pages {
			t.Fatalf("%d pages in runs, %d counted", len(pages), tr.pages)
		}
		for _, a := range tr.acc {
			first, words := lackeyWords(a)
			if first>>lackeyVABits != 0 || words == 0 {
				t.Fatalf("access %#x: first %#x, %d words", a, first, words)
			}
			for w := uint64(0); w < words; w++ {
				if !pages[(first+w*8)/page] {
					t.Fatalf("access %#x touches page %#x, not mapped", a, (first+w*8)/page)
				}
			}
		}
	})
}

// The one-pass parser of the common line agrees with the general one on
// every line: the same access, or the same error.
func FuzzLackeyLineFastPath(f *testing.F) {
	for _, s := range []string{"I  04001c70,3", " L 1ffefffd38,8", " M 0402ad50,4", " S 7ff000ff8,16 ", "I  ffffffffffff,1", " L 0,0", "==1== x", " L 12345678901234,8", " S abc,99999999999"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		a, ok, err := parseLackeyLine(line)
		b, ok2, err2 := parseLackeyLineSlow(line)
		if a != b || ok != ok2 || (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("%q: fast %#x %v %v, slow %#x %v %v", line, a, ok, err, b, ok2, err2)
		}
	})
}
