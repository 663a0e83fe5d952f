package deliver

import (
	"strconv"
	"strings"

	"github.com/ferrymta/ferry/internal/smtp"
)

// mailParams returns the ESMTP parameters of MAIL FROM with a leading
// space, or "".
func mailParams(env *smtp.Envelope, plan TransferPlan) string {
	var b strings.Builder
	if plan.Size > 0 {
		b.WriteString(" SIZE=" + strconv.FormatInt(plan.Size, 10))
	}
	if plan.Body != "" {
		b.WriteString(" BODY=" + string(plan.Body))
	}
	if plan.SMTPUTF8 {
		b.WriteString(" SMTPUTF8")
	}
	if plan.RequireTLS {
		b.WriteString(" REQUIRETLS")
	}
	if plan.DSN == DSNPassed {
		if env.Ret != smtp.ReturnNone {
			b.WriteString(" RET=" + string(env.Ret))
		}
		if env.EnvID != "" {
			b.WriteString(" ENVID=" + xtext(env.EnvID))
		}
	}
	return b.String()
}

// rcptParams returns the ESMTP parameters of one RCPT TO with a leading
// space, or "".
func rcptParams(r smtp.Recipient, plan TransferPlan) string {
	if plan.DSN != DSNPassed {
		return ""
	}
	var b strings.Builder
	if r.Notify != 0 {
		b.WriteString(" NOTIFY=")
		if r.Notify&smtp.NotifyNever != 0 {
			b.WriteString("NEVER")
		} else {
			var n []string
			if r.Notify&smtp.NotifySuccess != 0 {
				n = append(n, "SUCCESS")
			}
			if r.Notify&smtp.NotifyFailure != 0 {
				n = append(n, "FAILURE")
			}
			if r.Notify&smtp.NotifyDelay != 0 {
				n = append(n, "DELAY")
			}
			b.WriteString(strings.Join(n, ","))
		}
	}
	if r.ORcpt != "" {
		typ, addr, ok := strings.Cut(r.ORcpt, ";")
		if ok && typ != "" {
			b.WriteString(" ORCPT=" + xtext(typ) + ";" + xtext(addr))
		}
	}
	return b.String()
}

// xtext encodes s as xtext (RFC 3461 §4): "+", "=", controls, space and
// octets > 126 as "+HH".
func xtext(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '!' || c > '~' || c == '+' || c == '=' {
			b.WriteByte('+')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
