//go:build linux

package main

import (
	"fmt"
	"testing"
)

// Over a balanced number of rounds (an even multiple of the tool count)
// every tool runs in every position equally often and directly after
// every other tool equally often, and every round runs each tool once.
func TestRoundOrderBalanced(t *testing.T) {
	for n := 1; n <= 7; n++ {
		for _, runs := range []int{balancedRounds(n), 2 * balancedRounds(n), 4 * n} {
			pos := make([][]int, n) // pos[tool][position]
			for i := range pos {
				pos[i] = make([]int, n)
			}
			after := map[[2]int]int{}
			for r := range runs {
				order := roundOrder(n, r)
				seen := make([]bool, n)
				for p, k := range order {
					if k < 0 || k >= n || seen[k] {
						t.Fatalf("n=%d round %d: order %v is not a permutation", n, r, order)
					}
					seen[k] = true
					pos[k][p]++
					if p > 0 {
						after[[2]int{order[p-1], k}]++
					}
				}
			}
			for k := range n {
				for p := range n {
					if pos[k][p] != runs/n {
						t.Errorf("n=%d, %d rounds: tool %d in position %d %d times, want %d", n, runs, k, p, pos[k][p], runs/n)
					}
				}
			}
			if n < 2 {
				continue
			}
			want := runs / n
			for a := range n {
				for b := range n {
					if a != b && after[[2]int{a, b}] != want {
						t.Errorf("n=%d, %d rounds: tool %d ran right after tool %d %d times, want %d", n, runs, b, a, after[[2]int{a, b}], want)
					}
				}
			}
		}
	}
}

// Two tools alternate, as before the rotation; four follow the square.
func TestRoundOrderSmall(t *testing.T) {
	for _, c := range []struct {
		n, runs int
		want    string
	}{
		{2, 4, "[0 1][1 0][0 1][1 0]"},
		{4, 4, "[0 1 3 2][1 2 0 3][2 3 1 0][3 0 2 1]"},
		{3, 6, "[0 1 2][1 2 0][2 0 1][2 1 0][0 2 1][1 0 2]"},
	} {
		got := ""
		for r := range c.runs {
			got += fmt.Sprint(roundOrder(c.n, r))
		}
		if got != c.want {
			t.Errorf("n=%d: %s, want %s", c.n, got, c.want)
		}
	}
}
