// Command mmubench runs the emulator: workloads under TLB flush policies,
// reporting correctness (violations of what user programs may rely on) and
// cost (TLB misses, invalidations, emulated cycles).
//
//	mmubench run --workload reclaim-mprotect --policy dsb-only --sched det --seed 1 --runs 300 --format csv
//
// Exit status: 0 when the runs completed (whatever they found), 1 when a
// run could not be carried out, 2 for bad usage.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  mmubench sweep [flags]        the patch-discussion sweep (no flags), or one from flags or --file
  mmubench merge OUT SHARD...   the shards of a sweep (sweep --shard I/N) as one CSV
  mmubench run [flags]          one configuration over --runs seeds
  mmubench report FILE.csv      statistics across seeds, and --plot
  mmubench calibrate            the published measurements next to the model's
  mmubench litmus FILE|DIR...   herd7-syntax litmus tests run exhaustively on the hardware model
  mmubench explore [flags]      every schedule within a bound; the first counterexample saved
  mmubench explain --replay F   the causal story of a schedule's first violation (--perfetto OUT.json)
  mmubench list                 workloads and policies
(mmubench COMMAND -h lists a command's flags)
`

// usageError is bad input on the command line: exit status 2.
type usageError struct{ error }

// Main runs the command with args and returns its exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:], stdout, stderr)
	case "sweep":
		err = cmdSweep(args[1:], stdout, stderr)
	case "report":
		err = cmdReport(args[1:], stdout, stderr)
	case "calibrate":
		err = cmdCalibrate(args[1:], stdout, stderr)
	case "list":
		err = cmdList(args[1:], stdout)
	case "litmus":
		err = cmdLitmus(args[1:], stdout, stderr)
	case "explore":
		err = cmdExplore(args[1:], stdout, stderr)
	case "explain":
		err = cmdExplain(args[1:], stdout, stderr)
	case "merge":
		err = cmdMerge(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = usageError{fmt.Errorf("unknown command %q (valid: run, sweep, merge, report, calibrate, explore, explain, litmus, list)", args[0])}
	}
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "mmubench:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}
