package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of the output formats")

// The summary of the correctness report, in the formats a patch thread
// takes, against golden files (go test ./cmd/mmubench -run TestReportFormats
// -update rewrites them after a regeneration of the report). Email lines
// stay within 78 columns; no format uses box drawing.
func TestReportFormats(t *testing.T) {
	for _, tc := range []struct{ format, golden string }{
		{"email", "correctness.email"},
		{"markdown", "correctness.md"},
		{"text", "correctness.txt"},
	} {
		t.Run(tc.format, func(t *testing.T) {
			var so, se bytes.Buffer
			if code := Main([]string{"report", "../../results/correctness.csv", "--format", tc.format}, &so, &se); code != 0 {
				t.Fatalf("exit %d: %s", code, se.String())
			}
			path := filepath.Join("testdata", tc.golden)
			if *update {
				if err := os.WriteFile(path, so.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(so.Bytes(), want) {
				t.Fatalf("%s output differs from %s (-update rewrites it):\n%s", tc.format, path, so.String())
			}
			limit := map[string]int{"email": 78}[tc.format]
			for i, l := range strings.Split(so.String(), "\n") {
				if limit > 0 && len(l) > limit {
					t.Errorf("line %d is %d columns: %q", i+1, len(l), l)
				}
				for _, r := range l {
					if r > 127 {
						t.Fatalf("line %d has a non-ASCII character %q", i+1, r)
					}
				}
			}
		})
	}
}

// The default sweep's summary fits in 80 columns and names which policies
// break which race; one run's block fits too.
func TestSummariesFit80Columns(t *testing.T) {
	dir := t.TempDir()
	code, so, se := mainIn(t, dir, "run")
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, se)
	}
	for _, l := range strings.Split(so+se, "\n") {
		if len(l) > 80 {
			t.Errorf("run prints a %d-column line: %q", len(l), l)
		}
	}
	code, so, se = mainIn(t, dir, "sweep", "--quiet", "--workloads", "reclaim-mprotect,madvfree-race",
		"--policies", "dsb-only,flush-mm", "--nested", "none,fullmm", "--seeds", "4", "--rounds", "1")
	if code != 0 {
		t.Fatalf("sweep: exit %d: %s", code, se)
	}
	for _, l := range strings.Split(so, "\n") {
		if len(l) > 80 {
			t.Errorf("the sweep summary has a %d-column line: %q", len(l), l)
		}
	}
	for _, want := range []string{"Verdicts", "dsb-only", "reclaim-mprotect", "madvfree-race none", "mmubench sweep --quiet"} {
		if !strings.Contains(so, want) {
			t.Errorf("the summary lacks %q:\n%s", want, so)
		}
	}
}
