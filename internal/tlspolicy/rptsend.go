package tlspolicy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// PutFunc queues a message, as the queue's Put does.
type PutFunc func(ctx context.Context, env *smtp.Envelope, body io.Reader) (string, error)

// ReporterConfig configures a Reporter.
type ReporterConfig struct {
	// Engine holds the counts; required.
	Engine *Engine
	// Resolver looks up _smtp._tls records; required.
	Resolver *Resolver
	// Hostname is Ferry's name: the organization-name, and the
	// postmaster@Hostname contact and From address.
	Hostname string
	// Put queues mailed reports (from <>); required for mailto: rua.
	Put PutFunc
	// RootCAs verify https: rua servers; nil: the system roots. Tests
	// set a test CA.
	RootCAs *x509.CertPool
	// Logger; nil: slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Period is what one report covers; 0: a UTC day (RFC 8460 §4.1).
	// Shorter periods are for tests.
	Period time.Duration
	// StateFile, when set, keeps the counts not yet reported across
	// restarts: Run loads it at start and writes it when it stops.
	StateFile string
}

// Reporter sends the daily aggregate TLS reports (RFC 8460 §3, §5).
type Reporter struct {
	cfg  ReporterConfig
	http *http.Client
}

// NewReporter returns a Reporter.
func NewReporter(cfg ReporterConfig) *Reporter {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Period <= 0 {
		cfg.Period = 24 * time.Hour
	}
	return &Reporter{cfg: cfg, http: newHTTPClient(cfg.Resolver, cfg.RootCAs, time.Minute)}
}

// Run sends the reports of each period (a UTC day: RFC 8460 §4.1) shortly
// after it ends, until ctx ends.
func (r *Reporter) Run(ctx context.Context) {
	if f := r.cfg.StateFile; f != "" {
		if err := r.cfg.Engine.LoadCounts(f); err != nil {
			r.cfg.Logger.Warn(err.Error())
		}
		defer func() {
			if err := r.cfg.Engine.SaveCounts(f); err != nil {
				r.cfg.Logger.Error(err.Error())
			}
		}()
	}
	p := r.cfg.Period
	for {
		now := r.cfg.Now().UTC()
		next := now.Truncate(p).Add(p) // for a day: the next UTC midnight
		t := time.NewTimer(next.Sub(now) + min(time.Minute, p/10))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		_ = r.Send(ctx, next.Add(-p), next.Add(-time.Second))
	}
}

// Send reports the sessions counted since the last report as the period
// start..end to every policy domain that publishes a TLSRPTv1 record. A
// domain without one gets nothing; failures to send are logged and
// returned together.
func (r *Reporter) Send(ctx context.Context, start, end time.Time) error {
	counts := r.cfg.Engine.out.take()
	if len(counts) == 0 {
		return nil
	}
	org := r.cfg.Hostname
	contact := "postmaster@" + r.cfg.Hostname
	reports := buildReports(counts, org, contact, start, end, func(d string) string {
		return fmt.Sprintf("%s.%s.%s@%s", start.UTC().Format("20060102"), d, randomID(), r.cfg.Hostname)
	})
	var errs []error
	for domain, rep := range reports {
		ruas, err := LookupRUA(ctx, r.cfg.Resolver, domain)
		if err != nil {
			r.cfg.Logger.Info(fmt.Sprintf("tlspolicy: no TLS report for %s: %v", domain, err), "event", "tlsrpt_skipped", "domain", domain)
			continue
		}
		gz, err := rep.Gzip()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, u := range ruas {
			if err := r.deliver(ctx, domain, rep, gz, u); err != nil {
				r.cfg.Logger.Warn(fmt.Sprintf("tlspolicy: TLS report for %s to %s failed: %v", domain, u, err), "event", "tlsrpt_failed", "domain", domain, "rua", u.String())
				errs = append(errs, err)
				continue
			}
			r.cfg.Logger.Info(fmt.Sprintf("tlspolicy: TLS report %s for %s sent to %s", rep.ReportID, domain, u), "event", "tlsrpt_sent", "domain", domain, "rua", u.String(), "report_id", rep.ReportID)
		}
	}
	return errors.Join(errs...)
}

// LookupRUA returns the report addresses of the domain's "_smtp._tls" TXT
// record (RFC 8460 §3): "v=TLSRPTv1; rua=mailto:a@b,https://c/".
func LookupRUA(ctx context.Context, res *Resolver, domain string) ([]*url.URL, error) {
	txts, err := res.LookupTXT(ctx, "_smtp._tls."+domain)
	if err != nil {
		return nil, fmt.Errorf("_smtp._tls.%s: %w", domain, err)
	}
	var found []string
	for _, t := range txts {
		if strings.HasPrefix(t, "v=TLSRPTv1;") {
			found = append(found, t)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("_smtp._tls.%s has %d TLSRPTv1 records (RFC 8460 §3 wants one)", domain, len(found))
	}
	var out []*url.URL
	for _, f := range strings.Split(found[0], ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		if k != "rua" {
			continue
		}
		for _, s := range strings.Split(v, ",") {
			u, err := url.Parse(strings.TrimSpace(s))
			if err != nil || (u.Scheme != "mailto" && u.Scheme != "https") {
				continue
			}
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("_smtp._tls.%s names no mailto: or https: rua", domain)
	}
	return out, nil
}

// deliver sends one report to one rua.
func (r *Reporter) deliver(ctx context.Context, domain string, rep *Report, gz []byte, u *url.URL) error {
	if u.Scheme == "https" {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(gz))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/tlsrpt+gzip") // RFC 8460 §5.4
		resp, err := r.http.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("HTTP %s", resp.Status)
		}
		return nil
	}
	if r.cfg.Put == nil {
		return errors.New("no queue to mail reports through")
	}
	addr, err := mail.ParseAddress(u.Opaque)
	if err != nil {
		return fmt.Errorf("mailto address %q: %w", u.Opaque, err)
	}
	local, dom, _ := strings.Cut(addr.Address, "@")
	env := &smtp.Envelope{
		// RFC 8460 §5.3 with RFC 8689 §5: from the null path, so no
		// bounce loops, and TLS-Required: No so that the report about a
		// TLS failure can still be delivered.
		Rcpts:       []smtp.Recipient{{Addr: smtp.Path{LocalPart: local, Domain: dom}}},
		TLSOptional: true,
	}
	_, err = r.cfg.Put(ctx, env, bytes.NewReader(r.reportMessage(domain, rep, gz, addr.Address)))
	return err
}

// reportMessage builds the report mail (RFC 8460 §5.3): a multipart/report
// of report-type "tlsrpt" with the gzip JSON attached as
// application/tlsrpt+gzip.
func (r *Reporter) reportMessage(domain string, rep *Report, gz []byte, to string) []byte {
	org := rep.OrganizationName
	boundary := "tlsrpt-" + randomID()
	fn := fmt.Sprintf("%s!%s!%d!%d!%s.json.gz", org, domain, rep.DateRange.Start.Unix(), rep.DateRange.End.Unix(), randomID())
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\r\n", args...) }
	w("From: <postmaster@%s>", r.cfg.Hostname)
	w("To: <%s>", to)
	w("Date: %s", r.cfg.Now().Format(time.RFC1123Z))
	w("Subject: Report Domain: %s Submitter: %s Report-ID: <%s>", domain, org, rep.ReportID)
	w("Message-ID: <%s>", rep.ReportID)
	w("TLS-Report-Domain: %s", domain)
	w("TLS-Report-Submitter: %s", org)
	w("TLS-Required: No")
	w("Auto-Submitted: auto-generated")
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"%s\"", boundary)
	w("")
	w("--%s", boundary)
	w("Content-Type: text/plain; charset=us-ascii")
	w("")
	w("This is an aggregate TLS report (RFC 8460) from %s for %s,", org, domain)
	w("covering %s to %s.", rep.DateRange.Start.Format(time.RFC3339), rep.DateRange.End.Format(time.RFC3339))
	w("")
	w("--%s", boundary)
	w("Content-Type: application/tlsrpt+gzip")
	w("Content-Transfer-Encoding: base64")
	w("Content-Disposition: attachment; filename=\"%s\"", fn)
	w("")
	enc := base64.StdEncoding.EncodeToString(gz)
	for len(enc) > 76 {
		w("%s", enc[:76])
		enc = enc[76:]
	}
	w("%s", enc)
	w("--%s--", boundary)
	return []byte(b.String())
}

// randomID returns 16 hex digits.
func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
