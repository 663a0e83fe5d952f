package queue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// A segment of format 2 starts with a header of two copies ("slots") of
// the segment's generations; format 1 segments (older Ferry) have none and
// their records start at offset 0. See docs/queue-format.md, "Segment
// header and generations".
const (
	segMagic      = "FERRYSEG"
	segVersion    = 2
	slotSize      = 32
	segHeaderSize = 2 * slotSize // where the records of a format 2 segment start
	// genSpan bounds the generations one segment holds: a record keeps
	// the low 24 bits of its generation.
	genSpan = 1 << 24
)

// Segment kinds in a header slot.
const (
	// kindFresh is a segment created zero-filled: after its records
	// every octet is zero, or what a torn write left.
	kindFresh byte = 1
	// kindFree is a file that holds no records, waiting to be used
	// again (the prepared spare, or a finished segment kept for reuse).
	kindFree byte = 2
	// kindReused is a segment made from a finished one: after its
	// records come the records of earlier generations.
	kindReused byte = 3
)

// segHeader is the content of one header slot.
type segHeader struct {
	kind byte
	// base is the generation of the segment's first records; no record
	// in it has a lower one.
	base uint64
	// gen is the generation of the records written since the last start
	// (the highest in the segment); for a free file, no record in the
	// file has a higher one.
	gen uint64
}

// encodeSlot returns one header slot.
func encodeSlot(h segHeader) []byte {
	b := make([]byte, 0, slotSize)
	b = append(b, segMagic...)
	b = append(b, segVersion, h.kind, 0, 0)
	b = binary.LittleEndian.AppendUint64(b, h.base)
	b = binary.LittleEndian.AppendUint64(b, h.gen)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli()))
}

// decodeSlot checks and decodes one header slot.
func decodeSlot(b []byte) (segHeader, bool) {
	if len(b) < slotSize || string(b[:8]) != segMagic || b[8] != segVersion || b[10] != 0 || b[11] != 0 {
		return segHeader{}, false
	}
	if crc32.Checksum(b[:28], castagnoli()) != binary.LittleEndian.Uint32(b[28:32]) {
		return segHeader{}, false
	}
	h := segHeader{kind: b[9], base: binary.LittleEndian.Uint64(b[12:20]), gen: binary.LittleEndian.Uint64(b[20:28])}
	if h.kind < kindFresh || h.kind > kindReused || h.base == 0 && h.kind != kindFree || h.gen < h.base || h.gen-h.base >= genSpan {
		return segHeader{}, false
	}
	return h, true
}

// errBadHeader reports a format 2 segment neither of whose header slots
// is intact.
var errBadHeader = errors.New("queue: segment header damaged")

// readSegHeader reads the header of a segment file. A file whose first
// octet is not the magic's, or that holds the magic in neither slot, is of
// format 1 (ok false, no error). Of two intact slots the one with the
// higher generation counts; slot says which. With the magic but no intact
// slot it returns errBadHeader.
func readSegHeader(f segFile, size int64) (h segHeader, slot int, ok bool, err error) {
	if size < 1 {
		return segHeader{}, 0, false, nil
	}
	b := make([]byte, min(size, segHeaderSize))
	if _, err := f.ReadAt(b, 0); err != nil && int64(len(b)) == segHeaderSize {
		return segHeader{}, 0, false, fmt.Errorf("queue: read segment header: %w", err)
	}
	if b[0] != segMagic[0] {
		return segHeader{}, 0, false, nil
	}
	h0, ok0 := decodeSlot(b)
	var h1 segHeader
	ok1 := false
	if len(b) >= segHeaderSize {
		h1, ok1 = decodeSlot(b[slotSize:])
	}
	switch {
	case ok0 && (!ok1 || h0.gen >= h1.gen):
		return h0, 0, true, nil
	case ok1:
		return h1, 1, true, nil
	}
	if string(b[:min(len(b), 8)]) != segMagic && (len(b) < segHeaderSize || string(b[slotSize:slotSize+8]) != segMagic) {
		// No magic left either: a format 1 segment whose first octet
		// is damaged, read (and resynchronised) as one.
		return segHeader{}, 0, false, nil
	}
	return segHeader{}, 0, true, errBadHeader
}

// writeSegHeader writes h into both slots and syncs the file.
func writeSegHeader(f segFile, h segHeader) error {
	s := encodeSlot(h)
	if _, err := f.WriteAt(bytes.Repeat(s, 2), 0); err != nil {
		return fmt.Errorf("write segment header: %w", err)
	}
	if err := f.Datasync(); err != nil {
		return fmt.Errorf("write segment header: %w", err)
	}
	return nil
}

// writeSlot writes h into one slot (the other keeps the previous header,
// so that a torn write leaves one intact) and syncs the file.
func writeSlot(f segFile, slot int, h segHeader) error {
	if _, err := f.WriteAt(encodeSlot(h), int64(slot*slotSize)); err != nil {
		return fmt.Errorf("write segment header: %w", err)
	}
	if err := f.Datasync(); err != nil {
		return fmt.Errorf("write segment header: %w", err)
	}
	return nil
}

// recordGen returns the generation of a record with header h in segment s:
// the one in [s.base, s.base+genSpan) whose low 24 bits the header holds;
// 0 in a format 1 segment.
func (s *segment) recordGen(h []byte) uint64 {
	if s.base == 0 {
		return 0
	}
	low := uint64(h[1]) | uint64(h[2])<<8 | uint64(h[3])<<16
	return s.base + (low-s.base)%genSpan
}

// start returns where the records of s start.
func (s *segment) start() int64 {
	if s.base == 0 {
		return 0
	}
	return segHeaderSize
}

// empty reports whether s holds no records.
func (s *segment) empty() bool { return s.end <= s.start() }

// crcSeed returns the CRC32C that a record of generation gen starts from:
// the CRC of the generation's eight octets, so that a record of another
// generation never checks; 0 (none) for format 1.
func crcSeed(gen uint64) uint32 {
	if gen == 0 {
		return 0
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], gen)
	return crc32.Update(0, castagnoli(), b[:])
}
