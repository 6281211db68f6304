//go:build linux

package main

import (
	"fmt"
	"slices"
)

// medianFaults returns the median of the samples' minor page faults.
func medianFaults(ss []sample) int64 {
	v := make([]int64, len(ss))
	for i, s := range ss {
		v[i] = s.Minflt
	}
	slices.Sort(v)
	n := len(v)
	switch {
	case n == 0:
		return 0
	case n%2 == 1:
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// faults formats a count of page faults: 812, 45.3k, 1.27M.
func faults(n int64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e4:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
