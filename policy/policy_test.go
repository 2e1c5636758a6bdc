package policy

import (
	"strings"
	"testing"
)

func TestRegistry(t *testing.T) {
	for _, i := range BatchPolicies {
		p, err := Batch(i.Name)
		if err != nil || p.Name() != i.Name {
			t.Errorf("Batch(%q) = %v, %v", i.Name, p, err)
		}
	}
	for _, i := range NestedPolicies {
		p, err := Nested(i.Name)
		if err != nil || p.Name() != i.Name {
			t.Errorf("Nested(%q) = %v, %v", i.Name, p, err)
		}
	}
	if _, err := Batch("dsb"); err == nil || !strings.Contains(err.Error(), "no-batch, dsb-only, flush-mm, range") {
		t.Errorf("unknown batch policy: %v", err)
	}
	if _, err := Nested("all"); err == nil || !strings.Contains(err.Error(), "none, range, fullmm") {
		t.Errorf("unknown nested policy: %v", err)
	}
	if (NoBatch{}).ShouldDefer(nil) || !(DSBOnly{}).ShouldDefer(nil) {
		t.Error("only no-batch refuses to defer")
	}
}
