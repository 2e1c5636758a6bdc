//go:build race

package bench

// raceEnabled: the race detector slows the emulator tenfold; the long
// calibration runs are skipped under it.
const raceEnabled = true
