package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/mmubench/mmubench/bench"
	"github.com/mmubench/mmubench/explore"
	"github.com/mmubench/mmubench/sched"
)

// cmdExplain is `mmubench explain --replay FILE`: the causal story of a
// schedule's first violation, and the whole run as a Perfetto trace.
func cmdExplain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	replay := fs.String("replay", "", "the schedule to replay (from explore, or run --trace-out): it carries its configuration")
	perfetto := fs.String("perfetto", "", "also write the whole run as Chrome trace-event JSON (Perfetto UI, chrome://tracing) to this file")
	all := fs.Bool("all", false, "print every event of the run, not only those of the first violation")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *replay == "" {
		return usageError{fmt.Errorf("--replay FILE is required")}
	}
	f, err := os.Open(*replay)
	if err != nil {
		return usageError{err}
	}
	tr, err := sched.ReadTrace(f)
	f.Close()
	if err != nil {
		return usageError{fmt.Errorf("%s: %w", *replay, err)}
	}
	if tr.Config == "" {
		return usageError{fmt.Errorf("%s: the schedule carries no configuration (write it with explore or run --trace-out)", *replay)}
	}
	cfg, err := bench.ConfigFromTrace(tr)
	if err != nil {
		return usageError{fmt.Errorf("%s: %w", *replay, err)}
	}
	if _, err := cfg.Validate(); err != nil {
		return usageError{fmt.Errorf("%s: %w", *replay, err)}
	}
	res, events, err := bench.Explain(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "replay of %s: %s policy=%s nested=%s cpus=%d, %d events\n",
		*replay, cfg.Workload, cfg.Policy, cfg.Nested, cfg.Machine.CPUs, len(events))
	for _, e := range res.Errors {
		fmt.Fprintf(stdout, "the run failed: %s\n", e)
	}
	story := events
	if !*all {
		if story = explore.Story(events); story == nil {
			fmt.Fprintln(stdout, "no violation in this run")
		} else {
			fmt.Fprintf(stdout, "first violation: %v\n\nthe events of its page, up to it:\n", res.First)
		}
	}
	if story != nil {
		if err := explore.WriteStory(stdout, story); err != nil {
			return err
		}
		if un := explore.Unapplied(events, cfg.Machine.CPUs); len(un) > 0 {
			fmt.Fprintf(stdout, "\nat the violation (a CPU that went offline had emptied its TLBs):\n")
			for _, s := range un {
				fmt.Fprintf(stdout, "  %s\n", s)
			}
		}
	}
	if *perfetto != "" {
		meta := map[string]string{"replay": *replay, "config": tr.Config, "version": bench.Version()}
		if res.First != nil {
			meta["first_violation"] = res.First.String()
		}
		pf := explore.Perfetto(events, cfg.Machine.CPUs, meta)
		if err := bench.AtomicWrite(*perfetto, func(w io.Writer) error { return explore.WritePerfetto(w, pf) }); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nPerfetto trace (%d events) written to %s: open it in https://ui.perfetto.dev or chrome://tracing\n", len(pf.TraceEvents), *perfetto)
	}
	return nil
}
