package vhdx

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/diskport/diskport/disk"
)

// zeroStorage is n bytes of zeros, the ground a fuzz target's overlay of
// writes stands on: a megabyte-sized file costs nothing per input.
type zeroStorage struct{ n int64 }

func (z zeroStorage) Name() string { return "zeros" }
func (z zeroStorage) Size() int64  { return z.n }
func (z zeroStorage) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= z.n {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), z.n-off))
	clear(p[:n])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// fuzzLogEntries decodes FuzzLog's input into log entries placed in a
// ring of logSectors sectors: per entry [sector, sequence step, tail
// sector, flags, writes], flags' low two bits the number of writes (each
// [kind and offset, length]), bit 2 a wrong log GUID, bit 3 a broken
// checksum, bits 4-7 the FlushedFileOffset in MiB (0: the file's size).
type fuzzEntry struct {
	sector     int
	e          specEntry
	wrongGUID  bool
	badSum     bool
	flushedMiB uint64
}

func fuzzLogEntries(in []byte, logSectors int) []fuzzEntry {
	var out []fuzzEntry
	seq := uint64(1)
	for len(in) >= 4 && len(out) < 16 {
		fe := fuzzEntry{sector: int(in[0]) % logSectors}
		seq += uint64(in[1]) - 1 // 0 steps back, 1 repeats, 2 is the next
		fe.e.seq = seq
		fe.e.tail = uint32(int(in[2])%logSectors) * logSector
		flags := in[3]
		fe.wrongGUID, fe.badSum, fe.flushedMiB = flags&4 != 0, flags&8 != 0, uint64(flags>>4)
		in = in[4:]
		for range int(flags & 3) {
			if len(in) < 2 {
				break
			}
			// Offsets in 4 KiB sectors from 1 MiB on (odd kinds from 0,
			// into the headers, which replay must refuse).
			off := int64(in[0]>>1)*logSector + mib
			if in[0]&1 != 0 {
				off = int64(in[0]>>1) * logSector * 16
			}
			w := logWrite{off: off, n: logSector}
			if in[1]&0x80 != 0 {
				w.n = int64(in[1]&0x7f) * logSector
			} else {
				w.data = pattern(uint64(in[1]), logSector)
			}
			fe.e.writes = append(fe.e.writes, w)
			in = in[2:]
		}
		out = append(out, fe)
	}
	return out
}

// buildLog writes entries into ring, each at its sector, wrapping at the
// end, later entries over earlier ones, and returns the offsets of the
// sectors it wrote (so that the caller clears those, not the megabyte).
func buildLog(ring []byte, entries []fuzzEntry, fileSize uint64) []int {
	var written []int
	n := len(ring)
	for _, fe := range entries {
		guid := testLogGUID
		if fe.wrongGUID {
			guid[0]++
		}
		e := fe.e
		if fe.flushedMiB != 0 {
			e.flushed = fe.flushedMiB * mib
		}
		tmp := make([]byte, (2+len(e.writes))*logSector)
		writeLog(tmp, guid, []specEntry{e}, fileSize)
		length := int(le.Uint32(tmp[8:]))
		if fe.badSum {
			tmp[4] ^= 1
		}
		for k := 0; k < length; k += logSector {
			at := (fe.sector*logSector + k) % n
			copy(ring[at:at+logSector], tmp[k:k+logSector])
			written = append(written, at)
		}
	}
	return written
}

// FuzzLog builds logs of entries the input describes (anywhere in the
// ring, wrapping, overlapping, with sequence numbers, tails, flushed
// offsets, data and zero descriptors chosen by the fuzzer; checksums
// right unless told otherwise) and finds and replays their active
// sequence: only typed errors; the active sequence is a run of
// consecutive entries whose head names its tail, and after replay the
// file reads the head entry's last write.
func FuzzLog(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 2, 7})                                           // one entry, one data write
	f.Add([]byte{0, 1, 0, 2, 2, 7, 4, 0x81, 2, 2, 0, 1, 6, 9})                // a sequence of two
	f.Add([]byte{254, 1, 254, 2, 2, 7, 4, 8})                                 // wrapping the ring
	f.Add([]byte{0, 1, 0, 1, 1, 7})                                           // a write into the headers
	f.Add([]byte{0, 1, 0, 0x31, 2, 7})                                        // flushed past the file's end
	f.Add([]byte{0, 1, 0, 9, 2, 7, 4, 1, 0, 1, 4, 5, 2, 3})                   // a bad checksum, then a good entry
	f.Add([]byte{10, 1, 10, 1, 2, 7, 12, 2, 10, 1, 6, 8, 12, 0, 10, 1, 8, 9}) // sequence numbers 2, 4, 3
	const fileSize = 3 * mib
	// The ring is reused, cleared where the last input wrote: the fuzz
	// function runs one input at a time.
	ring := make([]byte, bLogLen)
	var written []int
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 256 {
			return
		}
		entries := fuzzLogEntries(in, bLogLen/logSector)
		for _, at := range written {
			clear(ring[at : at+logSector])
		}
		written = buildLog(ring, entries, fileSize)
		r := &logReader{log: ring, guid: testLogGUID, budget: 8*int64(len(ring)) + 16<<20, memo: map[uint32]*logEntry{}, errs: map[uint32]bool{}}
		active, err := r.findActive()
		if err != nil {
			var de *disk.Error
			if !errors.As(err, &de) {
				t.Fatalf("findActive: untyped error %v", err)
			}
		}
		var total uint64
		for i, e := range active {
			if i > 0 && (e.sequence != active[i-1].sequence+1 || e.pos != (active[i-1].pos+active[i-1].length)%bLogLen) {
				t.Fatalf("active entry %d (sequence %d at %d) does not follow %d at %d", i, e.sequence, e.pos, active[i-1].sequence, active[i-1].pos)
			}
			total += uint64(e.length)
		}
		if len(active) > 0 && (active[len(active)-1].tail != active[0].pos || total > bLogLen) {
			t.Fatalf("active sequence of %d entries (%d bytes) from %d, its head's tail %d", len(active), total, active[0].pos, active[len(active)-1].tail)
		}

		if len(active) == 0 {
			// replayLog would scan the same ring and find nothing, after
			// copying the megabyte of log it reads: not worth the time
			// (TestLogHostile replays logs without an active sequence).
			return
		}
		s := newOverlay(zeroStorage{fileSize}, fileSize, []logWrite{{off: bLogAt, n: bLogLen, data: ring}})
		h := &header{logGUID: testLogGUID, logOffset: bLogAt, logLength: bLogLen}
		out, rep, err := replayLog(s, h)
		if err != nil {
			var de *disk.Error
			if !errors.As(err, &de) {
				t.Fatalf("replayLog: untyped error %v", err)
			}
			return
		}
		head := active[len(active)-1]
		if !rep.replayed || rep.head != head.sequence || out.Size() != rep.newSize || rep.newSize < fileSize {
			t.Fatalf("replay %+v (file %d bytes), active head %d", rep, out.Size(), head.sequence)
		}
		if len(head.writes) > 0 {
			w := head.writes[len(head.writes)-1]
			got := make([]byte, min(w.n, 64<<10))
			if _, err := out.ReadAt(got, w.off); err != nil && err != io.EOF {
				t.Fatalf("reading the replayed write at %d: %v", w.off, err)
			}
			want := make([]byte, len(got))
			if w.data != nil {
				copy(want, w.data)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("the replayed file does not read the head's last write at %d", w.off)
			}
		}
	})
}
