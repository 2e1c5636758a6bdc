package workloads

import (
	"strings"
	"testing"

	"github.com/mmubench/mmubench/mm"
)

func TestResolveVariant(t *testing.T) {
	const fix mm.Fix = "test-fix"
	w := &Workload{Name: "w", Variants: []Variant{{Name: "fixed"}, {Name: "unfixed", Revert: []mm.Fix{fix}}}}
	plain := &Workload{Name: "plain"}
	for _, tc := range []struct {
		w        *Workload
		variant  string
		want     string // the variant in force
		reverted bool
		err      string
	}{
		{w, "", "fixed", false, ""},
		{w, "fixed", "fixed", false, ""},
		{w, "unfixed", "unfixed", true, ""},
		{w, "nope", "", false, `variant "nope" (valid: fixed, unfixed)`},
		{plain, "", "", false, ""},
		{plain, "fixed", "", false, "has no variants"},
	} {
		_, k, env := newLackeyEnv(t, 1)
		env.Params.Variant = tc.variant
		err := tc.w.resolveVariant(env)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s --variant %q: error %v, want %q", tc.w.Name, tc.variant, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s --variant %q: %v", tc.w.Name, tc.variant, err)
			continue
		}
		if env.Params.Variant != tc.want || k.Reverted(fix) != tc.reverted {
			t.Errorf("%s --variant %q: variant %q, reverted %v; want %q, %v",
				tc.w.Name, tc.variant, env.Params.Variant, k.Reverted(fix), tc.want, tc.reverted)
		}
	}
}
