package deliver

import "strings"

// DescribeKeyword returns a plain-words line for an EHLO keyword, with the
// RFC that defines it, e.g. "can receive 8-bit MIME (RFC 6152)", or "" when
// Ferry does not know the keyword.
func DescribeKeyword(keyword string) string {
	switch strings.ToUpper(keyword) {
	case "8BITMIME":
		return "can receive 8-bit MIME (RFC 6152)"
	case "BINARYMIME":
		return "can receive binary MIME with BDAT (RFC 3030)"
	case "CHUNKING":
		return "accepts the message in BDAT chunks (RFC 3030)"
	case "PIPELINING":
		return "accepts commands in groups without waiting for each reply (RFC 2920)"
	case "SIZE":
		return "declares a maximum message size and accepts SIZE= (RFC 1870)"
	case "SMTPUTF8":
		return "accepts UTF-8 addresses and headers (RFC 6531)"
	case "DSN":
		return "passes on delivery status notification requests (RFC 3461)"
	case "STARTTLS":
		return "can switch the session to TLS (RFC 3207)"
	case "AUTH":
		return "accepts SMTP authentication (RFC 4954)"
	case "ENHANCEDSTATUSCODES":
		return "adds enhanced status codes to replies (RFC 2034)"
	case "REQUIRETLS":
		return "honours REQUIRETLS, TLS for every later hop (RFC 8689)"
	case "DELIVERBY":
		return "accepts a delivery deadline (RFC 2852)"
	case "MT-PRIORITY":
		return "accepts message priorities (RFC 6710)"
	case "HELP":
		return "answers the HELP command (RFC 5321)"
	case "VRFY":
		return "answers VRFY address checks (RFC 5321)"
	case "EXPN":
		return "expands mailing lists with EXPN (RFC 5321)"
	case "ETRN":
		return "starts its queue for a domain on request (RFC 1985)"
	case "ATRN":
		return "supports authenticated turn (RFC 2645)"
	case "FUTURERELEASE":
		return "holds messages for later release (RFC 4865)"
	case "LIMITS":
		return "declares command limits (RFC 9422)"
	case "NO-SOLICITING":
		return "declares solicitation keywords (RFC 3865)"
	case "XCLIENT":
		return "accepts Postfix XCLIENT client overrides (non-standard)"
	case "XFORWARD":
		return "accepts Postfix XFORWARD client details (non-standard)"
	case "VERB":
		return "has a verbose mode (non-standard, Sendmail)"
	case "ONEX":
		return "accepts one message per connection hint (non-standard, Sendmail)"
	case "TURN":
		return "supports TURN, obsolete and unsafe (RFC 821)"
	case "SEND":
		return "supports SEND, obsolete (RFC 821)"
	case "SAML":
		return "supports SAML, obsolete (RFC 821)"
	case "SOML":
		return "supports SOML, obsolete (RFC 821)"
	case "X-EXPS":
		return "accepts Microsoft Exchange server authentication (non-standard)"
	case "X-LINK2STATE":
		return "supports Microsoft Exchange link state (non-standard)"
	case "XEXCH50":
		return "accepts Microsoft Exchange XEXCH50 data (non-standard)"
	}
	return ""
}
