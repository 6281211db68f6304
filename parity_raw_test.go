package diskport_test

import (
	"testing"

	"github.com/diskport/diskport"
)

func TestParityRaw(t *testing.T) {
	runParity(t, []parityRow{
		{name: "aligned", image: golden(4<<20, 1, "raw", ""), qemuArgs: []string{"-f", "raw"}},
		{name: "odd-size", image: golden(3<<20+517, 2, "raw", ""), qemuArgs: []string{"-f", "raw"}},
		{name: "tiny", image: golden(1000, 3, "raw", ""), qemuArgs: []string{"-f", "raw"}},
		{name: "declared", image: golden(1<<20, 4, "raw", ""), opts: diskport.Options{Format: "RAW"}, qemuArgs: []string{"-f", "raw"}},
	})
}
