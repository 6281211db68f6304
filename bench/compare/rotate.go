//go:build linux

package main

// roundOrder returns the order in which round r runs n tools: a Latin
// square that rotates the tools' positions from round to round and
// balances who runs after whom (a Williams design).
//
// Round r runs base[0]+r, base[1]+r, ... (mod n): every tool's number
// advanced by r, so over any n consecutive rounds (starting at a multiple
// of n) each tool takes each position exactly once. The base order is 0,
// 1, n-1, 2, n-2, 3, ..., which for an even n also makes each tool
// directly follow each other tool exactly once in those n rounds. For an
// odd n that takes 2n rounds: every second block of n rounds is run
// mirrored. With two tools this is the alternation 0 1, 1 0, ...; with
// four it is 0 1 3 2, 1 2 0 3, 2 3 1 0, 3 0 2 1.
//
// So no tool is favoured by running first (a warmer cache, an idle
// machine) or by running after a particular tool (whose large output the
// kernel may still be writing back or evicting), given a number of rounds
// that is a multiple of n (of 2n for an odd n): an even count for the
// two-tool rows, a multiple of 4 for the fast rows with both anchors.
func roundOrder(n, r int) []int {
	base := make([]int, n)
	lo, hi := 1, n-1
	for i := 1; i < n; i++ {
		if i%2 == 1 {
			base[i] = lo
			lo++
		} else {
			base[i] = hi
			hi--
		}
	}
	order := make([]int, n)
	for i, b := range base {
		order[i] = (b + r) % n
	}
	if n%2 == 1 && (r/n)%2 == 1 {
		for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
			order[i], order[j] = order[j], order[i]
		}
	}
	return order
}

// balancedRounds returns the fewest rounds over which roundOrder balances
// n tools: n for an even n, 2n for an odd one (1 for a single tool).
func balancedRounds(n int) int {
	if n%2 == 1 && n > 1 {
		return 2 * n
	}
	return max(n, 1)
}
