// Package flock takes advisory exclusive locks on open files: flock(2)
// where the OS has it, LockFileEx on Windows.
package flock
