package bench

import (
	"strings"
	"testing"

	"github.com/mmubench/mmubench/mmu"
	"github.com/mmubench/mmubench/sched"
)

func archConfig(arch mmu.Arch, pol string) Config {
	c := config("reclaim-mprotect", pol, "fullmm", sched.Det, 0)
	c.Machine.SetArch(arch)
	return c
}

// Race A on the x86 flavours: with INVLPGB and TLBSYNC it is arm64's race
// (a TLBSYNC on the mprotect CPU completes none of the reclaimer's
// INVLPGBs), and flush_tlb_mm or a range flush of the caller's own closes
// it; with IPI shootdown flush_tlb_mm is safe.
func TestArchRaces(t *testing.T) {
	for _, tc := range []struct {
		arch   mmu.Arch
		policy string
		seeds  int
		bad    bool
	}{
		{mmu.ArchX86INVLPGB, "dsb-only", 20, true},
		{mmu.ArchX86INVLPGB, "flush-mm", 60, false},
		{mmu.ArchX86INVLPGB, "range", 60, false},
		{mmu.ArchX86INVLPGB, "no-batch", 20, false},
		{mmu.ArchX86IPI, "flush-mm", 60, false},
		{mmu.ArchX86IPI, "range", 20, false},
		{mmu.ArchX86IPI, "no-batch", 20, false},
	} {
		t.Run(tc.arch.String()+"/"+tc.policy, func(t *testing.T) {
			seeds := testSeeds(tc.seeds, tc.bad)
			bad, stale := seedsWithViolationsIn(t, archConfig(tc.arch, tc.policy), seeds)
			t.Logf("%d of %d seeds with violations, %d with stale TLB entries", bad, seeds, stale)
			if tc.bad && (bad == 0 || stale == 0) {
				t.Errorf("no violation in %d seeds: want the stale write of Race A", tc.seeds)
			}
			if !tc.bad && (bad != 0 || stale != 0) {
				t.Errorf("%d of %d seeds with violations (%d stale): want none", bad, seeds, stale)
			}
		})
	}
}

// What each flavour issues: TLBSYNC is the DSB counter on x86-invlpgb (the
// same machinery), and x86-ipi issues no broadcast at all, only IPIs.
func TestArchInstructions(t *testing.T) {
	for _, tc := range []struct {
		arch      mmu.Arch
		broadcast bool
		ipis      bool
	}{
		{mmu.ArchARM64, true, false},
		{mmu.ArchX86INVLPGB, true, false},
		{mmu.ArchX86IPI, false, true},
	} {
		t.Run(tc.arch.String(), func(t *testing.T) {
			c := archConfig(tc.arch, "flush-mm")
			c.Machine.Sched.Seed = 2
			r, err := Run(c)
			if err != nil || len(r.Errors) > 0 {
				t.Fatalf("%v %v", err, r.Errors)
			}
			var bcast uint64
			for k := mmu.TLBIKind(0); k < mmu.NumTLBIKinds; k++ {
				if k.Broadcast() {
					bcast += r.Total.TLBI[k]
				}
			}
			if (bcast > 0) != tc.broadcast {
				t.Errorf("%d broadcast invalidations", bcast)
			}
			if (r.Kernel["ipis"] > 0) != tc.ipis {
				t.Errorf("%d IPIs", r.Kernel["ipis"])
			}
			if r.Total.DSBs == 0 {
				t.Errorf("no completion waits (DSB, TLBSYNC, shootdown)")
			}
			if got := r.CSVRow()[len(CSVHeader)-1]; got != string(tc.arch) {
				t.Errorf("arch column %q, want %q", got, tc.arch)
			}
		})
	}
}

// A policy a flavour cannot express, and an unknown flavour, are one-line
// errors before anything runs — never a silent substitution.
func TestArchRefused(t *testing.T) {
	for _, tc := range []struct {
		arch   mmu.Arch
		policy string
		want   string
	}{
		{mmu.ArchX86IPI, "dsb-only", "policy dsb-only on x86-ipi: not expressible: its flush_tlb_batched_pending is only a completion barrier"},
		{mmu.ArchX86IPI, "flush-local-range", "policy flush-local-range on x86-ipi: not expressible"},
		{"sparc", "flush-mm", `unknown arch "sparc" (valid: arm64, x86-invlpgb, x86-ipi)`},
	} {
		t.Run(tc.arch.String()+"/"+tc.policy, func(t *testing.T) {
			c := config("reclaim-mprotect", tc.policy, "fullmm", sched.Det, 1)
			c.Machine.Arch = tc.arch
			_, err := Run(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("Run = %v, want one line containing %q", err, tc.want)
			}
		})
	}
}

// A sweep group's arch reaches its points, with the flavour's cost table.
func TestSweepArch(t *testing.T) {
	sw := &Sweep{Seeds: 1, Groups: []Group{
		{Workloads: []string{"reclaim-mprotect"}, Policies: []string{"flush-mm"}, Arch: "x86-ipi"},
		{Workloads: []string{"reclaim-mprotect"}, Policies: []string{"flush-mm"}},
	}}
	ps, err := sw.Points()
	if err != nil {
		t.Fatal(err)
	}
	var got []mmu.Arch
	for _, c := range ps.templates {
		got = append(got, c.Machine.Arch)
		if c.Machine.Cost != mmu.DefaultCostFor(c.Machine.Arch) {
			t.Errorf("%s point: not its cost table", c.Machine.Arch)
		}
	}
	if len(got) != 2 || got[0] != mmu.ArchX86IPI || got[1] != mmu.ArchARM64 {
		t.Errorf("points' archs %q", got)
	}
	sw.Groups[0].Policies = []string{"dsb-only"}
	if _, err := sw.Points(); err == nil || !strings.Contains(err.Error(), "sweep group 1: policy dsb-only on x86-ipi") {
		t.Errorf("dsb-only on x86-ipi in a sweep: %v", err)
	}
	sw.Groups[0].Arch = "vax"
	if _, err := sw.Points(); err == nil || !strings.Contains(err.Error(), `sweep group 1: unknown arch "vax"`) {
		t.Errorf("unknown arch in a sweep: %v", err)
	}
}

// KPTI doubles every user TLBI but changes no verdict: seed 000's race
// still breaks dsb-only (the user ASID's stale entry is what writes), and
// the fixes stay clean.
func TestKPTIRaces(t *testing.T) {
	for _, tc := range []struct {
		workload, policy, nested string
		seeds                    int
		bad                      bool
	}{
		{"reclaim-mprotect", "dsb-only", "fullmm", 20, true},
		{"reclaim-mprotect", "flush-mm", "fullmm", 40, false},
		{"reclaim-mprotect", "range", "fullmm", 40, false},
		{"madvfree-race", "flush-mm", "none", 20, true},
		{"madvfree-race", "flush-mm", "fullmm", 40, false},
	} {
		t.Run(tc.workload+"/"+tc.policy+"/"+tc.nested, func(t *testing.T) {
			c := config(tc.workload, tc.policy, tc.nested, sched.Det, 0)
			c.Machine.KPTI = true
			seeds := testSeeds(tc.seeds, tc.bad)
			bad, _ := seedsWithViolationsIn(t, c, seeds)
			t.Logf("%d of %d seeds with violations", bad, seeds)
			if tc.bad != (bad > 0) {
				t.Errorf("%d of %d seeds with violations, want violations=%v", bad, seeds, tc.bad)
			}
		})
	}
}
