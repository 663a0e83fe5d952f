package dsn

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"testing"
)

// parsedReport is a report as an independent reader sees it: the standard
// library's net/mail, mime/multipart and net/textproto.
type parsedReport struct {
	header mail.Header
	// mediaType and params are the top-level Content-Type.
	mediaType string
	params    map[string]string
	parts     []parsedPart
}

// parsedPart is one part of the multipart/report.
type parsedPart struct {
	mediaType string
	params    map[string]string
	header    textproto.MIMEHeader
	body      []byte
}

// parseReport parses msg with the standard library only.
func parseReport(msg []byte) (*parsedReport, error) {
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		return nil, err
	}
	p := &parsedReport{header: m.Header}
	p.mediaType, p.params, err = mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		return nil, err
	}
	mr := multipart.NewReader(m.Body, p.params["boundary"])
	for {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(part)
		if err != nil {
			return nil, err
		}
		pp := parsedPart{header: part.Header, body: body}
		pp.mediaType, pp.params, err = mime.ParseMediaType(part.Header.Get("Content-Type"))
		if err != nil {
			return nil, err
		}
		p.parts = append(p.parts, pp)
	}
	return p, nil
}

// mustParse parses msg or fails the test.
func mustParse(t testing.TB, msg []byte) *parsedReport {
	t.Helper()
	p, err := parseReport(msg)
	if err != nil {
		t.Fatalf("report does not parse: %v\n%s", err, msg)
	}
	return p
}

// parseStatus splits a delivery-status body into its per-message fields and
// one field block per recipient (RFC 3464 §2.1).
func parseStatus(body []byte) (textproto.MIMEHeader, []textproto.MIMEHeader, error) {
	r := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(body), bytes.NewReader([]byte("\r\n")))))
	msgFields, err := r.ReadMIMEHeader()
	if err != nil {
		return nil, nil, err
	}
	var rcpts []textproto.MIMEHeader
	for range 10000 {
		h, err := r.ReadMIMEHeader()
		if len(h) > 0 {
			rcpts = append(rcpts, h)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
	}
	return msgFields, rcpts, nil
}

// boundaryOf returns the boundary of a built report.
func boundaryOf(t testing.TB, msg []byte) string {
	t.Helper()
	return mustParse(t, msg).params["boundary"]
}
