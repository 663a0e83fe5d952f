package deliver

import (
	"bytes"
	"fmt"
	"io"

	"github.com/ferrymta/ferry/internal/smtp"
)

// maxLine is the longest line SMTP allows, without its CRLF (RFC 5321
// §4.5.3.1.6).
const maxLine = 998

// BodyScan is what one pass over stored content found.
type BodyScan struct {
	EightBit    bool // an octet > 127 anywhere
	Binary      bool // a NUL, or a CR or LF that is not part of CRLF
	LongLines   bool // a line longer than 998 octets
	HeaderUTF8  bool // an octet > 127 in the header section
	DKIMSigned  bool // a DKIM-Signature header field (RFC 6376 §3.5)
	HeaderBytes int64
	Size        int64
}

// ScanBody reads a whole message and reports which of Ferry's content
// needs it has. It reads in one pass with constant memory.
func ScanBody(r io.Reader) (BodyScan, error) {
	var s BodyScan
	buf := make([]byte, 32<<10)
	inHeader := true
	lineLen := 0  // octets in the current line so far, excluding CR LF
	var prev byte // the previous octet
	var head [16]byte
	headLen := 0 // octets of the current header line kept in head
	dkim := []byte("dkim-signature:")
	for {
		n, rerr := r.Read(buf)
		chunk := buf[:n]
		for _, c := range chunk {
			if prev == '\r' && c != '\n' {
				s.Binary = true // bare CR
			}
			switch c {
			case '\n':
				if prev != '\r' {
					s.Binary = true // bare LF
				}
				if inHeader && lineLen == 0 {
					inHeader = false
					s.HeaderBytes = s.Size + 1
				}
				lineLen, headLen = 0, 0
			case '\r':
				// A CR is counted at the following LF or as bare.
			default:
				lineLen++
				if lineLen > maxLine {
					s.LongLines = true
				}
				if c == 0 {
					s.Binary = true
				}
				if c > 127 {
					s.EightBit = true
					if inHeader {
						s.HeaderUTF8 = true
					}
				}
				if inHeader && headLen < len(head) {
					head[headLen] = c
					headLen++
					if headLen == len(dkim) && bytes.EqualFold(head[:headLen], dkim) {
						s.DKIMSigned = true
					}
				}
			}
			prev = c
			s.Size++
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return s, fmt.Errorf("deliver: scanning message: %w", rerr)
		}
	}
	if prev == '\r' {
		s.Binary = true
	}
	if inHeader {
		s.HeaderBytes = s.Size
	}
	return s, nil
}

// NeedsOf combines a body scan with the envelope: SMTPUTF8 and non-ASCII
// addresses of the sender and of the recipients attempted now, DSN
// parameters, REQUIRETLS and the size.
func NeedsOf(env *smtp.Envelope, rcpts []int, scan BodyScan) MessageNeeds {
	n := MessageNeeds{
		EightBit:    scan.EightBit,
		Binary:      scan.Binary,
		LongLines:   scan.LongLines,
		UTF8Headers: scan.HeaderUTF8,
		DKIMSigned:  scan.DKIMSigned,
		SMTPUTF8:    env.SMTPUTF8,
		RequireTLS:  env.RequireTLS,
		Size:        scan.Size,
		DSN:         env.Ret != smtp.ReturnNone || env.EnvID != "",
	}
	check := func(p smtp.Path) {
		if !isASCII(p.LocalPart) {
			n.UTF8LocalPart, n.SMTPUTF8 = true, true
		}
		if !isASCII(p.Domain) {
			n.SMTPUTF8 = true
		}
	}
	check(env.From)
	for _, i := range rcpts {
		if i < 0 || i >= len(env.Rcpts) {
			continue
		}
		r := env.Rcpts[i]
		check(r.Addr)
		if r.Notify != 0 || r.ORcpt != "" {
			n.DSN = true
		}
		if r.Notify&smtp.NotifySuccess != 0 {
			n.NotifySuccess = true
		}
	}
	return n
}

// isASCII reports whether s holds only octets < 128.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
