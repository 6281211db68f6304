package bundle

import (
	"encoding/binary"
	"hash/crc32"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/flate"
)

// gzipBlock is the input each parallel compressor takes at a time.
const gzipBlock = 1 << 20

// flateWindow is how much of the previous block primes the next one's
// compressor, so matches reach back across block boundaries as in a
// serial gzip.
const flateWindow = 32 << 10

// pgzipWriter writes one gzip member (RFC 1952) whose deflate stream is
// compressed in blocks by several goroutines, as pigz does: each block is
// compressed with the previous block's last 32 KiB as dictionary and ended
// with a sync flush, so the concatenated blocks form one ordinary deflate
// stream that any gunzip reads.
type pgzipWriter struct {
	w     io.Writer
	level int
	crc   uint32
	size  uint32
	buf   []byte // the block being filled
	dict  []byte // last flateWindow bytes of the previous block

	jobs    chan *gzJob
	pending chan *gzJob // in submission order, drained by the output goroutine
	done    chan struct{}
	mu      sync.Mutex
	err     error // first output error
	closed  bool
	workers sync.WaitGroup
}

type gzJob struct {
	in, dict []byte
	last     bool
	out      syncBuffer
	ready    chan struct{}
}

// syncBuffer is a growable byte slice written by one goroutine at a time.
type syncBuffer struct{ b []byte }

func (s *syncBuffer) Write(p []byte) (int, error) { s.b = append(s.b, p...); return len(p), nil }

var (
	blockPool = sync.Pool{New: func() any { b := make([]byte, 0, gzipBlock); return &b }}
	outPool   = sync.Pool{New: func() any { b := make([]byte, 0, gzipBlock+gzipBlock/16); return &b }}
)

// newPgzipWriter starts workers compressors (GOMAXPROCS when <= 0) at the
// given flate level and writes the gzip header.
func newPgzipWriter(w io.Writer, level, workers int) (*pgzipWriter, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if _, err := flate.NewWriter(io.Discard, level); err != nil {
		return nil, err
	}
	z := &pgzipWriter{
		w: w, level: level,
		jobs:    make(chan *gzJob, workers),
		pending: make(chan *gzJob, workers+1),
		done:    make(chan struct{}),
	}
	// Header: magic, CM=deflate, no flags, MTIME 0, XFL 0, OS 255 (unknown),
	// as Go's compress/gzip writes it.
	if _, err := w.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}); err != nil {
		return nil, err
	}
	z.buf = *blockPool.Get().(*[]byte)
	for range workers {
		z.workers.Add(1)
		go z.compress()
	}
	go z.output()
	return z, nil
}

func (z *pgzipWriter) compress() {
	defer z.workers.Done()
	var fw *flate.Writer
	for j := range z.jobs {
		j.out.b = (*outPool.Get().(*[]byte))[:0]
		if fw == nil {
			fw, _ = flate.NewWriterDict(&j.out, z.level, j.dict) // level checked in newPgzipWriter
		} else {
			fw.ResetDict(&j.out, j.dict)
		}
		fw.Write(j.in) // writes to a syncBuffer cannot fail
		if j.last {
			fw.Close()
		} else {
			fw.Flush()
		}
		b := j.in[:0]
		blockPool.Put(&b)
		j.in = nil
		close(j.ready)
	}
}

func (z *pgzipWriter) output() {
	defer close(z.done)
	for j := range z.pending {
		<-j.ready
		if z.error() == nil {
			if _, err := z.w.Write(j.out.b); err != nil {
				z.setError(err)
			}
		}
		b := j.out.b[:0]
		outPool.Put(&b)
		j.out.b = nil
	}
}

func (z *pgzipWriter) error() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.err
}

func (z *pgzipWriter) setError(err error) {
	z.mu.Lock()
	if z.err == nil {
		z.err = err
	}
	z.mu.Unlock()
}

func (z *pgzipWriter) submit(last bool) {
	j := &gzJob{in: z.buf, dict: z.dict, last: last, ready: make(chan struct{})}
	if !last {
		n := min(len(z.buf), flateWindow)
		z.dict = append([]byte(nil), z.buf[len(z.buf)-n:]...)
		z.buf = *blockPool.Get().(*[]byte)
	}
	z.pending <- j
	z.jobs <- j
}

// Write compresses p.
func (z *pgzipWriter) Write(p []byte) (int, error) {
	if err := z.error(); err != nil {
		return 0, err
	}
	z.crc = crc32.Update(z.crc, crc32.IEEETable, p)
	z.size += uint32(len(p))
	total := len(p)
	for len(p) > 0 {
		k := min(len(p), gzipBlock-len(z.buf))
		z.buf = append(z.buf, p[:k]...)
		p = p[k:]
		if len(z.buf) == gzipBlock {
			z.submit(false)
		}
	}
	return total, nil
}

// Close compresses the last block, waits for every block to be written and
// writes the trailer (CRC-32 and size mod 2^32).
func (z *pgzipWriter) Close() error {
	if z.closed {
		return z.error()
	}
	z.closed = true
	z.submit(true)
	close(z.jobs)
	close(z.pending)
	<-z.done
	z.workers.Wait()
	if err := z.error(); err != nil {
		return err
	}
	var t [8]byte
	binary.LittleEndian.PutUint32(t[:4], z.crc)
	binary.LittleEndian.PutUint32(t[4:], z.size)
	_, err := z.w.Write(t[:])
	return err
}

// abort stops the workers without writing the trailer.
func (z *pgzipWriter) abort() {
	if z.closed {
		return
	}
	z.closed = true
	z.setError(io.ErrClosedPipe)
	close(z.jobs)
	close(z.pending)
	<-z.done
	z.workers.Wait()
}
