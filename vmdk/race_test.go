//go:build race

package vmdk

// raceEnabled is set when the tests run with the race detector, whose
// instrumentation makes disktest's byte-by-byte zero checks of GiB-sized
// zero runs take minutes.
const raceEnabled = true
