package deliver

import (
	"github.com/ferrymta/ferry/internal/downgrade"
	"github.com/ferrymta/ferry/internal/smtp"
)

// NeedsOf combines a content scan (downgrade.Scan of the stored message,
// size octets long) with the envelope: SMTPUTF8 and non-ASCII addresses of
// the sender and of the recipients attempted now, DSN parameters,
// REQUIRETLS and the size.
func NeedsOf(env *smtp.Envelope, rcpts []int, scan downgrade.Needs, size int64) MessageNeeds {
	n := MessageNeeds{
		EightBit:          scan.EightBit,
		Binary:            scan.NUL || scan.BareCR || scan.BareLF,
		LongLines:         scan.LongLines,
		UTF8Headers:       scan.HeaderEightBit,
		UTF8HeaderAddress: scan.NeedsSMTPUTF8,
		DKIMSigned:        scan.DKIMSigned,
		SMTPUTF8:          env.SMTPUTF8,
		RequireTLS:        env.RequireTLS,
		Size:              size,
		DSN:               env.Ret != smtp.ReturnNone || env.EnvID != "",
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
