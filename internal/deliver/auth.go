package deliver

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"github.com/emersion/go-sasl"

	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
)

// ErrAuthWithoutTLS is returned by Auth on a connection without TLS:
// Ferry never sends a password in the clear.
var ErrAuthWithoutTLS = errors.New("deliver: refusing to authenticate without TLS")

// ErrNoAuthMechanism is returned by Auth when the hop offers neither PLAIN
// nor LOGIN.
var ErrNoAuthMechanism = errors.New("deliver: next hop offers no supported AUTH mechanism (PLAIN, LOGIN)")

// Auth authenticates with PLAIN (preferred) or LOGIN (RFC 4954), only over
// TLS. A rejection is a *ReplyError with the hop's reply.
func (c *Client) Auth(ctx context.Context, cred route.Credentials) error {
	if c.tls == nil {
		return ErrAuthWithoutTLS
	}
	mechs := c.ext.AuthMechanisms()
	var client sasl.Client
	switch {
	case slices.Contains(mechs, sasl.Plain):
		client = sasl.NewPlainClient("", cred.Username, cred.Password)
	case slices.Contains(mechs, sasl.Login):
		client = &loginClient{user: cred.Username, pass: cred.Password}
	default:
		return ErrNoAuthMechanism
	}
	defer c.watch(ctx)()
	mech, ir, err := client.Start()
	if err != nil {
		return fmt.Errorf("deliver: AUTH %s: %w", mech, err)
	}
	line := "AUTH " + mech
	if ir != nil {
		enc := base64.StdEncoding.EncodeToString(ir)
		if enc == "" {
			enc = "=" // an empty initial response (RFC 4954 §4)
		}
		line += " " + enc
	}
	rep, err := c.cmd(c.timeouts.Auth, line)
	for i := 0; err == nil && rep.Code == smtp.CodeAuthContinue; i++ {
		if i >= 10 {
			c.broken = true
			return errors.New("deliver: AUTH: too many challenges")
		}
		challenge, derr := base64.StdEncoding.DecodeString(rep.Text())
		if derr != nil {
			_, _ = c.cmd(c.timeouts.Auth, "*") // cancel (RFC 4954 §4)
			return fmt.Errorf("deliver: AUTH %s: bad challenge: %w", mech, derr)
		}
		resp, nerr := client.Next(challenge)
		if nerr != nil {
			_, _ = c.cmd(c.timeouts.Auth, "*")
			return fmt.Errorf("deliver: AUTH %s: %w", mech, nerr)
		}
		c.trSecret = true // the response carries the credentials
		rep, err = c.cmd(c.timeouts.Auth, base64.StdEncoding.EncodeToString(resp))
		c.trSecret = false
	}
	if err != nil {
		return err
	}
	if rep.Code != smtp.CodeAuthSucceeded {
		return &ReplyError{Command: "AUTH", Reply: rep}
	}
	c.authed = true
	return nil
}

// loginClient is the LOGIN mechanism (draft-murchison-sasl-login): no
// initial response; the first challenge gets the user name, the second the
// password, whatever their text says (servers vary: "Username:",
// "User Name", empty).
type loginClient struct {
	user, pass string
	step       int
}

func (l *loginClient) Start() (string, []byte, error) { return sasl.Login, nil, nil }

func (l *loginClient) Next([]byte) ([]byte, error) {
	l.step++
	switch l.step {
	case 1:
		return []byte(l.user), nil
	case 2:
		return []byte(l.pass), nil
	}
	return nil, sasl.ErrUnexpectedServerChallenge
}
