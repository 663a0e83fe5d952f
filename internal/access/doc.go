// Package access makes Ferry's relay decisions: who may relay to any domain
// (clients in the relay networks, authenticated users), which domains anyone
// may send to (the accepted domains of an inbound gateway), which sender
// domains a client may use, and how many messages a client or user may send
// per interval.
//
// Rcpt and Mail are pure functions of the configuration and their arguments,
// so the inbound server calls them from its policy hooks and the tests can
// cover every case in tables. Rate limits need state; it lives in the small
// RateLimiter type, whose clock is an argument.
//
// The default matches the trusted MTAs (Postfix, Exim, Sendmail): relaying is
// denied to everyone but loopback clients and authenticated users, with
// 554 5.7.1 at RCPT (RFC 5321 §3.6.2, §7.1). Decisions are made on the
// normalized recipient domain, after the path parser has dropped any source
// route, so case, trailing dots, IDNA spellings, percent hacks, bang paths
// and embedded '@' cannot open the relay.
package access
