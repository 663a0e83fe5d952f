package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// recType is the type octet of a log record (docs/queue-format.md).
type recType uint8

// Record types. The zero type never starts a record: preallocated space is
// zero, and recovery treats zero octets followed only by zeros as the end
// of the records in a segment.
const (
	recMessage recType = 1 // envelope and body of one message
	recState   recType = 2 // one recipient's new state after an attempt
	recHold    recType = 3 // the administrator held the message
	recUnhold  recType = 4 // the administrator released a held message
	recRetry   recType = 5 // every pending recipient is due now
	recDone    recType = 6 // the message is finished (or deleted)
	// recReported: a report named by a tag (e.g. "delay:4h0m0s") was
	// made about the message (Event.PutReported).
	recReported recType = 7
	recMax              = recReported
)

const (
	headerSize = 12
	// maxPayload bounds one record's payload; a header announcing more is
	// corrupt.
	maxPayload = 1 << 30
	// maxIDLen bounds a queue ID in a record.
	maxIDLen = 64
)

// Done reasons in a done record.
const (
	doneFinished uint8 = 0
	doneDeleted  uint8 = 1
)

// castagnoli returns the CRC32C table (the polynomial of RFC 3720 §B.4);
// the standard library builds it once.
func castagnoli() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

// errCorrupt reports a record that fails its checks.
var errCorrupt = errors.New("queue: corrupt record")

// record is one decoded record: its type, the message ID it concerns and the
// payload after the ID.
type record struct {
	typ  recType
	id   string
	rest []byte // payload after the ID
}

// appendHeader appends a header for a record of type t with a payload of n
// octets and a zero CRC; sealRecord fills the CRC in.
func appendHeader(b []byte, t recType, n int) []byte {
	b = append(b, byte(t), 0, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	return binary.LittleEndian.AppendUint32(b, 0)
}

// sealRecord sets the length and CRC of the record that starts at rec[0]
// and spans all of rec, as a record of format 1 (no generation); the
// committer seals it again for the segment it goes to (sealRecordGen).
func sealRecord(rec []byte) { sealRecordGen(rec, 0) }

// sealRecordGen sets the generation field, length and CRC of a record of
// generation gen (0: format 1, the field stays zero).
func sealRecordGen(rec []byte, gen uint64) {
	rec[1], rec[2], rec[3] = byte(gen), byte(gen>>8), byte(gen>>16)
	binary.LittleEndian.PutUint32(rec[4:8], uint32(len(rec)-headerSize))
	crc := crc32.Update(crcSeed(gen), castagnoli(), rec[:8])
	crc = crc32.Update(crc, castagnoli(), rec[headerSize:])
	binary.LittleEndian.PutUint32(rec[8:12], crc)
}

// parseHeader checks the fixed part of a header and returns the type and
// payload length. It checks neither the CRC nor octets 1 to 3 (zero in
// format 1, the generation in format 2: see recordValid).
func parseHeader(h []byte) (recType, int, bool) {
	t := recType(h[0])
	if t == 0 || t > recMax {
		return 0, 0, false
	}
	n := binary.LittleEndian.Uint32(h[4:8])
	if n > maxPayload || n < 1 {
		return 0, 0, false
	}
	return t, int(n), true
}

// checkCRC reports whether the CRC in rec's header matches its contents,
// for a record of format 1.
func checkCRC(rec []byte) bool { return checkCRCGen(rec, 0) }

// checkCRCGen reports whether the CRC in rec's header matches its contents
// for a record of generation gen (0: format 1).
func checkCRCGen(rec []byte, gen uint64) bool {
	crc := crc32.Update(crcSeed(gen), castagnoli(), rec[:8])
	crc = crc32.Update(crc, castagnoli(), rec[headerSize:])
	return crc == binary.LittleEndian.Uint32(rec[8:12])
}

// decodeRecord decodes a whole record (header and payload) whose CRC has
// been checked.
func decodeRecord(rec []byte) (record, error) {
	t, n, ok := parseHeader(rec)
	if !ok || n != len(rec)-headerSize {
		return record{}, errCorrupt
	}
	p := rec[headerSize:]
	l := int(p[0])
	if l == 0 || l > maxIDLen || 1+l > len(p) {
		return record{}, fmt.Errorf("%w: bad ID length", errCorrupt)
	}
	return record{typ: t, id: string(p[1 : 1+l]), rest: p[1+l:]}, nil
}

// beginRecord appends a header and the message ID for a record of type t;
// the caller appends the rest and calls sealRecord on the result.
func beginRecord(b []byte, t recType, id string) []byte {
	b = appendHeader(b, t, 0)
	b = append(b, byte(len(id)))
	return append(b, id...)
}

// encodeSimple encodes a record that carries only the message ID (hold,
// unhold, retry) or the ID and one octet (done).
func encodeSimple(t recType, id string, extra ...byte) []byte {
	b := beginRecord(make([]byte, 0, headerSize+1+len(id)+len(extra)), t, id)
	b = append(b, extra...)
	sealRecord(b)
	return b
}

// stateRec is the content of a recipient state record.
type stateRec struct {
	Rcpt      int
	State     RcptState
	Attempts  int
	At        time.Time // when the attempt ended
	Next      time.Time // next attempt, for Deferred
	RemoteMTA string
	Reply     smtp.Reply
	Expired   bool // failed because the message outlived its lifetime
}

// encodeState encodes a recipient state record.
func encodeState(id string, s stateRec) []byte {
	b := beginRecord(make([]byte, 0, 128), recState, id)
	b = binary.AppendUvarint(b, uint64(s.Rcpt))
	flags := byte(0)
	if s.Expired {
		flags |= 1
	}
	b = append(b, byte(s.State), flags)
	b = binary.AppendUvarint(b, uint64(s.Attempts))
	b = binary.AppendVarint(b, timeNano(s.At))
	b = binary.AppendVarint(b, timeNano(s.Next))
	b = appendString(b, s.RemoteMTA)
	b = appendReply(b, s.Reply)
	sealRecord(b)
	return b
}

// decodeState decodes the rest of a recipient state record.
func decodeState(p []byte) (stateRec, error) {
	d := decoder{b: p}
	var s stateRec
	s.Rcpt = int(d.uvarint())
	st := d.byte1()
	flags := d.byte1()
	s.State = RcptState(st)
	s.Expired = flags&1 != 0
	s.Attempts = int(d.uvarint())
	s.At = nanoTime(d.varint())
	s.Next = nanoTime(d.varint())
	s.RemoteMTA = d.str()
	s.Reply = d.reply()
	if d.err != nil {
		return stateRec{}, d.err
	}
	if s.State > Deferred || s.Rcpt > math.MaxUint16 {
		return stateRec{}, fmt.Errorf("%w: bad state record", errCorrupt)
	}
	return s, nil
}

func appendReply(b []byte, r smtp.Reply) []byte {
	b = binary.AppendUvarint(b, uint64(r.Code))
	b = appendString(b, string(r.Enhanced))
	b = binary.AppendUvarint(b, uint64(len(r.Lines)))
	for _, l := range r.Lines {
		b = appendString(b, l)
	}
	return b
}

// timeNano returns t as Unix nanoseconds, 0 for the zero time.
func timeNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// nanoTime is the inverse of timeNano.
func nanoTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads the fields written by the append helpers; the first error
// sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated field", errCorrupt)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte1() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) reply() smtp.Reply {
	var r smtp.Reply
	r.Code = int(d.uvarint())
	r.Enhanced = smtp.EnhancedCode(d.str())
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return r
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		r.Lines = append(r.Lines, d.str())
	}
	return r
}
