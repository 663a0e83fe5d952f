package admin

import (
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
)

// Summary is one message in the GET /queue listing.
type Summary struct {
	ID      string    `json:"id"`
	Arrival time.Time `json:"arrival"`
	// Size is the stored size in octets.
	Size   int64  `json:"size"`
	Sender string `json:"sender"`
	Held   bool   `json:"held"`
	// Rcpts carry no replies or history in a listing (see Message).
	Rcpts []Recipient `json:"recipients"`
}

// Message is one message as GET /queue/{id} shows it: the envelope, every
// recipient with its state and attempt history, and the transfer plan each
// next hop would get now.
type Message struct {
	Summary
	// Body is the declared BODY= type ("7BIT" when none was declared).
	Body       string `json:"body_type"`
	SMTPUTF8   bool   `json:"smtputf8,omitempty"`
	RequireTLS bool   `json:"requiretls,omitempty"`
	// TLSOptional: the header said "TLS-Required: No" (RFC 8689 §5).
	TLSOptional bool `json:"tls_required_no,omitempty"`
	// Ret and EnvID are the DSN parameters of MAIL FROM (RFC 3461 §4.3, §4.4).
	Ret   string `json:"ret,omitempty"`
	EnvID string `json:"envid,omitempty"`
	// Auth is MAIL FROM's AUTH= parameter (RFC 4954 §5).
	Auth   string     `json:"auth,omitempty"`
	Client ClientInfo `json:"client"`
	// AuthResults are the DKIM and ARC results found at receipt, as RFC
	// 8601 resinfo clauses ("dkim=pass header.d=example.org; arc=none");
	// empty when the message was not verified.
	AuthResults string `json:"auth_results,omitempty"`
	// Plans hold one transfer plan per next-hop key of the pending
	// recipients; empty when the server has no routing table.
	Plans []HopPlan `json:"plans,omitempty"`
	// Content is the stored message, present with ?body=1.
	Content []byte `json:"content,omitempty"`
}

// ClientInfo describes the SMTP client that submitted a message.
type ClientInfo struct {
	Addr     string `json:"addr,omitempty"`
	Helo     string `json:"helo,omitempty"`
	User     string `json:"user,omitempty"`
	TLS      bool   `json:"tls,omitempty"`
	Protocol string `json:"protocol,omitempty"`
}

// Recipient is one recipient of a queued message.
type Recipient struct {
	Index int    `json:"index"`
	Addr  string `json:"addr"`
	// Hop is the next-hop key: the recipient domain, lower case.
	Hop string `json:"hop"`
	// State is "pending", "deferred", "sent" or "failed".
	State    string    `json:"state"`
	Attempts int       `json:"attempts"`
	Next     time.Time `json:"next,omitzero"`
	// Notify lists the NOTIFY= conditions (RFC 3461 §4.1); ORcpt is ORCPT=.
	Notify      string    `json:"notify,omitempty"`
	ORcpt       string    `json:"orcpt,omitempty"`
	LastReply   string    `json:"last_reply,omitempty"`
	RemoteMTA   string    `json:"remote_mta,omitempty"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	Expired     bool      `json:"expired,omitempty"`
	History     []Attempt `json:"history,omitempty"`
	// LeasedBy names the relay (node) delivering this recipient now, with
	// the lease's epoch and expiry; empty when no lease is out.
	LeasedBy     string    `json:"leased_by,omitempty"`
	LeaseEpoch   uint64    `json:"lease_epoch,omitempty"`
	LeaseExpires time.Time `json:"lease_expires,omitzero"`
}

// Attempt is one recorded delivery attempt or administrative outcome.
type Attempt struct {
	At        time.Time `json:"at"`
	State     string    `json:"state"`
	Reply     string    `json:"reply,omitempty"`
	RemoteMTA string    `json:"remote_mta,omitempty"`
	Next      time.Time `json:"next,omitzero"`
	Expired   bool      `json:"expired,omitempty"`
}

// HopPlan is the transfer plan a message would get now at one next hop,
// from the hop-capability cache.
type HopPlan struct {
	// Hop is the next-hop key (recipient domain).
	Hop string `json:"hop"`
	// Route is the routing table entry, e.g. "example.com=[127.0.0.1]:2526".
	Route string `json:"route"`
	// NextHop is the cached "host:port" the plan is for; empty when no
	// next hop of the route has been seen yet.
	NextHop string    `json:"next_hop,omitempty"`
	Seen    time.Time `json:"seen,omitzero"`
	// Plan is the plan in the delivery log's words; Reply is set instead
	// when the message cannot go to this hop at all.
	Plan  string `json:"plan,omitempty"`
	Reply string `json:"reply,omitempty"`
	// Note explains why there is no plan (hop not seen, routing failed).
	Note string `json:"note,omitempty"`
}

// ActionResult is the answer to a POST on a message.
type ActionResult struct {
	ID     string `json:"id"`
	Action string `json:"action"`
}

// RetryResult is the answer to POST /queue/retry.
type RetryResult struct {
	// Messages is how many messages were made due.
	Messages int `json:"messages"`
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
}

// StateName names a recipient state as the API and the CLI show it.
func StateName(s queue.RcptState) string {
	switch s {
	case queue.Sent:
		return "sent"
	case queue.Failed:
		return "failed"
	case queue.Deferred:
		return "deferred"
	}
	return "pending"
}

// formatPath writes a path as "local@domain", "<>" for the null path.
func formatPath(p smtp.Path) string {
	if p.IsNull() {
		return "<>"
	}
	return p.Address()
}

// notifyString lists NOTIFY= conditions as RFC 3461 §4.1 writes them.
func notifyString(n smtp.Notify) string {
	if n == 0 {
		return ""
	}
	var s []string
	for _, f := range []struct {
		bit  smtp.Notify
		name string
	}{{smtp.NotifyNever, "NEVER"}, {smtp.NotifySuccess, "SUCCESS"}, {smtp.NotifyFailure, "FAILURE"}, {smtp.NotifyDelay, "DELAY"}} {
		if n&f.bit != 0 {
			s = append(s, f.name)
		}
	}
	return strings.Join(s, ",")
}

// replyString formats a reply, "" for none.
func replyString(r smtp.Reply) string {
	if r.Code == 0 {
		return ""
	}
	return r.String()
}

// summaryOf converts what Walk or Show reports.
func summaryOf(m *queue.MessageInfo) Summary {
	s := Summary{ID: m.ID, Size: m.Size, Held: m.Held, Rcpts: make([]Recipient, 0, len(m.Rcpts))}
	if m.Env != nil {
		s.Arrival = m.Env.Arrival
		s.Sender = formatPath(m.Env.From)
	}
	for _, r := range m.Rcpts {
		rc := Recipient{
			Index: r.Index, Addr: formatPath(r.Addr), Hop: r.Hop, State: StateName(r.State),
			Attempts: r.Attempts, Next: r.Next, LastReply: replyString(r.LastReply),
			RemoteMTA: r.RemoteMTA, LastAttempt: r.LastAttempt, Expired: r.Expired,
			LeasedBy: r.LeasedBy, LeaseEpoch: r.LeaseEpoch, LeaseExpires: r.LeaseExpires,
		}
		if m.Env != nil && r.Index >= 0 && r.Index < len(m.Env.Rcpts) {
			rc.Notify = notifyString(m.Env.Rcpts[r.Index].Notify)
			rc.ORcpt = m.Env.Rcpts[r.Index].ORcpt
		}
		for _, a := range r.History {
			rc.History = append(rc.History, Attempt{At: a.At, State: StateName(a.State), Reply: replyString(a.Reply),
				RemoteMTA: a.RemoteMTA, Next: a.Next, Expired: a.Expired})
		}
		s.Rcpts = append(s.Rcpts, rc)
	}
	return s
}

// messageOf converts what Show reports, without plans or content.
func messageOf(m *queue.MessageInfo) Message {
	msg := Message{Summary: summaryOf(m), Body: string(smtp.Body7Bit)}
	if env := m.Env; env != nil {
		if env.Body != "" {
			msg.Body = string(env.Body)
		}
		msg.SMTPUTF8, msg.RequireTLS, msg.TLSOptional = env.SMTPUTF8, env.RequireTLS, env.TLSOptional
		msg.Ret, msg.EnvID, msg.Auth = string(env.Ret), env.EnvID, env.Auth
		msg.Client = ClientInfo{Addr: env.Client.Addr, Helo: env.Client.Helo, User: env.Client.User,
			TLS: env.Client.TLS, Protocol: env.Client.Protocol}
		msg.AuthResults = env.AuthResults.String()
	}
	return msg
}
