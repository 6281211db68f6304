package parts

import "sync"

// progressCounter turns the byte counts of pieces done into calls of f
// with the running total and total, serialised: the one progress shape,
// (done, total int64), of convert, manifest and bundle. nil for a nil f.
func progressCounter(f func(done, total int64), total int64) func(n int64) {
	if f == nil {
		return nil
	}
	var mu sync.Mutex
	var done int64
	return func(n int64) {
		mu.Lock()
		defer mu.Unlock()
		done += n
		f(done, total)
	}
}
