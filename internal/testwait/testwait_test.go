package testwait

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	start := time.Now()
	if !Until(5*time.Second, func() bool { return n.Add(1) == 5 }) {
		t.Fatal("Until gave up on a condition that holds at the fifth poll")
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("five polls took %v", took)
	}
	if Until(30*time.Millisecond, func() bool { return false }) {
		t.Fatal("Until reported a condition that never holds")
	}
}

// fatalTB records Fatalf instead of stopping the test.
type fatalTB struct {
	testing.TB
	failed bool
}

func (f *fatalTB) Helper()               {}
func (f *fatalTB) Fatalf(string, ...any) { f.failed = true }

func TestForFails(t *testing.T) {
	t.Parallel()
	f := &fatalTB{TB: t}
	For(f, 10*time.Millisecond, "nothing", func() bool { return false })
	if !f.failed {
		t.Fatal("For did not fail the test when the condition never held")
	}
	f = &fatalTB{TB: t}
	For(f, time.Second, "something", func() bool { return true })
	if f.failed {
		t.Fatal("For failed the test on a condition that holds")
	}
}
