//go:build !race

package pagetable

// raceEnabled scales the long tests down under the race detector.
const raceEnabled = false
