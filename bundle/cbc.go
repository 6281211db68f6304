package bundle

import (
	"crypto/aes"
	"crypto/cipher"
	"io"

	"github.com/diskport/diskport/disk"
)

// cbcWriter encrypts what it is written with AES-128-CBC and writes the
// ciphertext to w; Close adds PKCS#7 padding as `openssl enc` does.
type cbcWriter struct {
	w    io.Writer
	mode cipher.BlockMode
	buf  []byte // pending ciphertext / plaintext, a multiple of the block size when flushed
	n    int    // plaintext bytes held in buf
}

const cbcChunk = 256 << 10

func newCBCWriter(w io.Writer, key, iv []byte) (*cbcWriter, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return &cbcWriter{w: w, mode: cipher.NewCBCEncrypter(b, iv), buf: make([]byte, cbcChunk)}, nil
}

func (c *cbcWriter) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		k := copy(c.buf[c.n:], p)
		c.n += k
		p = p[k:]
		if c.n == len(c.buf) {
			c.mode.CryptBlocks(c.buf, c.buf)
			if _, err := c.w.Write(c.buf); err != nil {
				return total - len(p), err
			}
			c.n = 0
		}
	}
	return total, nil
}

// Close pads the last block (1 to 16 bytes of value n) and flushes.
func (c *cbcWriter) Close() error {
	pad := aes.BlockSize - c.n%aes.BlockSize
	for i := 0; i < pad; i++ {
		c.buf[c.n+i] = byte(pad)
	}
	c.n += pad
	c.mode.CryptBlocks(c.buf[:c.n], c.buf[:c.n])
	_, err := c.w.Write(c.buf[:c.n])
	c.n = 0
	return err
}

// cbcReader decrypts AES-128-CBC ciphertext read from r and strips the
// PKCS#7 padding at the end of the stream.
type cbcReader struct {
	r    io.Reader
	mode cipher.BlockMode
	buf  []byte
	lo   int // decrypted bytes buf[lo:hi] are ready
	hi   int
	raw  int // ciphertext bytes buf[hi:raw] not yet decrypted
	eof  bool
	err  error
}

func newCBCReader(r io.Reader, key, iv []byte) (*cbcReader, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return &cbcReader{r: r, mode: cipher.NewCBCDecrypter(b, iv), buf: make([]byte, cbcChunk+aes.BlockSize)}, nil
}

func (c *cbcReader) Read(p []byte) (int, error) {
	for c.lo == c.hi {
		if c.err != nil {
			return 0, c.err
		}
		c.fill()
	}
	n := copy(p, c.buf[c.lo:c.hi])
	c.lo += n
	return n, nil
}

// fill reads more ciphertext and decrypts all whole blocks but the last,
// which may carry the padding, until the end of the stream.
func (c *cbcReader) fill() {
	// Move the undecrypted tail to the front.
	tail := copy(c.buf, c.buf[c.hi:c.raw])
	c.lo, c.hi, c.raw = 0, 0, tail
	for !c.eof && c.raw < len(c.buf) {
		n, err := c.r.Read(c.buf[c.raw:])
		c.raw += n
		if err == io.EOF {
			c.eof = true
		} else if err != nil {
			c.err = err
			return
		}
		if n == 0 && err == nil {
			break
		}
	}
	whole := c.raw - c.raw%aes.BlockSize
	if !c.eof {
		// Keep the last whole block back: it may be the padded one.
		if whole >= aes.BlockSize {
			whole -= aes.BlockSize
		} else {
			whole = 0
		}
		c.mode.CryptBlocks(c.buf[:whole], c.buf[:whole])
		c.hi = whole
		return
	}
	if c.raw%aes.BlockSize != 0 || c.raw == 0 {
		c.err = disk.Errorf("bundle", disk.ErrCorrupt, "encrypted image is not a whole number of %d-byte AES blocks", aes.BlockSize)
		if c.raw == 0 {
			c.err = disk.Errorf("bundle", disk.ErrCorrupt, "encrypted image ends without its padding block")
		}
		return
	}
	c.mode.CryptBlocks(c.buf[:whole], c.buf[:whole])
	pad := int(c.buf[whole-1])
	if pad < 1 || pad > aes.BlockSize {
		c.err = disk.Errorf("bundle", disk.ErrCorrupt, "bad PKCS#7 padding (last byte %d): wrong key or corrupt image", pad)
		return
	}
	for _, b := range c.buf[whole-pad : whole] {
		if int(b) != pad {
			c.err = disk.Errorf("bundle", disk.ErrCorrupt, "bad PKCS#7 padding: wrong key or corrupt image")
			return
		}
	}
	c.hi = whole - pad
	c.raw = c.hi
	c.err = io.EOF
}
