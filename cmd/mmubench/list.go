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
	fmt.Fprintln(stdout, "\nNested-gather policies (--nested):")
	for _, p := range policy.NestedPolicies {
		fmt.Fprintf(stdout, "  %-24s %s\n", p.Name, p.Description)
	}
	return nil
}
