// Package arc implements the Authenticated Received Chain (RFC 8617): it
// adds an ARC set (ARC-Authentication-Results, ARC-Message-Signature,
// ARC-Seal) to a message Ferry changed, so that the next hop can trust
// the authentication results Ferry saw before the change, and it
// validates the chain a message arrives with. It is built on the DKIM
// pieces of internal/dkim (keys, header parsing, key lookups) and the
// relaxed canonicalization of RFC 6376 §3.4, which ARC uses throughout.
package arc
