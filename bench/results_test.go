package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Every sweep report in results/ still comes out of the current code: a few
// of its rows, spread over the file, are run again from the configuration
// they carry and must come out byte for byte as committed (the whole of
// nested-small.csv is remade by cmd/mmubench's TestResultsRegenerate;
// calibration.md's figures by TestCalibration*). A change to the model that
// moves a published number fails here until the reports are regenerated
// (results/regenerate.sh) and re-read.
func TestResultsRowsRegenerate(t *testing.T) {
	for _, tc := range []struct {
		file string
		rows int
	}{
		{"correctness.csv", 4},
		{"range-correctness.csv", 3},
		{"nested.csv", 3},
		{"pageout.csv", 2},
		{"side-effect.csv", 2},
		{"catalogue-x86.csv", 3},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("../results", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			body := recs[1:]
			for k := 0; k < tc.rows; k++ {
				i := k * len(body) / tc.rows
				want := body[i]
				var c Config
				if err := json.Unmarshal([]byte(want[len(want)-1]), &c); err != nil {
					t.Fatalf("row %d: %v", i+2, err)
				}
				r, err := Run(c)
				if err != nil {
					t.Fatalf("row %d: %v", i+2, err)
				}
				r.WallNs, r.Version = 0, BaseVersion
				var got bytes.Buffer
				if err := writeRow(&got, r); err != nil {
					t.Fatal(err)
				}
				var line bytes.Buffer
				cw := csv.NewWriter(&line)
				cw.Write(want)
				cw.Flush()
				if got.String() != line.String() {
					t.Errorf("%s row %d (%s %s %s seed %d) does not regenerate: regenerate the report (results/regenerate.sh) and re-read its finding\ngot  %s\nwant %s",
						tc.file, i+2, c.Workload, c.Policy, c.Nested, c.Machine.Sched.Seed, got.String(), line.String())
				}
			}
		})
	}
}
