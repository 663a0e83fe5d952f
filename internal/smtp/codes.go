package smtp

import "strings"

// Reply codes used by Ferry's server and client (RFC 5321 §4.2.2, §4.2.3
// unless noted).
const (
	CodeHelp                = 214 // Help message (§4.1.1.8)
	CodeReady               = 220 // <domain> Service ready; also the STARTTLS go-ahead (RFC 3207 §4)
	CodeClosing             = 221 // <domain> Service closing transmission channel
	CodeAuthSucceeded       = 235 // Authentication succeeded (RFC 4954 §6)
	CodeOK                  = 250 // Requested mail action okay, completed
	CodeCannotVerify        = 252 // Cannot VRFY user, but will accept message (§3.5.3)
	CodeAuthContinue        = 334 // AUTH challenge (RFC 4954 §4)
	CodeStartMailInput      = 354 // Start mail input; end with <CRLF>.<CRLF>
	CodeServiceNotAvailable = 421 // Service not available, closing transmission channel
	CodeMailboxBusy         = 450 // Requested mail action not taken: mailbox unavailable
	CodeLocalError          = 451 // Requested action aborted: local error in processing
	CodeInsufficientStorage = 452 // Requested action not taken: insufficient system storage
	CodeTLSNotAvailable     = 454 // TLS not available due to temporary reason (RFC 3207 §4)
	CodeParamsNotAccepted   = 455 // Server unable to accommodate parameters
	CodeSyntaxError         = 500 // Syntax error, command unrecognized (also: line too long)
	CodeParamSyntaxError    = 501 // Syntax error in parameters or arguments
	CodeNotImplemented      = 502 // Command not implemented
	CodeBadSequence         = 503 // Bad sequence of commands
	CodeParamNotImplemented = 504 // Command parameter not implemented
	CodeAuthRequired        = 530 // Authentication required (RFC 4954 §6)
	CodeAuthFailed          = 535 // Authentication credentials invalid (RFC 4954 §6)
	CodeMailboxUnavailable  = 550 // Requested action not taken: mailbox unavailable
	CodeUserNotLocal        = 551 // User not local
	CodeExceededStorage     = 552 // Requested mail action aborted: exceeded storage allocation
	CodeMailboxNameInvalid  = 553 // Requested action not taken: mailbox name not allowed
	CodeTransactionFailed   = 554 // Transaction failed (or no SMTP service here, at greeting)
	CodeParamsNotRecognized = 555 // MAIL FROM/RCPT TO parameters not recognized or not implemented
)

// Enhanced status codes (RFC 3463, registry in RFC 5248) that Ferry uses.
// Each is given in the class it is usually sent with; WithClass changes it.
const (
	EnhOther            EnhancedCode = "5.0.0"  // Other undefined status (RFC 3463 §3.1)
	EnhOK               EnhancedCode = "2.0.0"  // Success, nothing more to say
	EnhSenderOK         EnhancedCode = "2.1.0"  // Other address status: sender accepted
	EnhRecipientOK      EnhancedCode = "2.1.5"  // Destination address valid (RFC 3463 §3.2)
	EnhBadMailbox       EnhancedCode = "5.1.1"  // Bad destination mailbox address
	EnhBadDestSyntax    EnhancedCode = "5.1.3"  // Bad destination mailbox address syntax
	EnhBadSenderSyntax  EnhancedCode = "5.1.7"  // Bad sender's mailbox address syntax
	EnhNullMX           EnhancedCode = "5.1.10" // Recipient address has null MX (RFC 7505 §4.2)
	EnhMailboxFull      EnhancedCode = "4.2.2"  // Mailbox full
	EnhMailSystem       EnhancedCode = "4.3.0"  // Other or undefined mail system status
	EnhSystemFull       EnhancedCode = "4.3.1"  // Mail system full
	EnhNotAccepting     EnhancedCode = "4.3.2"  // System not accepting network messages (shutdown)
	EnhTooBigForSystem  EnhancedCode = "5.3.4"  // Message too big for system
	EnhNoAnswer         EnhancedCode = "4.4.1"  // No answer from host
	EnhBadConnection    EnhancedCode = "4.4.2"  // Bad connection (timeouts, lost connection)
	EnhRoutingFailed    EnhancedCode = "5.4.4"  // Unable to route
	EnhLoop             EnhancedCode = "5.4.6"  // Routing loop detected
	EnhExpired          EnhancedCode = "4.4.7"  // Delivery time expired
	EnhProtocol         EnhancedCode = "5.5.0"  // Other or undefined protocol status
	EnhBadSequence      EnhancedCode = "5.5.1"  // Invalid command (bad sequence of commands)
	EnhSyntax           EnhancedCode = "5.5.2"  // Syntax error (unknown command, line too long)
	EnhTooManyRcpts     EnhancedCode = "4.5.3"  // Too many recipients
	EnhInvalidParams    EnhancedCode = "5.5.4"  // Invalid command arguments
	EnhMedia            EnhancedCode = "5.6.0"  // Other or undefined media error
	EnhConvRequired     EnhancedCode = "5.6.3"  // Conversion required and prohibited
	EnhConvFailed       EnhancedCode = "5.6.5"  // Conversion failed
	EnhNonASCIIAddress  EnhancedCode = "5.6.7"  // Non-ASCII address not permitted (RFC 6531 §3.6.1)
	EnhUTF8Header       EnhancedCode = "5.6.9"  // UTF-8 header cannot be transferred (RFC 6531 §3.6.1)
	EnhSecurity         EnhancedCode = "4.7.0"  // Other or undefined security status (also: limits)
	EnhNotAuthorized    EnhancedCode = "5.7.1"  // Delivery not authorized, message refused
	EnhAuthRequired     EnhancedCode = "5.7.0"  // Authentication required (RFC 4954 §6, with 530)
	EnhAuthInvalid      EnhancedCode = "5.7.8"  // Authentication credentials invalid (RFC 4954 §6)
	EnhEncryptionNeeded EnhancedCode = "5.7.10" // Encryption needed (RFC 5248; TLS required by route)
	EnhRequireTLS       EnhancedCode = "5.7.30" // REQUIRETLS support required (RFC 8689 §5)
)

// Valid reports whether e has the form class.subject.detail of RFC 3463 §2:
// class 2, 4 or 5, subject and detail of one to three digits without
// leading zeros.
func (e EnhancedCode) Valid() bool {
	s := string(e)
	if len(s) < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.' {
		return false
	}
	subject, detail, ok := strings.Cut(s[2:], ".")
	return ok && validCodeNumber(subject) && validCodeNumber(detail)
}

// validCodeNumber reports whether s is 1*3digit without a leading zero.
func validCodeNumber(s string) bool {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// Class returns the code's class, 2, 4 or 5 (RFC 3463 §3.1), or 0 when e is
// not a valid enhanced code.
func (e EnhancedCode) Class() int {
	if !e.Valid() {
		return 0
	}
	return int(e[0] - '0')
}

// WithClass returns e with its class replaced, e.g.
// EnhInvalidParams.WithClass(4) is "4.5.4". It returns e unchanged when e
// is invalid or class is not 2, 4 or 5.
func (e EnhancedCode) WithClass(class int) EnhancedCode {
	if !e.Valid() || (class != 2 && class != 4 && class != 5) {
		return e
	}
	return EnhancedCode(string(rune('0'+class)) + string(e[1:]))
}
