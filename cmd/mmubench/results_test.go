package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Reports made in det mode regenerate bit for bit: the small committed one
// is made again from its sweep file and compared byte for byte.
func TestResultsRegenerate(t *testing.T) {
	const dir = "../../results"
	want, err := os.ReadFile(filepath.Join(dir, "nested-small.csv"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "nested-small.csv")
	var so, se bytes.Buffer
	args := []string{"sweep", "--quiet", "--reproducible", "--file", filepath.Join(dir, "nested-small.json"), "--out", out}
	if code := Main(args, &so, &se); code != 0 {
		t.Fatalf("exit %d: %s", code, se.String())
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("results/nested-small.csv does not regenerate bit for bit (if the model changed on purpose, regenerate the results with the commands in results/README.md)")
	}
}
