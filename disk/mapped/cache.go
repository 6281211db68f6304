package mapped

import "sync"

// A Cache is a small least-recently-used table of at most n values, safe
// for concurrent use. Readers keep decoded units (inflated grains) and
// parsed metadata tables (grain tables, BAT pages) in one. Lookups scan the
// table under a mutex, so n should stay small (tens of entries).
//
// Cached values are shared: a caller must not modify a value after Put or
// one returned by Get.
type Cache[K comparable, V any] struct {
	mu   sync.Mutex
	ents []cacheEntry[K, V]
	tick uint64
}

type cacheEntry[K comparable, V any] struct {
	key  K
	val  V
	used uint64 // 0: empty
}

// NewCache returns a cache holding at most n values (at least 1).
func NewCache[K comparable, V any](n int) *Cache[K, V] {
	return &Cache[K, V]{ents: make([]cacheEntry[K, V], max(n, 1))}
}

// Get returns the value cached under k and marks it recently used.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tick++
	for i := range c.ents {
		if e := &c.ents[i]; e.used != 0 && e.key == k {
			e.used = c.tick
			return e.val, true
		}
	}
	var zero V
	return zero, false
}

// Put caches v under k, replacing the value cached under k or else the
// least recently used one.
func (c *Cache[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tick++
	victim := &c.ents[0]
	for i := range c.ents {
		e := &c.ents[i]
		if e.used != 0 && e.key == k {
			victim = e
			break
		}
		if e.used < victim.used {
			victim = e
		}
	}
	*victim = cacheEntry[K, V]{key: k, val: v, used: c.tick}
}

// Load returns the value cached under k, or calls load, caches its value
// and returns it. Concurrent misses may each call load; the last value
// loaded stays cached. An error is returned and nothing is cached.
func (c *Cache[K, V]) Load(k K, load func() (V, error)) (V, error) {
	if v, ok := c.Get(k); ok {
		return v, nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	c.Put(k, v)
	return v, nil
}
