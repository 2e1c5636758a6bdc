package mmu

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mmubench/mmubench/sched"
)

func TestParseArch(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Arch
		wantErr string
	}{
		{"", ArchARM64, ""},
		{"arm64", ArchARM64, ""},
		{"x86-invlpgb", ArchX86INVLPGB, ""},
		{"x86-ipi", ArchX86IPI, ""},
		{"sparc", "", `unknown arch "sparc" (valid: arm64, x86-invlpgb, x86-ipi)`},
	} {
		got, err := ParseArch(tc.in)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("ParseArch(%q) = %v, want error %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseArch(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	cfg := DefaultConfig()
	cfg.Arch = "sparc"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "valid: arm64") {
		t.Errorf("Validate of arch sparc: %v", err)
	}
}

// An arm64 machine's JSON has no arch (configurations from before there
// was a choice keep theirs); an x86 one names it and carries its costs.
func TestArchJSON(t *testing.T) {
	b, _ := json.Marshal(DefaultConfig())
	if strings.Contains(string(b), `"arch"`) || strings.Contains(string(b), `"ipi_`) {
		t.Errorf("arm64 config JSON mentions arch or IPI costs: %s", b)
	}
	for _, a := range []Arch{ArchX86INVLPGB, ArchX86IPI} {
		cfg := DefaultConfig()
		cfg.SetArch(a)
		b, _ := json.Marshal(cfg)
		if !strings.Contains(string(b), `"arch":"`+string(a)+`"`) {
			t.Errorf("%s config JSON lacks its arch: %s", a, b)
		}
		var back Config
		if err := json.Unmarshal(b, &back); err != nil || back.Arch != a || back.Cost != DefaultCostFor(a) {
			t.Errorf("%s: JSON round trip gives arch %q cost %+v (%v)", a, back.Arch, back.Cost, err)
		}
	}
}

// x86-ipi's shootdown is synchronous: once FlushTLBMulti returns, no CPU
// of the mask can hit the flushed entry — in both schedulers, whatever the
// delivery model does meanwhile.
func TestFlushTLBMultiSynchronous(t *testing.T) {
	for _, mode := range []sched.Mode{sched.Det, sched.Parallel} {
		for seed := uint64(1); seed <= 50; seed++ {
			m := newMachine(t, 3, mode, seed, func(c *Config) { c.SetArch(ArchX86IPI); c.Latency = 2000 })
			sp := mapPages(t, m, 1, testBase, 1, userRW)
			p := sp.va(0)
			var cached [3]flag
			var flushed flag
			stale := false
			err := m.Run(func(c *CPU) {
				sp.enter(c)
				c.Load(p)
				cached[c.ID()].Set()
				if c.ID() == 0 {
					cached[1].Wait(c, "cached")
					cached[2].Wait(c, "cached")
					sp.tables.Unmap(p)
					var mask CPUMask
					mask.Set(0)
					mask.Set(1)
					mask.Set(2)
					c.FlushTLBMulti(&mask, VAE1, sp.asid, p, 1)
					flushed.Set()
					return
				}
				flushed.Wait(c, "flushed")
				if _, f := c.Load(p); f == FaultNone {
					stale = true
				}
			})
			if err != nil {
				t.Fatalf("%v seed %d: %v", mode, seed, err)
			}
			if stale {
				t.Fatalf("%v seed %d: a CPU hit the entry after flush_tlb_multi returned", mode, seed)
			}
			if got := m.IPIs(); got != 2 {
				t.Fatalf("%v seed %d: %d IPIs sent, want 2", mode, seed, got)
			}
		}
	}
}

// A broadcast TLBI on a machine without broadcast invalidation is an error
// of the run, not a silent no-op.
func TestNoBroadcastOnIPI(t *testing.T) {
	m := newMachine(t, 2, sched.Det, 1, func(c *Config) { c.SetArch(ArchX86IPI) })
	err := m.Run(func(c *CPU) {
		if c.ID() == 0 {
			c.TLBIASIDE1IS(1)
		}
	})
	if !errors.Is(err, ErrNoBroadcast) {
		t.Fatalf("Run = %v, want ErrNoBroadcast", err)
	}
}

// On x86-invlpgb the completion rule is arm64's: a TLBSYNC (DSBISH) on
// another CPU completes nothing of the issuer's INVLPGBs; the issuer's does.
func TestTLBSYNCCompletionRule(t *testing.T) {
	stale := func(seed uint64, issuerSync bool) bool {
		m := newMachine(t, 3, sched.Det, seed, func(c *Config) { c.SetArch(ArchX86INVLPGB); c.Sched.ChangeEvery = 4 })
		sp := mapPages(t, m, 1, testBase, 1, userRW)
		p := sp.va(0)
		var cached, issued, synced flag
		hit := false
		if err := m.Run(func(c *CPU) {
			sp.enter(c)
			switch c.ID() {
			case 0:
				cached.Wait(c, "cached")
				sp.tables.Unmap(p)
				c.TLBIVALE1IS(sp.asid, p) // INVLPGB
				if issuerSync {
					c.DSBISH() // TLBSYNC
				}
				issued.Set()
			case 1:
				issued.Wait(c, "issued")
				c.DSBISH() // TLBSYNC on another CPU
				synced.Set()
			case 2:
				c.Load(p)
				cached.Set()
				synced.Wait(c, "synced")
				_, f := c.Load(p)
				hit = f == FaultNone
			}
		}); err != nil {
			t.Fatal(err)
		}
		return hit
	}
	n, m := 0, 0
	for s := uint64(0); s < 300; s++ {
		if stale(s, false) {
			n++
		}
		if stale(s, true) {
			m++
		}
	}
	if n == 0 {
		t.Errorf("another CPU's TLBSYNC never left the entry usable in 300 seeds: the completion rule is not the issuer's")
	}
	if m != 0 {
		t.Errorf("the issuer's TLBSYNC left the entry usable in %d of 300 seeds", m)
	}
}
