package postfixtest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Message is one delivery captured by a ModeCapture instance.
type Message struct {
	// QueueID is Postfix's queue ID of the message.
	QueueID string
	// Sender is the envelope sender; "" for the null sender.
	Sender string
	// Recipients are the envelope recipients of this delivery (Postfix
	// delivers once per recipient domain).
	Recipients []string
	// Data is the message exactly as Postfix's pipe(8) delivered it: the
	// content Postfix stored, with its own Received: field first and lines
	// ending in LF (Postfix keeps lines without CR; on the wire they end
	// in CRLF).
	Data []byte
}

// CRLF returns Data with every LF line end turned into CRLF: the message
// as Postfix would send it over SMTP.
func (m Message) CRLF() []byte {
	return bytes.ReplaceAll(m.Data, []byte("\n"), []byte("\r\n"))
}

// Body returns Data after the header section (after the first empty line),
// with CRLF line ends.
func (m Message) Body() []byte {
	crlf := m.CRLF()
	if i := bytes.Index(crlf, []byte("\r\n\r\n")); i >= 0 {
		return crlf[i+4:]
	}
	return nil
}

// Messages returns the messages captured so far, oldest first. It fails
// the test when the capture directory cannot be read. A ModeRelay instance
// has none.
func (in *Instance) Messages() []Message {
	in.t.Helper()
	msgs, err := readCaptures(in.mailDir)
	if err != nil {
		in.t.Fatalf("postfixtest: %v", err)
	}
	return msgs
}

// WaitMessages waits until at least n messages were captured or timeout
// passes, and returns them. On timeout it fails the test with Postfix's
// log.
func (in *Instance) WaitMessages(n int, timeout time.Duration) []Message {
	in.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs, err := readCaptures(in.mailDir)
		if err != nil {
			in.t.Fatalf("postfixtest: %v", err)
		}
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("postfixtest: %d of %d messages captured on %s after %v; Postfix log:\n%s", len(msgs), n, in.addr, timeout, in.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readCaptures reads every complete capture in dir, oldest first.
func readCaptures(dir string) ([]Message, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read captures: %w", err)
	}
	type capture struct {
		name string
		mod  time.Time
	}
	var caps []capture
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".eml") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("read captures: %w", err)
		}
		caps = append(caps, capture{strings.TrimSuffix(name, ".eml"), info.ModTime()})
	}
	sort.Slice(caps, func(i, j int) bool {
		if !caps[i].mod.Equal(caps[j].mod) {
			return caps[i].mod.Before(caps[j].mod)
		}
		return caps[i].name < caps[j].name
	})
	msgs := make([]Message, 0, len(caps))
	for _, c := range caps {
		m, err := readCapture(dir, c.name)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// readCapture reads NAME.eml and NAME.env; NAME is "QUEUEID.PID".
func readCapture(dir, name string) (Message, error) {
	data, err := os.ReadFile(filepath.Join(dir, name+".eml"))
	if err != nil {
		return Message{}, fmt.Errorf("read capture: %w", err)
	}
	env, err := os.ReadFile(filepath.Join(dir, name+".env"))
	if err != nil {
		return Message{}, fmt.Errorf("read capture envelope: %w", err)
	}
	m := Message{Data: data}
	if i := strings.IndexByte(name, '.'); i > 0 {
		m.QueueID = name[:i]
	}
	sc := bufio.NewScanner(bytes.NewReader(env))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		switch k {
		case "sender":
			m.Sender = v
		case "rcpt":
			m.Recipients = append(m.Recipients, v)
		}
	}
	if err := sc.Err(); err != nil {
		return Message{}, fmt.Errorf("read capture envelope: %w", err)
	}
	return m, nil
}
