package bench

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"runtime"

	gsync "gvisor.dev/gvisor/pkg/sync"
)

// SweepOptions control RunSweep.
type SweepOptions struct {
	Jobs int // points run at once (0: host cores)
	// Reproducible writes wall_ns as 0 and the version without the VCS
	// revision, so a det-mode report regenerates bit for bit.
	Reproducible bool
	// Keep returns every result (calibrate); a sweep's rows are in its
	// journal, and a big sweep's results would not fit in memory.
	Keep bool
	// Progress is called after each point with how many are done of how many.
	Progress func(done, total int)
}

// RunSweep runs the points todo of ps, appending each result row to out as
// it finishes, whole (one write, so an interruption tears at most the last
// line). On ctx's cancellation it stops starting points, lets the running
// ones finish and returns ctx.Err(); the rows written stay. It returns the
// results if opt.Keep, and how many runs could not be carried out (their
// rows name the error).
func RunSweep(ctx context.Context, ps *PointSet, todo []int, out io.Writer, opt SweepOptions) ([]*Result, int, error) {
	jobs := opt.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	var (
		mu       gsync.Mutex
		results  []*Result
		failed   int
		firstErr error
		finished = ps.Len() - len(todo)
	)
	work := make(chan int)
	var wg gsync.WaitGroup
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				r, err := Run(ps.At(i))
				mu.Lock()
				if err == nil {
					if opt.Reproducible {
						r.WallNs, r.Version = 0, BaseVersion
					}
					err = writeRow(out, r)
					if len(r.Errors) > 0 {
						failed++
					}
					if opt.Keep {
						results = append(results, r)
					}
				}
				if err != nil && firstErr == nil {
					firstErr = err
				}
				finished++
				if opt.Progress != nil {
					opt.Progress(finished, ps.Len())
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, i := range todo {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop {
			break
		}
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return results, failed, firstErr
	}
	return results, failed, ctx.Err()
}

// writeRow writes one CSV row (with the config key) in a single Write.
func writeRow(w io.Writer, r *Result) error {
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	row := append(r.CSVRow(), r.Config.Key())
	if err := cw.Write(row); err != nil {
		return err
	}
	cw.Flush()
	_, err := w.Write(buf.Bytes())
	return err
}

// SweepHeader is the header of a sweep's CSV: CSVHeader and the config key.
func SweepHeader() []string { return append(append([]string(nil), CSVHeader...), "config") }
