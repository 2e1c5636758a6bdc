package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPlotSummary(t *testing.T) {
	by := []string{"workload", "policy", "nested"}
	groups, err := Summarize(readTestdata(t), by, []string{"miss_rate"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		magic []string
	}{
		{"chart.svg", []string{"<?xml", "<svg"}},
		{"chart.PNG", []string{"\x89PNG\r\n\x1a\n"}},
	} {
		path := filepath.Join(dir, tc.name)
		for range 2 { // the second write replaces the first
			if err := PlotSummary(path, "miss_rate", by, groups, "miss_rate (report.csv)"); err != nil {
				t.Fatal(err)
			}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		ok := false
		for _, m := range tc.magic {
			ok = ok || bytes.HasPrefix(data, []byte(m))
		}
		if len(data) < 500 || !ok {
			t.Errorf("%s: %d bytes starting %q", tc.name, len(data), data[:min(len(data), 16)])
		}
		if strings.HasSuffix(tc.name, ".svg") && !bytes.Contains(data, []byte("</svg>")) {
			t.Errorf("%s: not a whole SVG document", tc.name)
		}
	}
	// Failures: nothing written, nothing left behind.
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, metric, want string }{
		{filepath.Join(dir, "chart.gif"), "miss_rate", `unknown image format ".gif"`},
		{filepath.Join(dir, "chart"), "miss_rate", "unknown image format"},
		{filepath.Join(dir, "missing", "chart.svg"), "miss_rate", "no such file"},
		{filepath.Join(dir, "sub"), "miss_rate", "unknown image format"},
		{filepath.Join(dir, "x.svg"), "tlbi", `"tlbi" was not summarized`},
	} {
		err := PlotSummary(tc.path, tc.metric, by, groups, "x")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.path, err, tc.want)
		}
	}
	// Groups without a value are left out; no value at all is an error.
	sparse, err := Summarize(readTestdata(t), by, []string{"cycles_per_iter", "hot_miss_rate"})
	if err != nil {
		t.Fatal(err)
	}
	if err := PlotSummary(filepath.Join(dir, "chart.svg"), "cycles_per_iter", by, sparse, "x"); err != nil {
		t.Errorf("cycles_per_iter (2 of 4 groups): %v", err)
	}
	if err := PlotSummary(filepath.Join(dir, "hot.svg"), "hot_miss_rate", by, sparse, "x"); err == nil ||
		!strings.Contains(err.Error(), "no group has a value of hot_miss_rate") {
		t.Errorf("hot_miss_rate (no values): %v", err)
	}
	// A directory named like an image: the rename fails, the temp file goes.
	if err := os.Mkdir(filepath.Join(dir, "dir.svg"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := PlotSummary(filepath.Join(dir, "dir.svg"), "miss_rate", by, groups, "x"); err == nil {
		t.Error("plotting over a directory succeeded")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "chart.PNG chart.svg dir.svg sub" {
		t.Errorf("directory holds %q: a temporary file was left behind", got)
	}
}

func TestPlotFormat(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"a.svg", "svg"}, {"dir/b.Png", "png"}, {"c.pdf", ""}, {"svg", ""},
	} {
		got, err := PlotFormat(tc.path)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("PlotFormat(%q) = %q, %v; want %q", tc.path, got, err, tc.want)
		}
	}
}
