package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/mmubench/mmubench/litmus"
)

// litmusUsage is the synopsis of `mmubench litmus`.
const litmusUsage = "usage: mmubench litmus [--speculative=false] [--time=false] [--max-states N] [--kinds FILE] FILE|DIR|@INDEX..."

// cmdLitmus is `mmubench litmus`: herd7-syntax AArch64 VMSA litmus tests
// run exhaustively on the emulated hardware, each result printed in
// herd7's shape (Test, States, Ok/No, Witnesses, Condition, Observation,
// Time), "Unsupported NAME: what" for a test that uses what the runner
// does not model.
//
// Exit status (through Main): 0 when every test ran or was skipped as
// unsupported, 2 for bad usage or a file that cannot be read or parsed
// (FILE:LINE: what), 1 if an exploration failed.
func cmdLitmus(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("litmus", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opt := litmus.DefaultOptions()
	fs.BoolVar(&opt.Speculative, "speculative", opt.Speculative, "enumerate speculative TLB fills (any CPU may cache any valid, young translation at any time)")
	timing := fs.Bool("time", true, "print herd7's Time line")
	fs.IntVar(&opt.MaxStates, "max-states", litmus.DefaultMaxStates, "give up on a test (Unsupported) beyond this many distinct states")
	kindsFile := fs.String("kinds", "", "a herd7 kinds file (NAME Allowed|Forbidden|Required a line): report the tests whose verdict differs")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), litmusUsage)
		fs.PrintDefaults()
	}
	// Flags may come before or after the file names.
	var paths []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return usageError{err}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			paths = append(paths, rest...)
			break
		}
		paths = append(paths, rest[0])
		args = rest[1:]
	}
	switch {
	case len(paths) == 0:
		return usageError{errors.New(litmusUsage)}
	case opt.MaxStates < 1:
		return usageError{fmt.Errorf("--max-states %d: must be at least 1", opt.MaxStates)}
	}
	var kinds map[string]litmus.Kind
	if *kindsFile != "" {
		var err error
		if kinds, err = litmus.ReadKinds(*kindsFile); err != nil {
			return usageError{err}
		}
	}
	files, err := litmus.Expand(paths)
	if err != nil {
		return usageError{err}
	}
	outcomes, err := litmus.RunFiles(files, opt, *timing, stdout)
	var se *litmus.SyntaxError
	if errors.As(err, &se) || errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	if kinds != nil {
		writeKindsReport(stdout, *kindsFile, kinds, outcomes)
	}
	return nil
}

// writeKindsReport compares the verdicts with a kinds file.
func writeKindsReport(w io.Writer, file string, kinds map[string]litmus.Kind, outcomes []litmus.Outcome) {
	agree, differ, unlisted, skipped := 0, 0, 0, 0
	for _, o := range outcomes {
		want, listed := kinds[o.Name]
		switch {
		case o.Result == nil:
			skipped++
		case !listed:
			unlisted++
		case o.Result.Verdict() == want:
			agree++
		default:
			differ++
			fmt.Fprintf(w, "Differ %s: %s says %s, the model gives %s\n", o.Name, file, want, o.Result.Verdict())
		}
	}
	fmt.Fprintf(w, "Kinds %s: %d agree, %d differ, %d not listed, %d unsupported\n", file, agree, differ, unlisted, skipped)
}
