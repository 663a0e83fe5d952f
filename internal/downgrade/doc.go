// Package downgrade converts a message losslessly into valid 7-bit MIME so
// that it can be relayed to a next hop that offers neither 8BITMIME nor
// BINARYMIME (RFC 6152 §3, RFC 3030 §3), or into valid 8BITMIME for a hop
// that offers 8BITMIME but not BINARYMIME, and tells cheaply whether a
// message needs that at all.
//
// # Use
//
// Delivery calls Scan on the queued message to learn what it needs (a
// cheap byte scan), compares that with the next hop's EHLO keywords, and
// when the hop lacks 8BITMIME (or BINARYMIME) for what the message holds,
// streams the message through Convert (or a Converter kept per worker) on
// the way out. Report.Summary gives the log line; Report.DKIMSigned tells
// that a signature was invalidated (RFC 6376 §5.3). An *Error says why a
// message cannot be converted and which enhanced status code to bounce
// with (Error.Enhanced: 5.6.5 or 5.6.9).
//
// # Approach
//
// Convert walks the MIME tree as a stream. Header sections are read whole
// (bounded by Options.MaxHeaderBytes) because a field may need rewriting; the
// body of every multipart/* entity and of message/rfc822 and message/global
// entities is walked line by line, and preambles, epilogues and delimiter
// lines are copied as they come. A leaf's Content-Transfer-Encoding field
// precedes its body, yet whether it must change is known only after the
// body has been seen, so each leaf body is spooled: in memory up to
// Options.MemoryLimit (default 4 MiB), then into a temporary file. Memory
// use is therefore bounded by a few buffers plus one leaf's spool, whatever
// the message size, and the input is read exactly once.
//
// Everything that need not change is copied byte for byte: header fields
// (folding, order, case, white space), preambles, epilogues, delimiter lines
// and every leaf that is already 7-bit clean. A leaf needs conversion when it
// holds an octet above 127, a NUL, a bare CR or LF, or a line longer than
// 998 octets (RFC 5322 §2.1.1), whatever its label claims. Such a leaf is
// encoded quoted-printable when it is text and at most one octet in four
// must be escaped (qpMaxEscapeShare: where quoted-printable, three octets per
// escape, is at most a fifth larger than base64's 4/3 expansion and keeps
// the text readable), and base64 otherwise.
// A leaf already labelled quoted-printable or base64 that is not 7-bit clean
// is decoded leniently (RFC 2045 §6.7 note 2, §6.8: characters outside the
// alphabet are ignored) and encoded again. Composite entities are never
// encoded; a composite labelled 8bit or binary is relabelled 7bit (RFC 2045
// §6.4, RFC 2046 §5.2.1), which is always true of the output.
//
// 8-bit header text becomes RFC 2047 encoded-words where RFC 2047 §5 allows
// them: in unstructured fields, in phrases (display names, the List-Id
// phrase, Keywords) and in comments of any structured field (a comment in
// Date: or Received:, say). Raw 8-bit text next to an existing
// encoded-word keeps the white space between them, which decoders would
// otherwise drop; raw 8-bit octets inside a "Q" encoded-word are escaped.
// The label is utf-8 for valid UTF-8, else the charset the entity (or the
// message) declares when it is a single-octet charset in which every
// octet is a graphic character, else unknown-8bit (RFC 1428), the last
// resort. An 8-bit parameter value of Content-Type or Content-Disposition
// (name=, filename=) becomes an RFC 2231 extended value with the same
// label, its sections joined:
//
//	filename*=utf-8''R%C3%A9sum%C3%A9.pdf
//
// An 8-bit octet inside an addr-spec, a message ID, a boundary, a media type,
// an mbox From line or elsewhere in a structured field cannot be
// expressed in 7-bit; Convert fails with ErrNeedsSMTPUTF8.
//
// A header line of white space only is an obsolete continuation (RFC 5322
// §4.2 obs-FWS), never the end of the header section. An mbox "From "
// line at the top of a message (the input, or a message/rfc822 body) is
// kept where it is, as part of the header block.
//
// # The 8BITMIME target
//
// With Options.EightBit the output is for a hop that takes 8-bit lines
// (RFC 6152 §2) but not binary content or lines over 998 octets
// (RFC 5321 §4.5.3.1.6): a leaf needs conversion only when it holds a NUL,
// a bare CR or LF, or a line longer than 998 octets, and is then encoded
// as above; every other leaf, 8-bit text included, is copied byte for
// byte, except that a leaf labelled binary is relabelled 8bit (its body
// unchanged). A leaf labelled binary that does need conversion becomes
// base64. A composite labelled binary, or with a label Convert does not
// know, is relabelled 8bit; one labelled 8bit keeps its label. Header
// fields are made 7-bit as for the 7-bit target, unless the message goes
// with SMTPUTF8 (Options.UTF8Headers): then 8-bit header text is kept
// (RFC 6532 §3.2). 8-bit octets in a preamble or epilogue are kept. Report.Kept8Bit counts the 8-bit leaves
// kept, and PartReport.Reason says what made a leaf unfit.
//
// ConvertIfNeeded makes the decision delivery makes: a message that Scan
// finds fit for a 7-bit transport as it is goes out byte for byte, without
// the repairs below; `ferry convert` uses it.
//
// Input may use CRLF or bare LF line ends: when the first header line ends
// in a bare LF, every bare LF in the message is taken as a line end (a
// repair noted in the Report). Output lines always end in CRLF. Malformed
// input is either repaired, with the repair listed in the Report, or
// rejected with ErrMalformed; the repairs are:
//   - bare LF line ends in header sections and delimiter lines become CRLF;
//   - a header line without a colon ends the header section, and a blank
//     line is inserted before it so that it becomes the first body line;
//   - a composite message with a Content-Type field and no MIME-Version
//     gets "MIME-Version: 1.0" (a leaf message gets it when encoded);
//   - a composite labelled 8bit, binary or with an unknown label is
//     relabelled 7bit;
//   - a header line longer than 998 octets is folded at white space;
//   - a multipart body that ends without its close-delimiter gets one;
//   - 8-bit octets, NULs and bare CRs in a preamble or epilogue, which
//     readers ignore (RFC 2046 §5.1.1), are replaced by '?', a bare LF
//     there becomes CRLF, and lines there are broken at 998 octets;
//   - base64 with a dangling final character drops that character (it
//     carries fewer than eight bits).
//
// The input is rejected with ErrMalformed when a header field holds a NUL
// or a bare CR, or has a line over 998 octets with no white space to fold
// at; when a header section exceeds Options.MaxHeaderBytes; when a
// multipart body never shows its boundary and is not 7-bit (its content
// would be lost to readers); and when a composite entity that cannot be
// walked (no boundary, nested too deep) is not 7-bit. A leaf with a
// transfer encoding Convert does not know ("7-bit", "7bits", "plain",
// x-uuencode) is taken as the data as it is and encoded like any other
// (RFC 2045 §6.4 leaves such a body opaque; its octets are kept).
//
// On error the output written so far is incomplete and must be discarded.
package downgrade
