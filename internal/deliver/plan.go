package deliver

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
)

// MessageNeeds is what a message requires of a next hop: found by scanning
// the stored content (ScanBody) and reading the envelope (NeedsOf).
type MessageNeeds struct {
	// EightBit: the content holds octets > 127 (body or header).
	EightBit bool
	// Binary: the content holds NUL or a bare CR or LF, which only
	// BINARYMIME can carry (RFC 3030 §3).
	Binary bool
	// LongLines: a line is longer than 998 octets (RFC 5321 §4.5.3.1.6).
	LongLines bool
	// SMTPUTF8: the envelope asked for SMTPUTF8 or an address is not
	// ASCII (RFC 6531 §3.4).
	SMTPUTF8 bool
	// UTF8LocalPart: the sender's or a recipient's local part is not
	// ASCII, so no A-label conversion can make the message ASCII.
	UTF8LocalPart bool
	// UTF8Headers: a header field holds octets > 127.
	UTF8Headers bool
	// UTF8HeaderAddress: such octets sit where no RFC 2047 encoded-word
	// may go (an addr-spec), so no conversion can make the header 7-bit.
	UTF8HeaderAddress bool
	// DKIMSigned: the header holds a DKIM-Signature field.
	DKIMSigned bool
	// DSN: the envelope has RET, ENVID, NOTIFY or ORCPT parameters.
	DSN bool
	// NotifySuccess: a recipient asked for NOTIFY=SUCCESS.
	NotifySuccess bool
	// RequireTLS: the sender gave REQUIRETLS (RFC 8689).
	RequireTLS bool
	// Size is the message size in octets.
	Size int64
}

// DSNHandling says what happens to DSN parameters at a hop.
type DSNHandling uint8

// DSN handling values.
const (
	DSNNone    DSNHandling = iota // the message has no DSN parameters
	DSNPassed                     // the hop offered DSN; parameters are sent
	DSNDropped                    // the hop lacks DSN; parameters are left out (RFC 3461 §4)
)

// TransferPlan is how one message goes to one next hop: the BODY= value,
// whether the content is converted and to what, BDAT or DATA, and which
// extension parameters are sent. Build it with Plan; log it with String.
type TransferPlan struct {
	// In is the content class as stored: "7BIT", "8BITMIME" or
	// "BINARYMIME".
	In smtp.BodyType
	// Body is the BODY= parameter to send; "" sends none (7-bit content).
	Body smtp.BodyType
	// Convert says the content must go through the converter.
	Convert bool
	// Allow8Bit says octets > 127 may reach the wire (the hop offered
	// 8BITMIME or BINARYMIME). When false the converter must produce
	// 7-bit output and delivery refuses to send any octet > 127.
	Allow8Bit bool
	// Chunking says the content is sent with BDAT (RFC 3030) instead of
	// DATA.
	Chunking bool
	// SMTPUTF8 says MAIL FROM carries SMTPUTF8.
	SMTPUTF8 bool
	// ALabels says internationalised domains in the envelope are sent as
	// A-labels because the hop lacks SMTPUTF8.
	ALabels bool
	// DSN says what happens to the DSN parameters.
	DSN DSNHandling
	// RelayedDSN says a recipient asked for NOTIFY=SUCCESS and the hop
	// lacks DSN, so the sender is owed a "relayed" DSN (RFC 3461 §5.2.2).
	RelayedDSN bool
	// Size is the SIZE= value to send, 0 for none (the hop did not offer
	// SIZE): the stored size, or, for content converted or signed before
	// the transaction, its exact size (WithContentSize).
	Size int64
	// Grown names what made the content larger than stored when that
	// took it over the hop's limit ("conversion", "signing"); "" when it
	// did not.
	Grown string
	// Over is the hop's fixed maximum message size when Size exceeds it
	// (RFC 1870 §6.1): the plan refused the message. 0 otherwise.
	Over int64
	// RequireTLS says MAIL FROM carries REQUIRETLS.
	RequireTLS bool
}

// Replies for recipients a plan cannot deliver. Each is final at once.

// ReplyTooBig returns the reply for this case: the message is size octets, more than the fixed
// maximum limit the hop advertised with SIZE (RFC 1870 §6.1: the hop would refuse it, so it fails
// at once; RFC 3463 X.3.4). When grown names what made it larger than the before octets that
// would have fitted ("conversion", "signing"), the text says so.
func ReplyTooBig(size, limit int64, grown string, before int64) smtp.Reply {
	text := fmt.Sprintf("Message size exceeds fixed maximum message size: %d octets", size)
	if grown != "" {
		text += fmt.Sprintf(" after %s (%d before)", grown, before)
	}
	text += fmt.Sprintf(", the next hop's limit is %d", limit)
	return smtp.NewReply(552, smtp.EnhTooBigForSystem, text)
}

// ReplyConversionRefused returns the reply for this case: the route's policy forbids the conversion
// the hop needs (RFC 6152 §3, RFC 3463 X.6.3).
func ReplyConversionRefused() smtp.Reply {
	return smtp.NewReply(554, smtp.EnhConvRequired, "Conversion required but prohibited by policy: next hop does not support the message's content")
}

// ReplyDKIMConversionRefused returns the reply for this case: conversion would break a DKIM signature
// and the route says bounce.
func ReplyDKIMConversionRefused() smtp.Reply {
	return smtp.NewReply(554, smtp.EnhConvRequired, "Conversion required but prohibited for DKIM-signed mail by policy")
}

// ReplyNoConverter returns the reply for this case: conversion is needed and no converter is
// configured.
func ReplyNoConverter() smtp.Reply {
	return smtp.NewReply(554, smtp.EnhConvRequired, "Conversion required but not supported")
}

// ReplyConversionFailed returns the reply for this case: the converter could not convert losslessly
// (RFC 3463 X.6.5).
func ReplyConversionFailed() smtp.Reply {
	return smtp.NewReply(554, smtp.EnhConvFailed, "Conversion failed: content cannot be converted losslessly for the next hop")
}

// ReplyNonASCIIAddress returns the reply for this case: the hop lacks SMTPUTF8 and an address has a
// non-ASCII local part (RFC 6531 §3.2, RFC 3463/5248 X.6.7).
func ReplyNonASCIIAddress() smtp.Reply {
	return smtp.NewReply(553, smtp.EnhNonASCIIAddress, "Non-ASCII address not permitted: next hop does not support SMTPUTF8")
}

// ReplyUTF8Headers returns the reply for this case: the hop lacks SMTPUTF8 and the header is UTF-8
// (RFC 6531 §3.2, X.6.9 "UTF-8 header message cannot be transferred").
func ReplyUTF8Headers() smtp.Reply {
	return smtp.NewReply(554, "5.6.9", "UTF-8 header message cannot be transferred: next hop does not support SMTPUTF8")
}

// ReplyUTF8HeadersUndeclared returns the reply for this case: the hop
// offers SMTPUTF8, but the message was not submitted with it (RFC 6531
// §3.4: a message with UTF-8 header fields needs the SMTPUTF8 parameter) and
// its header has 8-bit text with no 7-bit form, e.g. in an address.
func ReplyUTF8HeadersUndeclared() smtp.Reply {
	return smtp.NewReply(554, "5.6.9", "UTF-8 header message cannot be transferred: it was not submitted with SMTPUTF8 and its header has 8-bit text with no 7-bit form")
}

// ReplyHeaderNeeds8Bit returns the reply for this case: the header has
// UTF-8 in an address, which only SMTPUTF8 can carry, and the hop offers
// SMTPUTF8 but not 8BITMIME (which RFC 6531 §3.1 requires alongside it), so
// the message can neither go as it is nor be converted (RFC 3463 X.6.3).
func ReplyHeaderNeeds8Bit() smtp.Reply {
	return smtp.NewReply(554, smtp.EnhConvRequired, "Conversion required but not possible: a header address is UTF-8 and the next hop does not offer 8BITMIME")
}

// ReplyRequireTLS returns the reply for this case: the sender asked for REQUIRETLS and the hop does
// not offer it. RFC 8689 §4.2.1 makes this a failure, not a reason to retry for days; the code is
// RFC 8689 §5's 5.7.30.
func ReplyRequireTLS() smtp.Reply {
	return smtp.NewReply(550, smtp.EnhRequireTLS, "REQUIRETLS support required but not offered by the next hop")
}

// Plan decides how a message with the given needs goes to a hop offering
// ext under policy pol. It returns the plan, or a reply for every recipient
// when the message cannot go to this hop at all. It never plans an octet
// > 127 for a hop that did not offer 8BITMIME (RFC 6152 §3), never claims
// 8BITMIME for 7-bit content, and sends BDAT only for BINARYMIME: DATA
// works with every hop, so a hop's CHUNKING alone does not change the
// transfer.
func Plan(needs MessageNeeds, ext smtp.Extensions, pol route.Policy) (TransferPlan, *smtp.Reply) {
	var p TransferPlan
	p.In = smtp.Body7Bit
	if needs.EightBit {
		p.In = smtp.Body8BitMIME
	}
	if needs.Binary {
		p.In = smtp.BodyBinaryMIME
	}
	// SIZE: refuse at once what the hop has said it will refuse
	// (RFC 1870 §6.1); send SIZE= when offered (RFC 1870 §6). Content
	// converted or signed is checked again at its size after that
	// (WithContentSize).
	if ext.Has("SIZE") && needs.Size > 0 {
		p.Size = needs.Size
	}
	if limit := ext.Size(); limit > 0 && needs.Size > limit {
		p.Over = limit
		return p, reply(ReplyTooBig(needs.Size, limit, "", 0))
	}
	// REQUIRETLS: offered only over TLS (RFC 8689 §4.1), so its presence
	// means the session is encrypted.
	if needs.RequireTLS {
		if !ext.Has("REQUIRETLS") {
			return p, reply(ReplyRequireTLS())
		}
		p.RequireTLS = true
	}
	// SMTPUTF8 (RFC 6531 §3.2): pass it on, or make the envelope ASCII
	// with A-labels when that loses nothing, or refuse at once.
	if needs.SMTPUTF8 {
		switch {
		case ext.Has("SMTPUTF8"):
			p.SMTPUTF8 = true
		case needs.UTF8LocalPart:
			return p, reply(ReplyNonASCIIAddress())
		case needs.UTF8Headers:
			return p, reply(ReplyUTF8Headers())
		default:
			p.ALabels = true
		}
	}
	has8 := ext.Has("8BITMIME")
	switch {
	case needs.Binary && ext.Has("BINARYMIME") && ext.Has("CHUNKING"):
		// RFC 3030 §3: BINARYMIME requires BDAT; lines of any length
		// are fine in a binary transfer.
		p.Body, p.Chunking, p.Allow8Bit = smtp.BodyBinaryMIME, true, true
	case needs.Binary:
		// Binary leaves become base64; 8-bit text may stay 8-bit when
		// the hop takes 8BITMIME (RFC 3030 §3).
		if pol.EightBit == route.Bounce {
			return p, reply(ReplyConversionRefused())
		}
		p.Convert = true
		if needs.EightBit && has8 {
			p.Body, p.Allow8Bit = smtp.Body8BitMIME, true
		}
	case needs.EightBit && has8:
		p.Body, p.Allow8Bit = smtp.Body8BitMIME, true
		p.Convert = needs.LongLines
	case needs.EightBit:
		if pol.EightBit == route.Bounce {
			return p, reply(ReplyConversionRefused())
		}
		p.Convert = true
	default:
		// 7-bit content: no BODY= at all; long lines are never legal
		// on the wire and are always encoded.
		p.Convert = needs.LongLines
	}
	if p.Convert && !p.Allow8Bit && needs.UTF8HeaderAddress {
		return p, reply(ReplyHeaderNeeds8Bit())
	}
	if p.Convert && needs.DKIMSigned && pol.DKIMSigned == route.Bounce {
		return p, reply(ReplyDKIMConversionRefused())
	}
	if needs.DSN {
		p.DSN = DSNDropped
		if ext.Has("DSN") {
			p.DSN = DSNPassed
		} else if needs.NotifySuccess {
			p.RelayedDSN = true
		}
	}
	return p, nil
}

func reply(r smtp.Reply) *smtp.Reply { return &r }

// WithSevenBitContent adjusts a converting plan whose prepared content
// turned out 7-bit (every 8-bit part re-encoded): no BODY=8BITMIME is
// claimed for it (RFC 6152 §3 allows it, but the label would say more than
// the content) and no octet above 127 is allowed on the wire. A plan that
// does not convert keeps the body type its message was submitted with; a
// BINARYMIME transfer is left as it is.
func (p TransferPlan) WithSevenBitContent() TransferPlan {
	if p.Convert && p.Body == smtp.Body8BitMIME {
		p.Body, p.Allow8Bit = "", false
	}
	return p
}

// WithContentSize returns the plan for content prepared before the
// transaction: stored octets as queued, converted octets after conversion
// and size octets with the signature fields, exactly what is sent. SIZE=
// then declares size (RFC 1870 §4: the octets sent after DATA, dot-stuffing
// excluded), and when size exceeds the hop's fixed maximum limit (0: none)
// the reply fails every recipient before MAIL FROM (RFC 1870 §6.1),
// naming the step that made the message too large. A plan without SIZE=
// (the hop did not offer SIZE) is returned as it is.
func (p TransferPlan) WithContentSize(stored, converted, size, limit int64) (TransferPlan, *smtp.Reply) {
	if p.Size == 0 {
		return p, nil
	}
	p.Size = size
	if limit <= 0 || size <= limit {
		return p, nil
	}
	p.Over = limit
	switch {
	case stored <= limit && converted > limit:
		p.Grown = "conversion"
		return p, reply(ReplyTooBig(size, limit, p.Grown, stored))
	case converted <= limit:
		p.Grown = "signing"
		return p, reply(ReplyTooBig(size, limit, p.Grown, converted))
	}
	return p, reply(ReplyTooBig(size, limit, "", 0))
}

// Out returns the body type of what goes on the wire: the BODY= value, or
// 7BIT when none is sent.
func (p TransferPlan) Out() smtp.BodyType {
	if p.Body == "" {
		return smtp.Body7Bit
	}
	return p.Body
}

// String describes the plan on one line for the delivery log, e.g.
// "body=8BITMIME→7BIT converted, DATA, dsn=dropped".
func (p TransferPlan) String() string {
	var parts []string
	in := p.In
	if in == "" {
		in = smtp.Body7Bit
	}
	body := "body=" + string(in)
	if in != p.Out() || p.Convert {
		body += "→" + string(p.Out())
	}
	if p.Convert {
		body += " converted"
	}
	parts = append(parts, body)
	if p.Chunking {
		parts = append(parts, "BDAT")
	} else {
		parts = append(parts, "DATA")
	}
	if p.SMTPUTF8 {
		parts = append(parts, "smtputf8")
	}
	if p.ALabels {
		parts = append(parts, "smtputf8→A-labels")
	}
	switch p.DSN {
	case DSNPassed:
		parts = append(parts, "dsn=passed")
	case DSNDropped:
		d := "dsn=dropped"
		if p.RelayedDSN {
			d += " (relayed DSN owed)"
		}
		parts = append(parts, d)
	}
	if p.Size > 0 {
		size := "size=" + strconv.FormatInt(p.Size, 10)
		if p.Grown != "" {
			size += " after " + p.Grown
		}
		if p.Over > 0 {
			size += " exceeds the next hop's SIZE " + strconv.FormatInt(p.Over, 10)
		}
		parts = append(parts, size)
	}
	if p.RequireTLS {
		parts = append(parts, "requiretls")
	}
	return strings.Join(parts, ", ")
}
