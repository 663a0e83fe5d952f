// Package deliver is Ferry's outbound SMTP client and delivery agent: it
// resolves a lease's route, opens or reuses a connection to the next hop
// (EHLO with HELO fallback, STARTTLS, AUTH), builds a transfer plan from
// what the message needs and what the hop offers, transmits with
// PIPELINING, DATA or BDAT, and reports every recipient's outcome to the
// queue. It also keeps the hop-capability cache.
//
// Decisions worth knowing:
//
//   - BDAT is used only for BODY=BINARYMIME, which requires it (RFC 3030
//     §3). A hop's CHUNKING alone does not switch from DATA: DATA works with
//     every hop, and one transfer path is one path to test.
//   - The plan never lets an octet > 127 reach a hop that did not offer
//     8BITMIME (RFC 6152 §3); besides the plan, a guard on the wire aborts a
//     transfer (closing the connection before the final dot) if converted
//     content still holds one, and the recipients fail with 554 5.6.5.
//   - Outcomes: 2xx sent, 4xx deferred, 5xx failed, per recipient, with the
//     hop's full reply kept. A 421 or a lost connection mid-transaction
//     defers every recipient not refused by then (451 4.4.2 when the hop
//     gave no reply). Failures before a transaction (connection refused,
//     greeting or EHLO refused, TLS or AUTH trouble) always defer: they are
//     about the session, not the message. Routing failures follow the
//     reply: a null MX fails with 556 5.1.10, DNS trouble defers.
//   - TLS: a route's tls=required defers with 451 4.7.10 when the hop
//     lacks STARTTLS and 451 4.7.5 when the handshake or the certificate
//     check fails; the queue turns the last 4.7.x into 5.7.10 at expiry.
//     tls=may does not verify and falls back to plain text when the
//     handshake fails. Credentials are sent only over TLS (else 451
//     4.7.10).
//   - SMTPUTF8 to a hop without it: recipients with a non-ASCII local part
//     fail at once with 553 5.6.7; the others go with A-label domains when
//     the header is ASCII, else the message fails with 554 5.6.9.
//   - Conversion runs while sending (converter → pipe → DATA writer); the
//     queue keeps the original. Without a converter, recipients that need
//     one fail with 554 5.6.3.
package deliver
