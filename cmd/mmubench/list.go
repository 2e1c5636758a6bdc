package main

import (
	"fmt"
	"io"

	"github.com/mmubench/mmubench/policy"
	"github.com/mmubench/mmubench/workloads"
)

// cmdList is `mmubench list`: the workloads and policies, a line each.
func cmdList(args []string, stdout io.Writer) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		fmt.Fprintln(stdout, "usage: mmubench list  (the workloads and policies, a line each)")
		return nil
	}
	if len(args) > 0 {
		return usageError{fmt.Errorf("list takes no arguments")}
	}
	fmt.Fprintln(stdout, "Workloads (--workload):")
	for _, w := range workloads.All() {
		fmt.Fprintf(stdout, "  %-24s %s\n", w.Name, w.Description)
		for _, v := range w.Variants {
			fmt.Fprintf(stdout, "  %-24s   --variant %s: %s\n", "", v.Name, v.Description)
		}
	}
	fmt.Fprintf(stdout, "  %-24s %s\n", "lackey:PATH", workloads.LackeyDescription)
	fmt.Fprintln(stdout, "\nBatched-unmap policies (--policy):")
	for _, p := range policy.BatchPolicies {
		fmt.Fprintf(stdout, "  %-24s %s\n", p.Name, p.Description)
	}
	fmt.Fprintln(stdout, "\nMachine flavours (--arch):")
	for _, a := range archDescriptions {
		fmt.Fprintf(stdout, "  %-24s %s\n", a.name, a.description)
	}
	fmt.Fprintln(stdout, "\nNested-gather policies (--nested):")
	for _, p := range policy.NestedPolicies {
		fmt.Fprintf(stdout, "  %-24s %s\n", p.Name, p.Description)
	}
	return nil
}

// archDescriptions are the machine flavours in list's words.
var archDescriptions = []struct{ name, description string }{
	{"arm64", "broadcast TLBI ...IS, completed by the issuer's DSB ISH (the default)"},
	{"x86-invlpgb", "AMD INVLPGB, completed by the issuer's TLBSYNC: arm64's rule under other names and costs"},
	{"x86-ipi", "synchronous IPI shootdown (flush_tlb_multi): nothing in flight, so dsb-only cannot be expressed"},
}
