module github.com/mmubench/mmubench

go 1.26.8

// gVisor has no tags: its pkg/sync is pinned by pseudo-version.
require gvisor.dev/gvisor v0.0.0-20260905035102-160fafc42237

// The project's chosen libraries for statistics across seeds and terminal
// tables, pinned now; bench/ and cmd/mmubench import them.
require (
	github.com/montanaflynn/stats v0.14.0
	github.com/olekukonko/tablewriter v1.1.5
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/clipperhouse/displaywidth v0.10.0 // indirect
	github.com/clipperhouse/uax29/v2 v2.6.0 // indirect
	github.com/fatih/color v1.18.0 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/mattn/go-runewidth v0.0.19 // indirect
	github.com/olekukonko/cat v0.0.0-20250911104152-50322a0618f6 // indirect
	github.com/olekukonko/errors v1.2.0 // indirect
	github.com/olekukonko/ll v0.1.6 // indirect
	golang.org/x/sys v0.43.0 // indirect
)
