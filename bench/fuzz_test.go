package bench

import (
	"bytes"
	"strings"
	"testing"
)

// The sweep-file reader takes any bytes: a sweep whose points all validate,
// or an error; never a panic or a hang (points are counted, not built).
func FuzzLoadSweep(f *testing.F) {
	for _, s := range []string{
		`{"sched":"det","seeds":3,"groups":[{"workloads":["reclaim-mprotect"],"policies":["dsb-only","range"]}]}`,
		`{"groups":[{"workloads":["seq"],"cpus":[2,4],"geometries":[{"l1":"16x16","l2":"off","walk_cache":"64x4"}]}]}`,
		`{"first_seed":0,"groups":[{"workloads":["mprotect-under-reclaim"],"quantum":65536,"params":{"pages":64,"gap":1000}}]}`,
		`{"groups":[{"workloads":["seq"],"mem_mib":1000000}]}`,
		`{"groups":`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := LoadSweep(bytes.NewReader(data))
		if err != nil {
			return
		}
		ps, err := s.Points()
		if err != nil {
			return
		}
		if ps.Len() > 0 {
			for _, i := range []int{0, ps.Len() - 1} {
				c := ps.At(i)
				if _, err := c.Validate(); err != nil {
					t.Fatalf("point %d does not validate: %v", i, err)
				}
				if j, ok := ps.IndexOf(c.Key()); !ok || j != i {
					t.Fatalf("IndexOf(point %d) = %d, %v", i, j, ok)
				}
			}
		}
	})
}

// The results reader of report and the journal reader of resume and merge
// take any bytes: a table or an error naming the line, never a panic.
func FuzzReadResults(f *testing.F) {
	header := strings.Join(SweepHeader(), ",")
	for _, s := range []string{
		header + "\n",
		"workload,policy,seed,miss_rate\nseq,range,1,0.5\nseq,range,2,x\n",
		"# mmubench-sweep fingerprint=ab points=2 version=0.1.0 reproducible=true shard=0/1 templates=ab:1:2\n" + header + "\n",
		"\ufeffworkload,policy\n\"a,b\n",
		"",
	} {
		f.Add([]byte(s))
	}
	ps, err := smallSweep().Points()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := ReadResults(bytes.NewReader(data)); err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("a multi-line error: %q", err)
		}
		j, err := ReadJournal(data, ps, nil)
		if err != nil {
			return
		}
		for i := range j.Rows {
			if i < 0 || i >= ps.Len() {
				t.Fatalf("row of point %d of %d", i, ps.Len())
			}
		}
		if j.Complete > len(data) {
			t.Fatalf("complete part %d of %d bytes", j.Complete, len(data))
		}
	})
}
