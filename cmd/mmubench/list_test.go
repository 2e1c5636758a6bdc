package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mmubench/mmubench/mmu"
)

// list names every machine flavour and every catalogue race's variants.
func TestListArchesAndVariants(t *testing.T) {
	var out bytes.Buffer
	if err := cmdList(nil, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range append(mmu.ArchNames, "--variant fixed", "--variant unfixed",
		"mremap-race", "migrate-reclaim", "numa-migrate-race", "mthp-split-race") {
		if !strings.Contains(out.String(), want) {
			t.Errorf("mmubench list does not name %q", want)
		}
	}
}
