//go:build !race

package vmdk

// raceEnabled is set when the tests run with the race detector.
const raceEnabled = false
