package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/mmubench/mmubench/bench"
)

// cmdMerge is `mmubench merge OUT SHARD.csv...`: the shards of one sweep
// (sweep --shard I/N, one per Kubernetes Job index or Slurm array task) put
// together into OUT, exactly as the unsharded sweep would have written it.
func cmdMerge(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("merge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	force := fs.Bool("force", false, "overwrite an existing OUT")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: mmubench merge [--force] OUT SHARD.csv...")
		fs.PrintDefaults()
	}
	files, help, err := parseInterleaved(fs, args)
	if help || err != nil {
		return err
	}
	if len(files) < 2 {
		return usageError{fmt.Errorf("merge needs OUT and at least one shard file")}
	}
	out, shards := files[0], files[1:]
	if err := bench.CheckWritable(out); err != nil {
		return usageError{err}
	}
	unlock, err := bench.LockOutput(out)
	if err != nil {
		return usageError{err}
	}
	defer unlock()
	if !*force {
		if exists(out) {
			return usageError{fmt.Errorf("%s exists: overwrite it with --force", out)}
		}
	}
	n, err := bench.Merge(out, shards)
	if err != nil {
		return usageError{err}
	}
	fmt.Fprintf(stderr, "%d points from %d shards; results in %s\n", n, len(shards), out)
	return nil
}
