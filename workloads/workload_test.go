package workloads

import (
	"strings"
	"testing"
)

func TestRegistry(t *testing.T) {
	for _, w := range All() {
		got, err := Get(w.Name)
		if err != nil || got != w {
			t.Errorf("Get(%q) = %v, %v", w.Name, got, err)
		}
		if w.Description == "" || w.MinCPUs < 1 || w.Rounds < 1 || w.Setup == nil {
			t.Errorf("%s is incomplete", w.Name)
		}
	}
	if _, err := Get("nope"); err == nil || !strings.Contains(err.Error(), "reclaim-mprotect") {
		t.Errorf("unknown workload: %v", err)
	}
}
