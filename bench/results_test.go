package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Every sweep report in results/ still comes out of the current code: a few
// of its rows, spread over the file, are run again from the configuration
// they carry and must come out byte for byte as committed (the whole of
// nested-small.csv is remade by cmd/mmubench's TestResultsRegenerate;
// calibration.md's figures by TestCalibration*). A change to the model that
// moves a published number fails here until the reports are regenerated
// (results/regenerate.sh) and re-read. Each catalogue report also re-runs
// its first row with violations: the race it documents is still found.
func TestResultsRowsRegenerate(t *testing.T) {
	for _, tc := range []struct {
		file       string
		rows       int
		firstFound bool // also its first row with violations
	}{
		{"correctness.csv", 4, false},
		{"range-correctness.csv", 3, false},
		{"nested.csv", 3, false},
		{"pageout.csv", 2, false},
		{"side-effect.csv", 2, false},
		{"catalogue-x86.csv", 3, true},
		{"catalogue-mremap.csv", 3, true},
		{"catalogue-numa.csv", 3, true},
		{"catalogue-migrate.csv", 3, true},
		{"catalogue-mthp.csv", 3, true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			head, body := readResultRows(t, tc.file)
			var rows []int
			for k := 0; k < tc.rows; k++ {
				rows = append(rows, k*len(body)/tc.rows)
			}
			if tc.firstFound {
				col := slices.Index(head, "violations")
				i := slices.IndexFunc(body, func(rec []string) bool { return rec[col] != "0" })
				if i < 0 {
					t.Fatalf("%s has no run with violations", tc.file)
				}
				rows = append(rows, i)
			}
			for _, i := range rows {
				checkRowRegenerates(t, tc.file, i, body[i])
			}
		})
	}
}

// readResultRows reads results/file: its header and its rows.
func readResultRows(t *testing.T, file string) (head []string, body [][]string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../results", file))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 2 {
		t.Fatalf("%s: no rows", file)
	}
	return recs[0], recs[1:]
}

// checkRowRegenerates runs row i of file (want) again from the
// configuration it carries and compares the row byte for byte.
func checkRowRegenerates(t *testing.T, file string, i int, want []string) {
	t.Helper()
	var c Config
	if err := json.Unmarshal([]byte(want[len(want)-1]), &c); err != nil {
		t.Fatalf("%s row %d: %v", file, i+2, err)
	}
	r, err := Run(c)
	if err != nil {
		t.Fatalf("%s row %d: %v", file, i+2, err)
	}
	r.WallNs, r.Version = 0, BaseVersion
	var got, line bytes.Buffer
	if err := writeRow(&got, r); err != nil {
		t.Fatal(err)
	}
	cw := csv.NewWriter(&line)
	cw.Write(want)
	cw.Flush()
	if got.String() != line.String() {
		t.Errorf("%s row %d (%s %s %s %s seed %d) does not regenerate: regenerate the report (results/regenerate.sh) and re-read its finding\ngot  %s\nwant %s",
			file, i+2, c.Workload, c.Policy, c.Nested, c.Params.Variant, c.Machine.Sched.Seed, got.String(), line.String())
	}
}
