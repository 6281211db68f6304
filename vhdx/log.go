package vhdx

import (
	"fmt"

	"github.com/diskport/diskport/disk"
)

// Log layout (MS-VHDX 2.3).
const (
	logSector = 4 << 10
	// MaxLogLength is the largest log this reader replays; a header naming
	// a larger non-empty log is refused with disk.ErrTooLarge. Hyper-V and
	// qemu write 1 MiB logs.
	MaxLogLength   = 256 << 20
	entryHeaderLen = 64
	descriptorLen  = 32
	// maxReplayedSize caps the file size a replayed log may claim.
	maxReplayedSize = 1 << 50
)

// A logEntry is a valid log entry: where it is and what it writes.
type logEntry struct {
	pos      uint32 // offset in the log
	length   uint32
	tail     uint32
	sequence uint64
	flushed  uint64 // FlushedFileOffset
	last     uint64 // LastFileOffset
	writes   []logWrite
}

// A logWrite is one descriptor of a log entry: 4 KiB of data, or zeros.
type logWrite struct {
	off, n int64  // file range
	data   []byte // nil: zeros
}

// A logReplay is what replaying the log's active sequence does to the
// file, summarised for Info.
type logReplay struct {
	entries  int
	first    uint64 // sequence numbers of the tail and head entries
	head     uint64
	data     int   // data sectors written
	zero     int64 // bytes zeroed
	newSize  int64 // the file size after replay
	note     string
	replayed bool
}

// logReader scans a log held in memory.
type logReader struct {
	log    []byte
	guid   GUID
	budget int64 // bytes of checksum work left: bounds a hostile log's cost
	memo   map[uint32]*logEntry
	errs   map[uint32]bool
}

// sectorAt returns the 4 KiB log sector at pos (taken modulo the log's
// length: the log is a ring).
func (r *logReader) sectorAt(pos uint64) []byte {
	p := pos % uint64(len(r.log))
	return r.log[p : p+logSector]
}

// entry returns the valid entry at pos, or nil.
func (r *logReader) entry(pos uint32) (*logEntry, error) {
	if e, ok := r.memo[pos]; ok {
		return e, nil
	}
	if r.errs[pos] {
		return nil, nil
	}
	e, err := r.parse(pos)
	if err != nil {
		return nil, err
	}
	if e == nil {
		r.errs[pos] = true
	} else {
		r.memo[pos] = e
	}
	return e, nil
}

// parse checks the entry at pos: header fields, descriptors, data
// sectors and the checksum over the whole entry. It returns nil for an
// invalid entry, and an error only when the scan's budget is spent.
func (r *logReader) parse(pos uint32) (*logEntry, error) {
	n := uint64(len(r.log))
	h := r.sectorAt(uint64(pos))
	if string(h[:4]) != "loge" || guidAt(h, 32) != r.guid {
		return nil, nil
	}
	e := &logEntry{pos: pos, length: le.Uint32(h[8:]), tail: le.Uint32(h[12:]), sequence: le.Uint64(h[16:]), flushed: le.Uint64(h[48:]), last: le.Uint64(h[56:])}
	count := uint64(le.Uint32(h[24:]))
	if e.length == 0 || e.length%logSector != 0 || uint64(e.length) > n || e.tail%logSector != 0 || uint64(e.tail) >= n || e.sequence == 0 {
		return nil, nil
	}
	descSectors := uint64(1)
	if count > 126 {
		descSectors += (count - 126 + 127) / 128
	}
	if descSectors > uint64(e.length)/logSector {
		return nil, nil
	}
	// Everything below costs at most the entry's length: charge it to the
	// scan's budget, so that a log of long bogus entries at every sector
	// costs a bounded amount of work.
	r.budget -= int64(e.length)
	if r.budget < 0 {
		return nil, disk.Errorf("vhdx", disk.ErrCorrupt, "log: too many entries to check (more work than 8 times the log's %d bytes)", n)
	}
	// The descriptors, and the data sector each data descriptor names.
	dataIdx := descSectors
	for i := range count {
		var d []byte
		if i < 126 {
			d = h[entryHeaderLen+descriptorLen*i:][:descriptorLen]
		} else {
			k := i - 126
			d = r.sectorAt(uint64(pos) + logSector*(1+k/128))[descriptorLen*(k%128):][:descriptorLen]
		}
		if le.Uint64(d[24:]) != e.sequence {
			return nil, nil
		}
		switch string(d[:4]) {
		case "zero":
			zl, off := le.Uint64(d[8:]), le.Uint64(d[16:])
			if zl%logSector != 0 || off%logSector != 0 || off > maxReplayedSize || zl > maxReplayedSize-off {
				return nil, nil
			}
			if zl > 0 {
				e.writes = append(e.writes, logWrite{off: int64(off), n: int64(zl)})
			}
		case "desc":
			off := le.Uint64(d[16:])
			if off%logSector != 0 || off > maxReplayedSize-logSector || dataIdx >= uint64(e.length)/logSector {
				return nil, nil
			}
			ds := r.sectorAt(uint64(pos) + logSector*dataIdx)
			dataIdx++
			if string(ds[:4]) != "data" || uint64(le.Uint32(ds[4:]))<<32|uint64(le.Uint32(ds[logSector-4:])) != e.sequence {
				return nil, nil
			}
			data := make([]byte, logSector)
			copy(data, d[8:16])               // leading bytes
			copy(data[8:], ds[8:logSector-4]) // bytes 8..4091
			copy(data[logSector-4:], d[4:8])  // trailing bytes
			e.writes = append(e.writes, logWrite{off: int64(off), n: logSector, data: data})
		default:
			return nil, nil
		}
	}
	// The checksum covers the entry's sectors, which may wrap the ring.
	buf := make([]byte, 0, e.length)
	for k := uint64(0); k < uint64(e.length); k += logSector {
		buf = append(buf, r.sectorAt(uint64(pos)+k)...)
	}
	if le.Uint32(buf[4:]) != checksum(buf, 4) {
		return nil, nil
	}
	return e, nil
}

// findActive returns the active sequence of the log (MS-VHDX 2.3.3): the
// valid, complete sequence with the highest head sequence number, from
// its tail entry to its head; nil when the log holds none.
func (r *logReader) findActive() ([]*logEntry, error) {
	n := uint32(len(r.log))
	var best []*logEntry
	var tail, oldTail uint32
	for range n/logSector + 1 {
		var cur []*logEntry
		var total uint64
		pos := tail
		for total < uint64(n) {
			e, err := r.entry(pos)
			if err != nil {
				return nil, err
			}
			if e == nil || (len(cur) > 0 && e.sequence != cur[len(cur)-1].sequence+1) {
				break
			}
			cur = append(cur, e)
			total += uint64(e.length)
			pos = uint32((uint64(pos) + uint64(e.length)) % uint64(n))
		}
		valid := false
		if len(cur) > 0 {
			head := cur[len(cur)-1]
			for i, e := range cur {
				if e.pos == head.tail {
					valid = true
					if best == nil || head.sequence > best[len(best)-1].sequence {
						best = cur[i:]
					}
					break
				}
			}
		}
		if valid {
			tail = pos
		} else {
			tail += logSector
			if tail >= n {
				tail = 0
			}
		}
		if tail <= oldTail {
			break
		}
		oldTail = tail
	}
	return best, nil
}

// replayLog finds the active sequence of the log h names and returns the
// file as it reads after replaying it, without writing s. With no log (a
// zero log GUID) or no valid sequence it returns s itself.
func replayLog(s disk.Storage, h *header) (disk.Storage, *logReplay, error) {
	rep := &logReplay{newSize: s.Size()}
	if h.logGUID.IsZero() || h.logLength == 0 {
		rep.note = "no log to replay (log GUID or length zero)"
		return s, rep, nil
	}
	if h.logLength%mib != 0 || h.logOffset%mib != 0 || h.logOffset < headerSection {
		return nil, nil, disk.Errorf("vhdx", disk.ErrCorrupt, "log at byte %d (%d bytes) is not 1 MiB-aligned past the header section", h.logOffset, h.logLength)
	}
	if h.logLength > MaxLogLength {
		return nil, nil, disk.Errorf("vhdx", disk.ErrTooLarge, "log of %d bytes exceeds the %d-byte limit", h.logLength, MaxLogLength)
	}
	if h.logOffset > uint64(s.Size()) || uint64(h.logLength) > uint64(s.Size())-h.logOffset {
		return nil, nil, disk.Errorf("vhdx", disk.ErrCorrupt, "log at byte %d (%d bytes) past end of file (size %d)", h.logOffset, h.logLength, s.Size())
	}
	buf := make([]byte, h.logLength)
	if err := disk.ReadFull(s, "vhdx", "log", buf, int64(h.logOffset)); err != nil {
		return nil, nil, err
	}
	r := &logReader{log: buf, guid: h.logGUID, budget: 8*int64(len(buf)) + 16<<20, memo: map[uint32]*logEntry{}, errs: map[uint32]bool{}}
	active, err := r.findActive()
	if err != nil {
		return nil, nil, err
	}
	if len(active) == 0 {
		rep.note = "log holds no valid sequence: nothing replayed"
		return s, rep, nil
	}
	head := active[len(active)-1]
	if head.flushed > uint64(s.Size()) {
		return nil, nil, disk.Errorf("vhdx", disk.ErrCorrupt, "log entry %d says the file was at least %d bytes, it has %d (truncated)", head.sequence, head.flushed, s.Size())
	}
	size := max(s.Size(), int64(min(head.last, maxReplayedSize)))
	var writes []logWrite
	logStart, logEnd := int64(h.logOffset), int64(h.logOffset)+int64(h.logLength)
	for _, e := range active {
		for _, w := range e.writes {
			if w.off < regionTable1At {
				return nil, nil, disk.Errorf("vhdx", disk.ErrCorrupt, "log entry %d writes %d bytes at byte %d, inside the file identifier and headers", e.sequence, w.n, w.off)
			}
			if w.off < logEnd && logStart < w.off+w.n {
				return nil, nil, disk.Errorf("vhdx", disk.ErrCorrupt, "log entry %d writes %d bytes at byte %d, inside the log at byte %d", e.sequence, w.n, w.off, logStart)
			}
			size = max(size, w.off+w.n)
			if w.data != nil {
				rep.data++
			} else {
				rep.zero += w.n
			}
			writes = append(writes, w)
		}
	}
	rep.entries, rep.first, rep.head, rep.newSize, rep.replayed = len(active), active[0].sequence, head.sequence, size, true
	rep.note = fmt.Sprintf("replayed in memory: %d %s (sequence %d to %d), %d data %s, %d bytes zeroed; the file was not modified", rep.entries, plural(rep.entries, "entry", "entries"), rep.first, rep.head, rep.data, plural(rep.data, "sector", "sectors"), rep.zero)
	return newOverlay(s, size, writes), rep, nil
}

// plural returns one when n is 1, else many.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
