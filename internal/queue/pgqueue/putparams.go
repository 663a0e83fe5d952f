package pgqueue

import (
	"context"
	"encoding/binary"
	"time"
)

// putStatement names putSQL, prepared once on each connection that runs it.
const putStatement = "ferry_put"

// Type OIDs of putSQL's array elements (pg_type).
const (
	oidBytea       = 17
	oidInt8        = 20
	oidInt4        = 23
	oidText        = 25
	oidTimestamptz = 1184
)

// binaryFormat says every parameter is in binary format.
var binaryFormat = []int16{1}

// pgEpoch is PostgreSQL's timestamp epoch: binary timestamptz values are
// microseconds since it.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// keepParams is the most buffer a committer keeps between batches; the
// buffer of a larger batch is let go.
const keepParams = 4 << 20

// putParams encodes putSQL's twelve array parameters in PostgreSQL's binary
// array format (array_recv) into one buffer that a committer keeps: each
// body is copied once, and no buffer grows batch after batch, as the
// driver's own encoding (reflection, a buffer that starts small each time)
// would do.
type putParams struct {
	buf    []byte
	values [][]byte
}

// encode returns putSQL's parameters for batch, valid until the next call.
func (p *putParams) encode(batch []*putReq) [][]byte {
	n, nr, ng, size := len(batch), 0, 0, 0
	for _, r := range batch {
		nr, ng = nr+len(r.addrs), ng+len(r.hops)
		size += len(r.body) + len(r.envelope) + 256*len(r.addrs)
	}
	b := p.buf[:0]
	if cap(b) < size {
		b = make([]byte, 0, size+size/4)
	}
	var ends [12]int
	col := 0
	// column appends one array: its header, then each element.
	column := func(oid uint32, n int, elems func()) {
		b = arrayHeader(b, oid, n)
		elems()
		ends[col] = len(b)
		col++
	}
	perMessage := func(oid uint32, elem func(r *putReq)) {
		column(oid, n, func() {
			for _, r := range batch {
				elem(r)
			}
		})
	}
	perRecipient := func(oid uint32, elem func(r *putReq, i int)) {
		column(oid, nr, func() {
			for _, r := range batch {
				for i := range r.addrs {
					elem(r, i)
				}
			}
		})
	}
	perGroup := func(elem func(r *putReq, i int)) {
		column(oidText, ng, func() {
			for _, r := range batch {
				for i := range r.hops {
					elem(r, i)
				}
			}
		})
	}
	perMessage(oidText, func(r *putReq) { b = appendElem(b, r.id) })
	perMessage(oidBytea, func(r *putReq) { b = appendElem(b, r.envelope) })
	perMessage(oidBytea, func(r *putReq) { b = appendElem(b, r.body) })
	perMessage(oidInt8, func(r *putReq) { b = appendInt64Elem(b, int64(len(r.body))) })
	perMessage(oidTimestamptz, func(r *putReq) { b = appendInt64Elem(b, r.arrival.Sub(pgEpoch).Microseconds()) })
	perMessage(oidTimestamptz, func(r *putReq) { b = appendInt64Elem(b, r.expires.Sub(pgEpoch).Microseconds()) })
	perRecipient(oidText, func(r *putReq, _ int) { b = appendElem(b, r.id) })
	perRecipient(oidInt4, func(_ *putReq, i int) {
		b = binary.BigEndian.AppendUint32(b, 4)
		b = binary.BigEndian.AppendUint32(b, uint32(i))
	})
	perRecipient(oidText, func(r *putReq, i int) { b = appendElem(b, r.rcptHops[i]) })
	perRecipient(oidText, func(r *putReq, i int) { b = appendElem(b, r.addrs[i]) })
	perGroup(func(r *putReq, _ int) { b = appendElem(b, r.id) })
	perGroup(func(r *putReq, i int) { b = appendElem(b, r.hops[i]) })
	p.buf = b
	p.values = p.values[:0]
	start := 0
	for _, e := range ends {
		p.values = append(p.values, b[start:e:e])
		start = e
	}
	return p.values
}

// release lets go of a buffer grown past keepParams.
func (p *putParams) release() {
	if cap(p.buf) > keepParams {
		p.buf = nil
	}
}

// arrayHeader starts a one-dimensional array of n elements of type oid
// without NULLs (an empty array has no dimensions).
func arrayHeader(b []byte, oid uint32, n int) []byte {
	if n == 0 {
		b = binary.BigEndian.AppendUint32(b, 0) // dimensions
		b = binary.BigEndian.AppendUint32(b, 0) // no NULLs
		return binary.BigEndian.AppendUint32(b, oid)
	}
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, oid)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	return binary.BigEndian.AppendUint32(b, 1) // lower bound
}

// appendElem appends a text or bytea element: its length, then its octets.
func appendElem[T string | []byte](b []byte, v T) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// appendInt64Elem appends an int8 or timestamptz element.
func appendInt64Elem(b []byte, v int64) []byte {
	b = binary.BigEndian.AppendUint32(b, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

// commitBatch stores a batch with putSQL, prepared on the connection and
// given params' encoding of the batch; it returns once the server has
// committed it.
func (q *Queue) commitBatch(batch []*putReq, params *putParams) error {
	ctx, cancel := q.opCtx(context.Background())
	defer cancel()
	values := params.encode(batch)
	defer params.release()
	c, err := q.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	sd, err := c.Conn().Prepare(ctx, putStatement, putSQL)
	if err != nil {
		return err
	}
	_, err = c.Conn().PgConn().ExecStatement(ctx, sd, values, binaryFormat, nil).Close()
	return err
}
