package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/ferrymta/ferry/internal/deliver"
)

// Client talks to the admin API of a running server, over TCP or a Unix
// socket.
type Client struct {
	addr  string
	base  string
	hc    *http.Client
	token string
	spool string
}

// NewClient returns a client for the server whose admin API listens on
// addr ("host:port" or an absolute Unix socket path).
func NewClient(addr string) *Client {
	tr := &http.Transport{DisableKeepAlives: true}
	base := "http://" + addr
	if IsUnixSocket(addr) {
		base = "http://" + UnixHost
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", addr)
		}
	}
	return &Client{addr: addr, base: base, hc: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// Addr returns the address the client talks to.
func (c *Client) Addr() string { return c.addr }

// WithToken makes the client send token as its bearer token (a TCP admin
// listener requires one) and returns c.
func (c *Client) WithToken(token string) *Client {
	c.token = token
	return c
}

// ExpectSpool makes the client refuse an answer from a server that does
// not serve the spool directory dir (see SpoolHeader), and returns c.
func (c *Client) ExpectSpool(dir string) *Client {
	c.spool = absPath(dir)
	return c
}

// WrongServerError says the server that answered serves another spool.
type WrongServerError struct {
	Addr, Want, Got string
}

// Error names both spools.
func (e *WrongServerError) Error() string {
	return fmt.Sprintf("the server at %s serves the spool %s, not %s", e.Addr, e.Got, e.Want)
}

// NotRunningError says nothing answers at the admin address.
type NotRunningError struct {
	Addr string
	Err  error
}

// Error names the address and what to check.
func (e *NotRunningError) Error() string {
	return fmt.Sprintf("no ferry serve running at %s (is admin.address right?)", e.Addr)
}

// Unwrap returns the dial error.
func (e *NotRunningError) Unwrap() error { return e.Err }

// APIError is an error response of the API.
type APIError struct {
	Status  int
	Message string
}

// Error returns the server's message.
func (e *APIError) Error() string { return e.Message }

// do sends a request and decodes a JSON answer into out. A POST carries
// in (nil: an empty object) as its JSON body.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if method == http.MethodPost {
		if in == nil {
			in = struct{}{}
		}
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("admin request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("admin request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" && (errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)) {
			return &NotRunningError{Addr: c.addr, Err: err}
		}
		return fmt.Errorf("admin API at %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	if got := resp.Header.Get(SpoolHeader); c.spool != "" && got != c.spool {
		return &WrongServerError{Addr: c.addr, Want: c.spool, Got: got}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return fmt.Errorf("admin API at %s: reading the answer: %w", c.addr, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
			return &APIError{Status: resp.StatusCode, Message: eb.Error}
		}
		return &APIError{Status: resp.StatusCode, Message: fmt.Sprintf("%s %s: %s", method, path, resp.Status)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("admin API at %s: decoding the answer: %w", c.addr, err)
	}
	return nil
}

// Query selects messages for List; zero fields match everything.
type Query struct {
	Hop, Sender, Rcpt string
	// Older lists messages at least this old.
	Older time.Duration
	// State is "", "active", "deferred" or "held".
	State string
}

// List returns the queued messages matching q, in ID order.
func (c *Client) List(ctx context.Context, q Query) ([]Summary, error) {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("hop", q.Hop)
	set("sender", q.Sender)
	set("rcpt", q.Rcpt)
	set("state", q.State)
	if q.Older > 0 {
		v.Set("older", q.Older.String())
	}
	var out []Summary
	err := c.do(ctx, http.MethodGet, "/queue", v, nil, &out)
	return out, err
}

// Show returns one message by ID or unique ID prefix, with its content
// when body is set.
func (c *Client) Show(ctx context.Context, id string, body bool) (*Message, error) {
	var v url.Values
	if body {
		v = url.Values{"body": {"1"}}
	}
	var m Message
	if err := c.do(ctx, http.MethodGet, "/queue/"+url.PathEscape(id), v, nil, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Act runs action ("hold", "release", "retry", "delete" or "bounce") on
// the message with ID or unique prefix id and returns its full ID.
func (c *Client) Act(ctx context.Context, id, action string) (string, error) {
	var r ActionResult
	err := c.do(ctx, http.MethodPost, "/queue/"+url.PathEscape(id)+"/"+url.PathEscape(action), nil, nil, &r)
	return r.ID, err
}

// Retry makes every message with a pending recipient for hop due at once,
// or every message not held when hop is "", and returns how many.
func (c *Client) Retry(ctx context.Context, hop string) (int, error) {
	in := RetryRequest{Hop: hop, All: hop == ""}
	var r RetryResult
	err := c.do(ctx, http.MethodPost, "/queue/retry", nil, in, &r)
	return r.Messages, err
}

// Hops returns the hop-capability cache.
func (c *Client) Hops(ctx context.Context) ([]deliver.HopInfo, error) {
	var out []deliver.HopInfo
	err := c.do(ctx, http.MethodGet, "/hops", nil, nil, &out)
	return out, err
}

// Hop returns the cache entry of one hop ("host:port"), if known.
func (c *Client) Hop(ctx context.Context, hop string) (deliver.HopInfo, bool, error) {
	all, err := c.Hops(ctx)
	if err != nil {
		return deliver.HopInfo{}, false, err
	}
	for _, h := range all {
		if strings.EqualFold(h.Hop, hop) {
			return h, true, nil
		}
	}
	return deliver.HopInfo{}, false, nil
}

// Ping checks that the server answers (and, with ExpectSpool, that it
// serves that spool); a failing /readyz still answers.
func (c *Client) Ping(ctx context.Context) error {
	var h Health
	err := c.do(ctx, http.MethodGet, "/readyz", nil, nil, &h)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable {
		return nil
	}
	return err
}
