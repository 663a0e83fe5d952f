// Package dkim signs outgoing mail with DKIM (RFC 6376) after any content
// conversion, over the exact octets sent, and verifies the signatures a
// message carries when it arrives. Signing and verification use
// github.com/emersion/go-msgauth; this package adds what a relay needs
// around it: loading and checking keys (RSA of at least 2048 bits or
// Ed25519, RFC 8463), choosing the key for a message, the header fields to
// sign (RFC 6376 §5.4.1, with the From, Subject, To and Date fields
// oversigned), public-key lookups through a configured resolver, and the
// DNS record to publish for a key.
package dkim
