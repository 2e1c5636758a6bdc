package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"github.com/mmubench/mmubench/mm"
	"github.com/mmubench/mmubench/mmu"
)

// Host memory: a run holds its emulated memory (every frame's 4 KiB of
// data, touched or not once the workload fills it) and a folio record per
// frame. Nothing guards the host against a configuration that asks for more
// than it has but this check, made before any work: past it the Go runtime
// dies with "out of memory", which no recover catches.

// runOverhead is a run's memory besides its frames: the machine's TLBs, the
// kernel's tables, the Go runtime.
const runOverhead = 32 << 20

// RunMemory estimates the host memory one run of c takes at most.
func RunMemory(c Config) uint64 {
	perFrame := uint64(mmu.FrameWords*8+8) + uint64(unsafe.Sizeof(mm.Folio{}))
	return uint64(c.Machine.Frames)*perFrame + runOverhead
}

// HostAvailable is the memory the host can give (MemAvailable of
// /proc/meminfo), or 0 if it cannot tell.
func HostAvailable() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// FitJobs is how many runs needing need bytes each may run at once within
// avail bytes (0: unknown, no limit), at most jobs; an error if not one fits.
func FitJobs(need, avail uint64, jobs int) (int, error) {
	if avail == 0 {
		return jobs, nil
	}
	if need > avail {
		return 0, fmt.Errorf("a run needs %d MiB of host memory (its emulated memory and kernel state), the host has %d MiB available: use less --mem",
			need>>20, avail>>20)
	}
	return max(1, min(jobs, int(avail/need))), nil
}
