package queue

import (
	"encoding/binary"
	"fmt"

	"github.com/ferrymta/ferry/internal/downgrade"
	"github.com/ferrymta/ferry/internal/smtp"
)

// envVersion is the version octet that starts an encoded envelope. Version
// 2 adds the extension trailer (see envExt); version 1 records are still
// read.
const envVersion = 2

// Envelope extension tags. An extension is a (tag, octet string) pair in the
// trailer that follows the recipients; a reader skips the tags it does not
// know, so later versions can add fields without a new envelope version.
// Each new per-message field gets its own tag here, documented in
// docs/queue-format.md.
const (
	envExtEnd = 0 // reserved: never written
	// envExtTLSOptional: the message said "TLS-Required: No" at receipt
	// (RFC 8689 §5); an empty value.
	envExtTLSOptional = 2
	// envExtContentScan is the content scan at receipt
	// (smtp.Envelope.ContentScan): two octets, the flags of
	// encodeScanFlags and 1 when the scan is valid. It is written last in
	// the trailer, so that Put can fill it in after reading the body.
	envExtContentScan = 3
)

// Envelope flag bits.
const (
	envSMTPUTF8   = 1 << 0
	envRequireTLS = 1 << 1
	envClientTLS  = 1 << 2
)

// encodeEnvelope appends the encoding of env (without its ID, which the
// record header carries) to b.
func encodeEnvelope(b []byte, env *smtp.Envelope) []byte {
	b = append(b, envVersion)
	var flags byte
	if env.SMTPUTF8 {
		flags |= envSMTPUTF8
	}
	if env.RequireTLS {
		flags |= envRequireTLS
	}
	if env.Client.TLS {
		flags |= envClientTLS
	}
	b = append(b, flags)
	b = appendString(b, env.From.LocalPart)
	b = appendString(b, env.From.Domain)
	b = appendString(b, string(env.Body))
	b = binary.AppendVarint(b, env.Size)
	b = appendString(b, string(env.Ret))
	b = appendString(b, env.EnvID)
	b = appendString(b, env.Auth)
	b = appendString(b, env.Client.Addr)
	b = appendString(b, env.Client.Helo)
	b = appendString(b, env.Client.User)
	b = appendString(b, env.Client.Protocol)
	b = binary.AppendVarint(b, timeNano(env.Arrival))
	b = binary.AppendUvarint(b, uint64(len(env.Rcpts)))
	for _, r := range env.Rcpts {
		b = appendString(b, r.Addr.LocalPart)
		b = appendString(b, r.Addr.Domain)
		b = append(b, byte(r.Notify))
		b = appendString(b, r.ORcpt)
	}
	return appendEnvExt(b, env)
}

// appendEnvExt appends the extension trailer of env: the number of
// extensions, then each as a tag and an octet string.
func appendEnvExt(b []byte, env *smtp.Envelope) []byte {
	var ext []envExt
	if env.AuthResults != nil {
		ext = append(ext, envExt{tag: envExtAuth, val: encodeAuthResults(env.AuthResults)})
	}
	if env.TLSOptional {
		ext = append(ext, envExt{tag: envExtTLSOptional})
	}
	// The content scan goes last: Put patches its value in place.
	if env.ContentScan != nil {
		ext = append(ext, envExt{envExtContentScan, []byte{encodeScanFlags(*env.ContentScan), 1}})
	}
	b = binary.AppendUvarint(b, uint64(len(ext)))
	for _, x := range ext {
		b = binary.AppendUvarint(b, x.tag)
		b = appendString(b, string(x.val))
	}
	return b
}

// envExt is one extension of the envelope trailer.
type envExt struct {
	tag uint64
	val []byte
}

// decodeEnvExt reads the extension trailer into env, skipping unknown tags.
func decodeEnvExt(d *decoder, env *smtp.Envelope) {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		tag := d.uvarint()
		val := d.str()
		switch tag {
		case envExtAuth:
			env.AuthResults = decodeAuthResults([]byte(val))
		case envExtTLSOptional:
			env.TLSOptional = true
		case envExtContentScan:
			if len(val) >= 2 && val[1] == 1 {
				n := decodeScanFlags(val[0])
				env.ContentScan = &n
			}
		default:
			_ = val // a later version's field: skipped
		}
	}
}

// Content scan flag bits (envExtContentScan).
const (
	scanEightBit = 1 << iota
	scanNUL
	scanBareCR
	scanBareLF
	scanLongLines
	scanHeaderEightBit
	scanNeedsSMTPUTF8
	scanDKIMSigned
)

// encodeScanFlags packs a content scan into one octet.
func encodeScanFlags(n downgrade.Needs) byte {
	var f byte
	for _, x := range []struct {
		set bool
		bit byte
	}{
		{n.EightBit, scanEightBit}, {n.NUL, scanNUL}, {n.BareCR, scanBareCR}, {n.BareLF, scanBareLF},
		{n.LongLines, scanLongLines}, {n.HeaderEightBit, scanHeaderEightBit},
		{n.NeedsSMTPUTF8, scanNeedsSMTPUTF8}, {n.DKIMSigned, scanDKIMSigned},
	} {
		if x.set {
			f |= x.bit
		}
	}
	return f
}

// decodeScanFlags unpacks encodeScanFlags.
func decodeScanFlags(f byte) downgrade.Needs {
	return downgrade.Needs{
		EightBit: f&scanEightBit != 0, NUL: f&scanNUL != 0, BareCR: f&scanBareCR != 0, BareLF: f&scanBareLF != 0,
		LongLines: f&scanLongLines != 0, HeaderEightBit: f&scanHeaderEightBit != 0,
		NeedsSMTPUTF8: f&scanNeedsSMTPUTF8 != 0, DKIMSigned: f&scanDKIMSigned != 0,
	}
}

// scanSlot returns where the content-scan value sits in a message record
// prefix (the flags octet, two before bodyOff), or -1 when the envelope does
// not end with a content-scan extension.
func scanSlot(rec []byte, bodyOff int) int {
	if bodyOff < 4 || rec[bodyOff-4] != envExtContentScan || rec[bodyOff-3] != 2 {
		return -1
	}
	return bodyOff - 2
}

// scanAtReceipt scans the body of a message record being put and fills in
// the content-scan value at slot (from scanSlot) and env.ContentScan. A
// failed scan is stored as no scan, so delivery scans again.
func scanAtReceipt(sc *downgrade.Scanner, rec []byte, slot, bodyOff int, env *smtp.Envelope) {
	n, err := sc.ScanBytes(rec[bodyOff:])
	if err != nil {
		env.ContentScan = nil
		rec[slot], rec[slot+1] = 0, 0
		return
	}
	*env.ContentScan = n
	rec[slot], rec[slot+1] = encodeScanFlags(n), 1
}

// decodeEnvelope decodes an envelope written by encodeEnvelope.
func decodeEnvelope(id string, p []byte) (*smtp.Envelope, error) {
	d := decoder{b: p}
	v := d.byte1()
	if v != 1 && v != envVersion {
		return nil, fmt.Errorf("%w: envelope version %d", errCorrupt, v)
	}
	flags := d.byte1()
	env := &smtp.Envelope{ID: id}
	env.SMTPUTF8 = flags&envSMTPUTF8 != 0
	env.RequireTLS = flags&envRequireTLS != 0
	env.Client.TLS = flags&envClientTLS != 0
	env.From.LocalPart = d.str()
	env.From.Domain = d.str()
	env.Body = smtp.BodyType(d.str())
	env.Size = d.varint()
	env.Ret = smtp.DSNReturn(d.str())
	env.EnvID = d.str()
	env.Auth = d.str()
	env.Client.Addr = d.str()
	env.Client.Helo = d.str()
	env.Client.User = d.str()
	env.Client.Protocol = d.str()
	env.Arrival = nanoTime(d.varint())
	n := d.uvarint()
	if n > uint64(len(d.b)) || n > 1<<16 {
		return nil, fmt.Errorf("%w: recipient count %d", errCorrupt, n)
	}
	env.Rcpts = make([]smtp.Recipient, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		var r smtp.Recipient
		r.Addr.LocalPart = d.str()
		r.Addr.Domain = d.str()
		r.Notify = smtp.Notify(d.byte1())
		r.ORcpt = d.str()
		env.Rcpts = append(env.Rcpts, r)
	}
	if v >= 2 {
		decodeEnvExt(&d, env)
	}
	if d.err != nil {
		return nil, d.err
	}
	return env, nil
}

// messagePrefix returns the start of a message record for env: header, ID,
// envelope length and envelope. The caller appends the body and seals it.
// envEnd is the offset within the record where the body starts.
func messagePrefix(b []byte, env *smtp.Envelope) (rec []byte, bodyOff int) {
	b = beginRecord(b, recMessage, env.ID)
	e := encodeEnvelope(nil, env)
	b = binary.AppendUvarint(b, uint64(len(e)))
	b = append(b, e...)
	return b, len(b)
}

// splitMessage splits the rest of a message record (after the ID) into the
// encoded envelope and the offset of the body within rest.
func splitMessage(rest []byte) (env []byte, bodyOff int, err error) {
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)-k) {
		return nil, 0, fmt.Errorf("%w: envelope length", errCorrupt)
	}
	return rest[k : k+int(n)], k + int(n), nil
}
