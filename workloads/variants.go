package workloads

import (
	"fmt"
	"strings"

	"github.com/mmubench/mmubench/mm"
)

// A race of the catalogue runs on two forms of the kernel code: after the
// fix that closed it (the first variant, the default) and before it (the
// variants that revert the fix). Params.Variant chooses one; the flush
// policy is chosen separately, since several races are about which
// flush_tlb_batched_pending form is safe rather than about a kernel fix.

// Variant is one form of the kernel code a workload runs.
type Variant struct {
	Name        string
	Description string
	// Revert lists the fixes this form takes out of the kernel
	// (mm.Kernel.Revert); empty for the fixed form.
	Revert []mm.Fix
}

// resolveVariant checks Params.Variant against the workload, fills in the
// default (the first variant) and takes the variant's fixes out of the
// kernel.
func (w *Workload) resolveVariant(env *Env) error {
	p := &env.Params
	if w.Variants == nil {
		if p.Variant != "" {
			return fmt.Errorf("%s: has no variants (--variant applies to the race catalogue's workloads)", w.Name)
		}
		return nil
	}
	if p.Variant == "" {
		p.Variant = w.Variants[0].Name
	}
	for _, v := range w.Variants {
		if v.Name == p.Variant {
			for _, f := range v.Revert {
				env.Kernel.Revert(f)
			}
			return nil
		}
	}
	return fmt.Errorf("%s: variant %q (valid: %s)", w.Name, p.Variant, strings.Join(w.VariantNames(), ", "))
}

// VariantNames lists the workload's variants, the default first.
func (w *Workload) VariantNames() []string {
	var out []string
	for _, v := range w.Variants {
		out = append(out, v.Name)
	}
	return out
}
