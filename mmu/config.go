package mmu

import (
	"fmt"

	"github.com/mmubench/mmubench/sched"
)

// MaxCPUs bounds Config.CPUs.
const MaxCPUs = 128

// MaxFrames bounds Config.Frames (64 GiB of emulated memory; what the host
// can hold is the caller's to check), MaxLatency Config.Latency (1.7 s at
// 2.5 GHz: well past any DSB a kernel would wait for).
const (
	MaxFrames  = 1 << 24
	MaxLatency = 1 << 32
)

// Config describes a machine. Its zero TLB geometries mean "off" for L2 and
// the walk cache; DefaultConfig gives the defaults of docs/kernel-model.md §5.
type Config struct {
	CPUs        int         `json:"cpus"`
	Frames      int         `json:"frames"` // physical memory, in 4 KiB frames
	L1          TLBGeometry `json:"l1"`
	L2          TLBGeometry `json:"l2"`         // Entries 0 = no L2 TLB
	WalkCache   TLBGeometry `json:"walk_cache"` // Entries 0 = no walk cache
	Replacement Replacement `json:"replacement"`
	Cost        CostModel   `json:"cost"`
	// Latency is the parallel-mode delivery latency of a broadcast
	// invalidation: each target applies it after a uniformly random number
	// of its own cycles in [0, Latency]. 0 = at the target's next yield point.
	Latency uint64 `json:"latency"`
	// DeliverNum/DeliverDen is the det-mode chance, at each of a target's
	// yield points, that a pending invalidation is applied there.
	DeliverNum uint32 `json:"deliver_num"`
	DeliverDen uint32 `json:"deliver_den"`
	// DetDelivery is the det-mode delivery model: DeliverChance (the
	// default: the chance above at every yield point) or DeliverHold (one
	// choice per invalidation: now, or held until its issuer's DSB), which
	// systematic exploration uses.
	DetDelivery DetDelivery `json:"det_delivery,omitempty"`
	// Arch is the machine flavour (arch.go): "" is arm64, the default, and
	// is omitted so that arm64 configurations keep their JSON. Set it with
	// SetArch, which also selects the flavour's cost table.
	Arch Arch `json:"arch,omitempty"`
	// KPTI is arm64's kernel page-table isolation (CONFIG_UNMAP_KERNEL_AT_EL0,
	// arm64_kernel_unmapped_at_el0()): each mm has an ASID pair, user code
	// runs with the odd one, and the kernel issues every user TLBI for both
	// (__tlbi then __tlbi_user) — two operations at the DVM node and at
	// every target. A kernel with KASLR turns it on for cores without E0PD
	// (kaslr_requires_kpti()), the A78's and TaiShan v110's among them.
	KPTI bool `json:"kpti,omitempty"`
	// Sched is how the CPUs take turns; Sched.Threads is set from CPUs.
	Sched sched.Config `json:"sched"`
	// Tracer, if set, receives the run's events (trace.go).
	Tracer Tracer `json:"-"`
}

// DetDelivery is a det-mode delivery model of broadcast invalidations.
type DetDelivery uint8

const (
	DeliverChance DetDelivery = iota
	DeliverHold
)

// DefaultConfig is a Neoverse-N1-like machine: L1 48 fully associative, L2
// 1280 5-way, walk cache 64 4-way, true LRU, 64 MiB of memory.
func DefaultConfig() Config {
	return Config{
		CPUs:        4,
		Frames:      64 << 20 >> 12,
		L1:          TLBGeometry{Entries: 48, Ways: 48},
		L2:          TLBGeometry{Entries: 1280, Ways: 5},
		WalkCache:   TLBGeometry{Entries: 64, Ways: 4},
		Replacement: ReplLRU,
		Cost:        DefaultCost(),
		Latency:     256,
		DeliverNum:  1,
		DeliverDen:  8,
		Sched:       sched.Config{Mode: sched.Parallel},
	}
}

// Validate refuses a machine that cannot exist, with a one-line error.
func (c *Config) Validate() error {
	if err := c.Arch.Validate(); err != nil {
		return err
	}
	if c.KPTI && c.Arch != ArchARM64 {
		return fmt.Errorf("kpti on %s: KPTI is arm64's (x86's page-table isolation flushes user PCIDs, which the x86 flavours do not model)", c.Arch)
	}
	if c.CPUs < 1 || c.CPUs > MaxCPUs {
		return fmt.Errorf("%d CPUs (must be 1..%d)", c.CPUs, MaxCPUs)
	}
	if c.Frames < 2 || c.Frames > MaxFrames {
		return fmt.Errorf("%d frames of memory (must be 2..%d: 8 KiB to %d GiB)", c.Frames, MaxFrames, MaxFrames>>18)
	}
	if c.Latency > MaxLatency {
		return fmt.Errorf("delivery latency %d cycles (must be at most %d)", c.Latency, uint64(MaxLatency))
	}
	if err := c.L1.Validate(c.Replacement); err != nil {
		return fmt.Errorf("L1 TLB: %w", err)
	}
	if c.L2.Entries != 0 {
		if err := c.L2.Validate(c.Replacement); err != nil {
			return fmt.Errorf("L2 TLB: %w", err)
		}
	}
	if c.WalkCache.Entries != 0 {
		if err := c.WalkCache.Validate(c.Replacement); err != nil {
			return fmt.Errorf("walk cache: %w", err)
		}
	}
	if c.DeliverDen == 0 || c.DeliverNum == 0 || c.DeliverNum > c.DeliverDen {
		return fmt.Errorf("det delivery chance %d/%d (must be in (0, 1])", c.DeliverNum, c.DeliverDen)
	}
	return nil
}
