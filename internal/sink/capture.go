package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/smtpd"
)

// Sidecar is the content of a capture's ID.json file.
type Sidecar struct {
	ID        string        `json:"id"`
	From      string        `json:"from"` // reverse path with brackets, "<>" for the null path
	Rcpts     []SidecarRcpt `json:"rcpts"`
	Params    SidecarParams `json:"params"`
	Helo      string        `json:"helo"`
	Client    string        `json:"client"`   // "ip:port"
	Protocol  string        `json:"protocol"` // "SMTP", "ESMTP", ... (RFC 3848)
	TLS       bool          `json:"tls"`
	Chunked   bool          `json:"chunked"` // content came with BDAT
	Received  time.Time     `json:"received"`
	Octets    int           `json:"octets"` // size of ID.eml
	MailLine  string        `json:"mail_line"`
	RcptLines []string      `json:"rcpt_lines"`
}

// SidecarRcpt is one recipient in a Sidecar.
type SidecarRcpt struct {
	To     string   `json:"to"` // forward path with brackets
	Notify []string `json:"notify,omitempty"`
	ORcpt  string   `json:"orcpt,omitempty"` // "addr-type;address", decoded
}

// SidecarParams are the MAIL FROM parameters in a Sidecar.
type SidecarParams struct {
	Body       string `json:"body,omitempty"` // "7BIT", "8BITMIME", "BINARYMIME" or "" (none given)
	SMTPUTF8   bool   `json:"smtputf8"`
	RequireTLS bool   `json:"requiretls"`
	Size       int64  `json:"size,omitempty"`
	Ret        string `json:"ret,omitempty"`
	EnvID      string `json:"envid,omitempty"`
}

// ReadCapture reads the capture ID from dir: its sidecar and its content.
func ReadCapture(dir, id string) (Sidecar, []byte, error) {
	var sc Sidecar
	j, err := os.ReadFile(filepath.Join(dir, id+".json"))
	if err != nil {
		return sc, nil, fmt.Errorf("sink: read capture: %w", err)
	}
	if err := json.Unmarshal(j, &sc); err != nil {
		return sc, nil, fmt.Errorf("sink: read capture %s: %w", id, err)
	}
	data, err := os.ReadFile(filepath.Join(dir, id+".eml"))
	if err != nil {
		return sc, nil, fmt.Errorf("sink: read capture: %w", err)
	}
	return sc, data, nil
}

// sidecar builds the sidecar of m.
func sidecar(m *Message) Sidecar {
	env := &m.Envelope
	sc := Sidecar{
		ID:   m.ID,
		From: env.From.String(),
		Params: SidecarParams{
			Body: string(env.Body), SMTPUTF8: env.SMTPUTF8, RequireTLS: env.RequireTLS,
			Size: env.Size, Ret: string(env.Ret), EnvID: env.EnvID,
		},
		Helo: env.Client.Helo, Client: env.Client.Addr, Protocol: env.Client.Protocol, TLS: env.Client.TLS,
		Chunked: m.Chunked, Received: env.Arrival, Octets: len(m.Data),
		MailLine: m.MailLine, RcptLines: m.RcptLines,
	}
	sc.Rcpts = make([]SidecarRcpt, 0, len(env.Rcpts))
	for _, r := range env.Rcpts {
		sc.Rcpts = append(sc.Rcpts, SidecarRcpt{To: r.Addr.String(), Notify: notifyNames(r.Notify), ORcpt: r.ORcpt})
	}
	return sc
}

func notifyNames(n smtp.Notify) []string {
	var s []string
	for _, f := range []struct {
		bit  smtp.Notify
		name string
	}{{smtp.NotifyNever, "NEVER"}, {smtp.NotifySuccess, "SUCCESS"}, {smtp.NotifyFailure, "FAILURE"}, {smtp.NotifyDelay, "DELAY"}} {
		if n&f.bit != 0 {
			s = append(s, f.name)
		}
	}
	return s
}

// captureStore is the sink's smtpd.Store: it applies strict 7-bit checking
// and END rules, then keeps the message.
type captureStore struct{ s *Sink }

// NewID returns a fresh capture ID, unique across runs in one directory.
func (c captureStore) NewID() string {
	return c.s.idPref + "-" + strconv.FormatInt(c.s.idSeq.Add(1), 10)
}

// Put reads the content and accepts or refuses the message.
func (c captureStore) Put(ctx context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
	data, err := io.ReadAll(body)
	if err != nil {
		return "", fmt.Errorf("sink: reading content: %w", err)
	}
	s := c.s
	if s.opts.Strict7Bit && env.Body != smtp.Body8BitMIME && env.Body != smtp.BodyBinaryMIME {
		if i := firstHigh(data); i >= 0 {
			return "", &smtpd.ReplyError{Reply: smtp.NewReply(smtp.CodeTransactionFailed, smtp.EnhMedia,
				fmt.Sprintf("8-bit octet at offset %d, but BODY=8BITMIME was not given", i))}
		}
	}
	if r := answer(s.rules, StageEnd, subjects(env)...); r != nil {
		return "", &smtpd.ReplyError{Reply: *r}
	}
	m := Message{ID: env.ID, Envelope: *env, Data: data}
	m.Envelope.Rcpts = append([]smtp.Recipient(nil), env.Rcpts...)
	if tx, ok := smtpd.TransactionFromContext(ctx); ok {
		m.MailLine = tx.MailLine
		m.RcptLines = append([]string(nil), tx.RcptLines...)
		m.Chunked = tx.Chunked
	}
	if s.opts.Dir != "" {
		if err := writeCapture(s.opts.Dir, &m); err != nil {
			return "", err
		}
	}
	s.add(m)
	if s.opts.Delay > 0 {
		t := time.NewTimer(s.opts.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	return env.ID, nil
}

// firstHigh returns the offset of the first octet above 127.
func firstHigh(b []byte) int {
	for i, c := range b {
		if c > 127 {
			return i
		}
	}
	return -1
}

// writeCapture writes ID.eml, then ID.json (so a sidecar means the content
// is complete), each via a temporary file and a rename.
func writeCapture(dir string, m *Message) error {
	var j bytes.Buffer
	enc := json.NewEncoder(&j)
	enc.SetEscapeHTML(false) // keep "<a@example.com>" readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(sidecar(m)); err != nil {
		return fmt.Errorf("sink: sidecar: %w", err)
	}
	if err := writeFile(filepath.Join(dir, m.ID+".eml"), m.Data); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, m.ID+".json"), j.Bytes())
}

func writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("sink: capture: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("sink: capture: %w", err)
	}
	return nil
}
