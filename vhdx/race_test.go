//go:build race

package vhdx

// raceEnabled is set when the tests run under the race detector, which
// makes byte-by-byte checks of large images slow.
const raceEnabled = true
