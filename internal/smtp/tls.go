package smtp

import (
	"crypto/tls"
	"slices"
	"strings"
)

// CipherSuites returns the TLS 1.2 cipher suites Ferry offers, inbound and
// outbound: the ones crypto/tls implements without known security issues,
// less the CBC suites with SHA-1 MACs (TLS_ECDHE_*_WITH_AES_*_CBC_SHA,
// which crypto/tls still enables by default), so only AEAD suites with
// forward secrecy remain (RFC 9325 §4.2). TLS 1.3 suites are all AEAD and
// not configurable.
func CipherSuites() []uint16 {
	var ids []uint16
	for _, s := range tls.CipherSuites() {
		if !strings.Contains(s.Name, "_CBC_") && slices.Contains(s.SupportedVersions, tls.VersionTLS12) {
			ids = append(ids, s.ID)
		}
	}
	return ids
}
