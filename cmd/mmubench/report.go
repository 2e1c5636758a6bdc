package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mmubench/mmubench/bench"
)

// reportUsage is the synopsis of `mmubench report`.
const reportUsage = "usage: mmubench report FILE.csv [--metrics m1,m2,...] [--by col1,col2,...] [--where col=value,...] [--plot OUT.svg|OUT.png] [--plot-metric m] [--plot-x col]"

// cmdReport is `mmubench report`: the runs of a results CSV grouped by
// some columns (the seeds of one configuration, by default), each metric
// summarized across a group's runs as median, 95% interval of the median
// and p95, printed as a table and optionally drawn as a bar chart.
//
// Exit status (through Main): 2 for bad usage (flags, unknown columns,
// plot extension), 1 for a file that cannot be read or is not a valid
// results CSV.
func cmdReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	metrics := fs.String("metrics", strings.Join(bench.DefaultReportMetrics, ","), "comma-separated numeric columns to summarize")
	by := fs.String("by", strings.Join(bench.DefaultReportBy, ","), "comma-separated columns to group runs by")
	plotPath := fs.String("plot", "", "also draw a bar chart of --plot-metric to this .svg or .png file")
	plotMetric := fs.String("plot-metric", "miss_rate", "metric the --plot chart shows")
	plotX := fs.String("plot-x", "", "draw --plot as lines against this numeric column (one line per --by group) instead of bars")
	where := fs.String("where", "", "comma-separated column=value conditions: only the runs that meet all of them")
	format := fs.String("format", "text", "output: text (ASCII tables), email (plain columns, at most 78 wide), markdown, csv or json (the group statistics)")
	detail := fs.Bool("detail", false, "the full statistics per metric (median, 95% interval, p95) instead of the verdict and cost summary; implied by --metrics or --by")
	args0 := args
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), reportUsage)
		fs.PrintDefaults()
	}
	// Flags may come before or after the file name.
	files, help, err := parseInterleaved(fs, args)
	if help || err != nil {
		return err
	}
	switch {
	case len(files) == 0:
		return usageError{fmt.Errorf("report: missing results file (%s)", reportUsage)}
	case len(files) > 1:
		return usageError{fmt.Errorf("report: unexpected argument %q (one results file only)", files[1])}
	}
	file := files[0]
	byCols, err := splitList("--by", *by)
	if err != nil {
		return err
	}
	metricCols, err := splitList("--metrics", *metrics)
	if err != nil {
		return err
	}
	for _, m := range metricCols {
		if bench.TextColumns[m] {
			return usageError{fmt.Errorf("--metrics %s: not a numeric column (group by it with --by)", m)}
		}
	}
	if !slices.Contains(append(slices.Clone(bench.TextFormats), "csv", "json"), *format) {
		return usageError{fmt.Errorf("--format %q: want text, email, markdown, csv or json", *format)}
	}
	if *plotPath != "" {
		if _, err := bench.PlotFormat(*plotPath); err != nil {
			return usageError{err}
		}
		if *plotMetric == "" {
			return usageError{errors.New("--plot-metric: empty")}
		}
	}

	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	table, err := bench.ReadResults(f)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if *where != "" {
		conds, err := splitList("--where", *where)
		if err != nil {
			return err
		}
		var ce *bench.ColumnError
		if table, err = table.Where(conds); errors.As(err, &ce) || err != nil {
			return usageError{err}
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	command := "mmubench report " + strings.Join(args0, " ")
	switch {
	case *format == "csv" || *format == "json":
		groups, err := summarize(file, table, byCols, metricCols)
		if err != nil {
			return err
		}
		if err := bench.WriteGroups(stdout, *format, byCols, groups); err != nil {
			return err
		}
	case *detail || set["metrics"] || set["by"]:
		groups, err := summarize(file, table, byCols, metricCols)
		if err != nil {
			return err
		}
		if *format == "text" {
			fmt.Fprintf(stdout, "%s\n%s: %d runs in %d groups by %s\n", bench.Provenance(table, command), file, len(table.Rows), len(groups), strings.Join(byCols, ","))
			if err := bench.WriteReportTable(stdout, byCols, groups); err != nil {
				return err
			}
		} else if err := bench.RenderTables(stdout, *format, bench.Provenance(table, command), bench.DetailTable(byCols, groups)); err != nil {
			return err
		}
	default:
		if err := printSummary(stdout, *format, table, command); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	}
	if *plotPath == "" {
		return nil
	}
	if *plotX != "" {
		plotGroups, err := summarize(file, table, append(slices.Clone(byCols), *plotX), []string{*plotMetric})
		if err != nil {
			return err
		}
		title := fmt.Sprintf("%s against %s, by %s (%s)", *plotMetric, *plotX, strings.Join(byCols, "/"), filepath.Base(file))
		if err := bench.PlotLines(*plotPath, *plotMetric, *plotX, byCols, plotGroups, title); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", *plotPath)
		return nil
	}
	plotGroups, err := summarize(file, table, byCols, []string{*plotMetric})
	if err != nil {
		return err
	}
	title := fmt.Sprintf("%s by %s (%s)", *plotMetric, strings.Join(byCols, "/"), filepath.Base(file))
	if err := bench.PlotSummary(*plotPath, *plotMetric, byCols, plotGroups, title); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", *plotPath)
	return nil
}

// summarize is bench.Summarize with an unknown column as a usage error
// and other errors naming the file.
func summarize(file string, t *bench.Table, by, metrics []string) ([]bench.GroupSummary, error) {
	groups, err := bench.Summarize(t, by, metrics)
	var ce *bench.ColumnError
	switch {
	case errors.As(err, &ce):
		return nil, usageError{err}
	case err != nil:
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return groups, nil
}

// splitList splits a comma-separated flag value into its names.
func splitList(flagName, s string) ([]string, error) {
	var names []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, usageError{fmt.Errorf("%s %q: empty column name", flagName, s)}
		}
		names = append(names, name)
	}
	return names, nil
}
