package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReportCommand(t *testing.T) {
	const csv = "../../bench/testdata/report.csv"
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string // in stdout (code 0) or stderr
	}{
		{[]string{"report", csv}, 0, "reclaim-mprotect"},
		{[]string{"report", "--by", "policy", "--metrics", "dsb", csv}, 0, "dsb-only"},
		{[]string{"report", csv, "--plot", filepath.Join(dir, "c.svg")}, 0, "c.svg"},
		{[]string{"report"}, 2, "missing results file"},
		{[]string{"report", filepath.Join(dir, "none.csv")}, 1, "no such file"},
		{[]string{"report", "--metrics", "speed", csv}, 2, "available:"},
		{[]string{"report", "--by", "colour", csv}, 2, "unknown --by column"},
		{[]string{"report", csv, "--plot", filepath.Join(dir, "c.gif")}, 2, ".gif"},
		{[]string{"report", csv, "--plot-metric", "speed", "--plot", filepath.Join(dir, "d.svg")}, 2, "speed"},
	} {
		var so, se bytes.Buffer
		code := Main(tc.args, &so, &se)
		out := so.String()
		if tc.code != 0 {
			out = se.String()
		}
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, output %q; want %d and %q", tc.args, code, out, tc.code, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "c.svg")); err != nil {
		t.Fatal("the plot was not written")
	}
}
