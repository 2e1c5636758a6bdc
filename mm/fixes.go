package mm

import "slices"

// Fix names a kernel fix the emulated kernel carries and a race workload's
// variant can take out, so that the code before the fix runs: the race
// catalogue reproduces each race before its fix and shows it clean after.
// The fixes are the kernel's own commits; each constant's comment names it.
type Fix string

// Revert takes fix f out of the kernel: the code before it runs. Call it
// before the machine runs (workload setup), not while CPUs run.
func (k *Kernel) Revert(f Fix) {
	if !slices.Contains(k.reverted, f) {
		k.reverted = append(k.reverted, f)
	}
}

// Reverted reports whether fix f was taken out.
func (k *Kernel) Reverted(f Fix) bool { return slices.Contains(k.reverted, f) }
