package parts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/logtext"
)

// StorageOptions tune a [Storage].
type StorageOptions struct {
	// Parallel is how many chunks are fetched at once, which is also how
	// far ahead of a sequential reader the storage reads; 0 means 4.
	Parallel int
	// CacheChunks is how many chunks are kept in memory; 0 means
	// 2*Parallel+2. It is raised to Parallel+2 if lower.
	CacheChunks int
	// Name is what Name returns, without the query of a URL (the
	// signature of a presigned one); "" means "manifest".
	Name string
	// Progress, when set, is called as chunks are fetched with the bytes
	// fetched so far and the file's size. Calls are serialised.
	Progress func(done, total int64)
}

// MaxChunk is the largest part a [Storage] fetches, caches and verifies
// whole. Larger parts (single-part manifests of whole images) are read in
// ranges of MaxChunk bytes, hashed in order as they pass, and their
// checksums checked by [Storage.Verify].
const MaxChunk = 32 << 20

// chunkLimit is MaxChunk; tests lower it.
var chunkLimit int64 = MaxChunk

// A Storage is a [File] read from its parts: a
// [disk.Storage] with random access, safe for concurrent use. Parts are
// fetched whole (and their length and checksum verified before any byte is
// used), kept in a small cache, and fetched ahead of a sequential reader
// with a bounded number of requests in flight. Parts larger than MaxChunk
// are fetched in chunks; their SHA-256s and the whole file's are computed
// as the chunks pass, for [Storage.Verify]. A part whose checksum is
// that of zeros is not fetched at all: its bytes are known. It is a
// [disk.SparseStorage]: its zero blocks are reported as holes.
type Storage struct {
	file  File
	store Store
	opts  StorageOptions
	size  int64

	chunks []chunkRef // the file's chunks in order

	mu    sync.Mutex
	cache map[int]*chunk
	clock int64
	sem   chan struct{}
	last  int // index of the chunk last read, for read-ahead
	// fetched records the chunks ever fetched: read-ahead skips them.
	fetched []bool
	free    [][]byte // buffers of evicted chunks, for reuse

	oh *orderedHash // the sums checked at the end, nil without any

	progressMu   sync.Mutex
	fetchedBytes int64 // for Progress, under progressMu

	// The storage keeps no context: each fetch runs under one of its
	// own, which halt cancels when Close is called or the context given
	// to OpenStorage ends (unwatch ends that watch). done is closed then,
	// and stopErr says why; closed is set by Close. inflight holds the
	// running fetches' cancel functions and fetches counts them, for
	// Close to wait on. All but done and fetches are under mu.
	done     chan struct{}
	stopErr  error
	closed   bool
	inflight map[*chunk]context.CancelCauseFunc
	fetches  sync.WaitGroup
	unwatch  func() bool
}

// ErrClosed is the error of a read from a [Storage] after its Close.
var ErrClosed = errors.New("manifest: storage closed")

type chunkRef struct {
	part      int
	off, n    int64 // within the part
	fileStart int64
}

type chunk struct {
	done chan struct{}
	data []byte
	zero bool      // a part known to hold zeros: no data
	runs []dataRun // the data runs of data, relative to the chunk
	err  error
	used int64
	// refs counts the readers using data; evicted is set when the chunk
	// leaves the cache. Its buffer is reused once both hold. Guarded by
	// Storage.mu.
	refs    int
	evicted bool
	// read is set once a reader has used the chunk. Chunks fetched
	// ahead and not yet read are evicted only when no read chunk can be,
	// so that a reader reaching them late need not fetch them again.
	read bool
}

// A dataRun is a range of a chunk that is not all zeros, in zeroBlock
// units.
type dataRun struct{ start, end int64 }

// zeroBlock is the granularity at which a Storage finds zeros in a part:
// qemu-img's default (-S 4k).
const zeroBlock = 4096

// dataRuns returns the runs of b that are not whole zero blocks.
func dataRuns(b []byte) []dataRun {
	var runs []dataRun
	for off := 0; off < len(b); off += zeroBlock {
		blk := b[off:min(off+zeroBlock, len(b))]
		if disk.IsZero(blk) {
			continue
		}
		end := int64(off + len(blk))
		if n := len(runs); n > 0 && runs[n-1].end == int64(off) {
			runs[n-1].end = end
		} else {
			runs = append(runs, dataRun{int64(off), end})
		}
	}
	return runs
}

// OpenStorage returns file, read from store. ctx bounds every fetch the
// storage makes; Close stops those in flight too.
func OpenStorage(ctx context.Context, file File, store Store, opts StorageOptions) (*Storage, error) {
	if err := file.Validate(); err != nil {
		return nil, err
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	if opts.CacheChunks <= 0 {
		opts.CacheChunks = 2*opts.Parallel + 2
	}
	opts.CacheChunks = max(opts.CacheChunks, opts.Parallel+2)
	if opts.Name == "" {
		opts.Name = "manifest"
	}
	opts.Name = logtext.RedactURL(opts.Name) // a presigned URL's query is a credential
	s := &Storage{file: file, store: store, opts: opts, size: file.Size(),
		cache: make(map[int]*chunk), sem: make(chan struct{}, opts.Parallel), last: -1,
		done: make(chan struct{}), inflight: make(map[*chunk]context.CancelCauseFunc)}
	s.unwatch = context.AfterFunc(ctx, func() { s.halt(context.Cause(ctx)) })
	s.oh = newOrderedHash(&file, func(p *Part) bool { return p.Length > chunkLimit })
	for i := range file.Parts {
		p := &file.Parts[i]
		if p.Length <= chunkLimit {
			s.chunks = append(s.chunks, chunkRef{part: i, n: p.Length, fileStart: p.Offset})
			continue
		}
		for off := int64(0); off < p.Length; off += chunkLimit {
			s.chunks = append(s.chunks, chunkRef{part: i, off: off, n: min(chunkLimit, p.Length-off), fileStart: p.Offset + off})
		}
	}
	s.fetched = make([]bool, len(s.chunks))
	// Opening an image reads the first chunk (the format's header) and
	// most formats then the last (a VHD's footer, a streamOptimized
	// VMDK's footer, grain directory and tables): fetch both at once, on
	// their own, so that conversion starts as soon as possible. Reading
	// ahead waits for the reader's next access.
	if n := len(s.chunks); n > 0 {
		s.mu.Lock()
		s.lookup(0)
		s.lookup(n - 1)
		s.mu.Unlock()
	}
	return s, nil
}

// Size returns the file's size: the sum of the parts' lengths.
func (s *Storage) Size() int64 { return s.size }

// Name returns the name given in the options.
func (s *Storage) Name() string { return s.opts.Name }

// ReadAt reads len(p) bytes of the file at off, fetching the parts it
// spans.
func (s *Storage) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset %d", s.opts.Name, off)
	}
	if off >= s.size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > s.size-off {
		p = p[:s.size-off]
	}
	n := 0
	ci := s.chunkAt(off)
	for n < len(p) {
		c, err := s.getChunk(ci)
		if err != nil {
			return n, err
		}
		ref := s.chunks[ci]
		var k int
		if at := off + int64(n) - ref.fileStart; c.zero {
			k = int(min(int64(len(p)-n), ref.n-at))
			clear(p[n : n+k])
		} else {
			k = copy(p[n:], c.data[at:])
		}
		s.release(c)
		n += k
		ci++
	}
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// chunkAt returns the index of the chunk holding file byte off.
func (s *Storage) chunkAt(off int64) int {
	return sort.Search(len(s.chunks), func(i int) bool { return s.chunks[i].fileStart+s.chunks[i].n > off }) // first chunk ending after off
}

// NextData returns the first run at or after off that is not all zeros,
// at a granularity of 4 KiB: [start, end), start == Size() when only zeros
// follow. It fetches the parts it looks into, so a converter skips the
// zeros of a raw image read from parts as it does the holes of a sparse
// local file.
func (s *Storage) NextData(off int64) (start, end int64, err error) {
	if off < 0 {
		return 0, 0, fmt.Errorf("%s: negative offset %d", s.opts.Name, off)
	}
	for ci := s.chunkAt(off); ci < len(s.chunks); ci++ {
		c, err := s.getChunk(ci)
		if err != nil {
			return 0, 0, err
		}
		base := s.chunks[ci].fileStart
		runs := c.runs
		s.release(c)
		for _, r := range runs {
			if base+r.end > off {
				return max(base+r.start, off), base + r.end, nil
			}
		}
	}
	return s.size, s.size, nil
}

// getChunk returns chunk i, fetching it if needed, and starts fetching the
// chunks after it when the reader moves forward. The caller must release
// the chunk when done with its data.
func (s *Storage) getChunk(i int) (*chunk, error) {
	s.mu.Lock()
	if s.stopErr != nil {
		s.mu.Unlock()
		return nil, s.stopped()
	}
	c := s.lookup(i)
	c.refs++
	c.read = true
	// Read ahead while the reader moves forward through the file; several
	// workers converting neighbouring segments count as moving forward.
	// Reading ahead fetches only chunks never fetched before: a reader
	// going back for a chunk it needs again (a grain table near the start
	// of a streamOptimized VMDK) must not bring back the chunks after it,
	// which the pass has consumed, evicting those it is still reading.
	if d := i - s.last; s.last >= 0 && d >= -2*s.opts.Parallel && d <= 2*s.opts.Parallel+1 {
		for j := i + 1; j < len(s.chunks) && j <= i+s.opts.Parallel; j++ {
			if !s.fetched[j] {
				s.lookup(j)
			}
		}
	}
	s.last = i
	s.mu.Unlock()
	select {
	case <-c.done:
	case <-s.done:
		s.release(c)
		return nil, s.stopped()
	}
	if c.err != nil {
		s.mu.Lock()
		if s.cache[i] == c { // let a later read try again
			delete(s.cache, i)
		}
		c.refs--
		s.mu.Unlock()
		return nil, c.err
	}
	return c, nil
}

// release ends a reader's use of c's data.
func (s *Storage) release(c *chunk) {
	s.mu.Lock()
	c.refs--
	s.recycle(c)
	s.mu.Unlock()
}

// recycle keeps the buffer of an evicted chunk no reader uses for the next
// fetch. s.mu is held.
func (s *Storage) recycle(c *chunk) {
	if c.evicted && c.refs == 0 && c.data != nil {
		if len(s.free) < s.opts.Parallel {
			s.free = append(s.free, c.data)
		}
		c.data = nil
	}
}

// lookup returns chunk i's cache entry, starting its fetch if absent.
// s.mu is held. A storage that has stopped fetching returns a chunk
// failed with the reason, and caches nothing.
func (s *Storage) lookup(i int) *chunk {
	s.clock++
	if c, ok := s.cache[i]; ok {
		c.used = s.clock
		return c
	}
	c := &chunk{done: make(chan struct{}), used: s.clock}
	if s.stopErr != nil {
		c.err = s.stopErr
		close(c.done)
		return c
	}
	s.evict()
	s.cache[i] = c
	s.fetched[i] = true
	ctx, cancel := context.WithCancelCause(context.Background())
	s.inflight[c] = cancel
	s.fetches.Add(1)
	go s.fetch(ctx, i, c)
	return c
}

// halt stops the storage's fetching for cause: the fetches in flight are
// cancelled and no other starts.
func (s *Storage) halt(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopErr != nil {
		return
	}
	s.stopErr = cause
	close(s.done)
	for _, cancel := range s.inflight {
		cancel(cause)
	}
}

// stopped is the error of a read once the storage has stopped fetching.
func (s *Storage) stopped() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%s: %w", s.opts.Name, ErrClosed)
	}
	return fmt.Errorf("%s: %w", s.opts.Name, s.stopErr)
}

// evict drops finished chunks while the cache is full: the least recently
// used of those that have been read, else the oldest fetched ahead and not
// yet read. s.mu is held.
func (s *Storage) evict() {
	for len(s.cache) >= s.opts.CacheChunks {
		victim := -1
		var vc *chunk
		for i, c := range s.cache {
			select {
			case <-c.done:
			default:
				continue // in flight
			}
			if vc == nil || c.read && !vc.read || c.read == vc.read && c.used < vc.used {
				victim, vc = i, c
			}
		}
		if victim < 0 {
			return // everything in flight; grow past the limit briefly
		}
		delete(s.cache, victim)
		vc.evicted = true
		s.recycle(vc)
	}
}

// fetch fetches chunk i under ctx, then hashes what it can of the file in
// order.
func (s *Storage) fetch(ctx context.Context, i int, c *chunk) {
	defer s.fetches.Done()
	s.fetchChunk(ctx, i, c)
	close(c.done)
	if c.err == nil {
		s.hashAhead()
	}
	s.mu.Lock()
	cancel := s.inflight[c]
	delete(s.inflight, c)
	s.mu.Unlock()
	cancel(nil)
}

func (s *Storage) fetchChunk(ctx context.Context, i int, c *chunk) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		c.err = context.Cause(ctx)
		return
	}
	defer func() { <-s.sem }()
	ref := s.chunks[i]
	p := &s.file.Parts[ref.part]
	switch {
	case ref.off == 0 && ref.n == p.Length && knownZero(p):
		c.zero = true // no data, no runs
	case ref.off == 0 && ref.n == p.Length:
		c.data, c.err = fetchPart(ctx, s.store, p, s.buffer(p.Length))
	default:
		c.data, c.err = s.fetchRange(ctx, p, ref.off, ref.n)
	}
	if c.err == nil && !c.zero {
		c.runs = dataRuns(c.data)
	}
	if c.err == nil && s.opts.Progress != nil {
		s.progressMu.Lock()
		s.fetchedBytes += ref.n
		s.opts.Progress(s.fetchedBytes, s.size)
		s.progressMu.Unlock()
	}
}

// buffer returns a buffer of n bytes, reusing an evicted chunk's.
func (s *Storage) buffer(n int64) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.free) - 1; i >= 0; i-- {
		if b := s.free[i]; int64(cap(b)) >= n {
			s.free = append(s.free[:i], s.free[i+1:]...)
			return b[:n]
		}
	}
	return make([]byte, n)
}

func (s *Storage) fetchRange(ctx context.Context, p *Part, off, n int64) ([]byte, error) {
	wrap := func(err error) error { return &PartError{Part: *p, Where: s.store.Where(p), Err: err} }
	rc, err := s.store.OpenPart(ctx, p, off, n)
	if err != nil {
		return nil, wrap(err)
	}
	defer rc.Close()
	buf := make([]byte, n)
	if k, err := io.ReadFull(rc, buf); err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return nil, wrap(errorf(disk.ErrCorrupt, "truncated: %d of %d bytes at part byte %d", k, n, off))
		}
		return nil, wrap(err)
	}
	return buf, nil
}

// Close stops the fetches in flight, waits for them to return and drops
// the cache. Reads after Close fail with [ErrClosed].
func (s *Storage) Close() error {
	s.unwatch()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.halt(ErrClosed)
	s.fetches.Wait()
	s.mu.Lock()
	s.cache = make(map[int]*chunk)
	s.free = nil
	s.mu.Unlock()
	return nil
}
