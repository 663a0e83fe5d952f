// Package smtp holds the protocol vocabulary shared by Ferry's inbound server
// (smtpd), its outbound client (deliver) and its test peer (sink): replies and
// enhanced status codes, command and path parsing, ESMTP parameters and xtext,
// EHLO keyword sets, the envelope, and the DATA and BDAT framing.
//
// Everything here follows RFC 5321 unless a comment names another RFC.
package smtp
