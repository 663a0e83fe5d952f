package deliver

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/testrelay"
	"github.com/ferrymta/ferry/internal/tlspolicy"
	"github.com/ferrymta/ferry/internal/tlspolicy/dnstest"
)

// TestMTASTS runs the MTA-STS cases of RFC 8461 against sinks as MX hosts
// and an HTTPS policy server with a test CA.
func TestMTASTS(t *testing.T) {
	ca := testrelay.NewTestCA(t, "Test WebPKI")
	now := time.Now()
	good := ca.Issue(t, "mx-sts.plain.test", now.Add(-time.Hour), now.Add(time.Hour), "mx-sts.plain.test")
	other := ca.Issue(t, "mx-stsother.plain.test", now.Add(-time.Hour), now.Add(time.Hour), "mx-stsother.plain.test")
	selfSigned := testrelay.NewTestCert(t, "mx-stsbadcert.plain.test", "mx-stsbadcert.plain.test")
	testing1 := testrelay.NewTestCert(t, "mx-ststest.plain.test", "mx-ststest.plain.test")
	cached := ca.Issue(t, "mx-stscache.plain.test", now.Add(-time.Hour), now.Add(time.Hour), "mx-stscache.plain.test")
	daneToo := testrelay.NewTestCert(t, "mx-stsdane.sec.test", "mx-stsdane.sec.test")
	pol := func(mode string, mx ...string) string {
		s := "version: STSv1\r\nmode: " + mode + "\r\nmax_age: 86400\r\n"
		for _, m := range mx {
			s += "mx: " + m + "\r\n"
		}
		return s
	}
	policies := map[string]string{
		"mta-sts.d-mx-sts.plain.test":        pol("enforce", "*.plain.test"),
		"mta-sts.d-mx-stsother.plain.test":   pol("enforce", "mx.elsewhere.test"),
		"mta-sts.d-mx-stsbadcert.plain.test": pol("enforce", "mx-stsbadcert.plain.test"),
		"mta-sts.d-mx-ststest.plain.test":    pol("testing", "mx.elsewhere.test"),
		"mta-sts.d-mx-stscache.plain.test":   pol("enforce", "mx-stscache.plain.test"),
		"mta-sts.d-mx-stsdane.sec.test":      pol("enforce", "mx.elsewhere.test"),
	}
	rpt := startReportServer(t, ca)
	var extra = map[string][]string{"plain.test": {
		"rpt A 127.0.0.1",
		`_smtp._tls.d-mx-ststest TXT "v=TLSRPTv1; rua=mailto:tlsrpt@reports.test"`,
		`_smtp._tls.d-mx-sts TXT "v=TLSRPTv1; rua=https://rpt.plain.test:` + rpt.port() + `/tlsrpt"`,
	}}
	for host := range policies {
		label, zone, _ := strings.Cut(strings.TrimPrefix(host, "mta-sts."), ".")
		extra[zone] = append(extra[zone], "mta-sts."+label+" A 127.0.0.1", `_mta-sts.`+label+` TXT "v=STSv1; id=1"`)
	}
	w := startDANEWorld(t, []mxSpec{
		{label: "mx-sts", zone: "plain.test", cert: &good},
		{label: "mx-stsother", zone: "plain.test", cert: &other},
		{label: "mx-stsbadcert", zone: "plain.test", cert: &selfSigned},
		{label: "mx-ststest", zone: "plain.test", cert: &testing1},
		{label: "mx-stscache", zone: "plain.test", cert: &cached},
		{label: "mx-stsdane", zone: "sec.test", cert: &daneToo, tlsa: []string{"3 1 1 " + dnstest.SPKISHA256(daneToo.Leaf)}},
	}, extra)
	var names []string
	for h := range policies {
		names = append(names, h)
	}
	ps := dnstest.StartPolicyServer(t, ca.Issue(t, "mta-sts", now.Add(-time.Hour), now.Add(time.Hour), names...).TLS, policies)
	cacheDir := t.TempDir()
	newSTS := func() *tlspolicy.STS {
		s, err := tlspolicy.NewSTS(tlspolicy.STSConfig{Resolver: w.res, CacheDir: cacheDir, RootCAs: ca.Roots, Port: ps.Port(), Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	w.sts = newSTS()
	w.roots = ca.Roots
	got := func(label string) int { return len(w.sinks[label].Messages()) }

	w.run(t, []policyCase{
		{name: "enforce, matching MX", domain: "d-mx-sts.plain.test", state: queue.Sent, reply: "250", mx: "mx-sts", arrives: true,
			log: []string{"policy=mta-sts", "mode enforce, MX mx-sts.plain.test matches"}},
		{name: "enforce, MX not in the policy", domain: "d-mx-stsother.plain.test", state: queue.Deferred, reply: "451 4.7.5", mx: "mx-stsother",
			replyHas: []string{"not in the enforced policy"}},
		{name: "enforce, certificate not trusted", domain: "d-mx-stsbadcert.plain.test", state: queue.Deferred, reply: "451 4.7.5", mx: "mx-stsbadcert",
			replyHas: []string{"(MTA-STS)", "x509"}},
		{name: "DANE takes precedence", domain: "d-mx-stsdane.sec.test", state: queue.Sent, reply: "250", mx: "mx-stsdane", arrives: true,
			log: []string{"policy=dane"}},
	})
	t.Run("testing mode delivers and reports", func(t *testing.T) {
		q, logs, eng := w.deliverWith(t, "S4", "d-mx-ststest.plain.test", nil)
		q.expect(t, "S4", 0, queue.Sent, "250")
		if got("mx-ststest") != 1 || !strings.Contains(logs.String(), "MTA-STS testing policy check failed") {
			t.Errorf("got %d; log:\n%s", got("mx-ststest"), logs)
		}
		c := eng.Counts("d-mx-ststest.plain.test", "sts")
		if c.Failures["certificate-not-trusted"] != 1 {
			t.Errorf("counts %+v", c)
		}
	})
	t.Run("TLS-RPT report by mail and HTTPS", func(t *testing.T) {
		q := newMemQueue()
		a, _, eng := w.agent(t, q)
		ctx := context.Background()
		a.DeliverLease(ctx, &queue.Lease{Hop: "d-mx-ststest.plain.test", Items: []queue.Item{
			testMessage("R1", "Subject: r\r\n\r\nx\r\n", "a@d-mx-ststest.plain.test"),
			testMessage("R2", "Subject: r\r\n\r\nx\r\n", "b@d-mx-ststest.plain.test"),
		}})
		a.DeliverLease(ctx, &queue.Lease{Hop: "d-mx-sts.plain.test", Items: []queue.Item{
			testMessage("R3", "Subject: r\r\n\r\nx\r\n", "c@d-mx-sts.plain.test"),
		}})
		q.expect(t, "R1", 0, queue.Sent, "250")
		q.expect(t, "R3", 0, queue.Sent, "250")
		var mails []capturedMail
		rep := tlspolicy.NewReporter(tlspolicy.ReporterConfig{Engine: eng, Resolver: w.res, Hostname: "ferry.test", RootCAs: ca.Roots,
			Put: func(_ context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
				b, err := io.ReadAll(body)
				mails = append(mails, capturedMail{env: *env, body: b})
				return "Q1", err
			}})
		day := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
		if err := rep.Send(ctx, day, day.Add(24*time.Hour-time.Second)); err != nil {
			t.Fatal(err)
		}
		if len(mails) != 1 {
			t.Fatalf("%d report mails", len(mails))
		}
		m := mails[0]
		if !m.env.From.IsNull() || len(m.env.Rcpts) != 1 || m.env.Rcpts[0].Addr.Address() != "tlsrpt@reports.test" || !m.env.TLSOptional {
			t.Errorf("report envelope %+v", m.env)
		}
		js := dnstest.ReportFromMail(t, m.body)
		r := validReport(t, js)
		if r.Policies[0].Policy.Domain != "d-mx-ststest.plain.test" || r.Policies[0].Policy.Type != "sts" ||
			r.Policies[0].Summary.Failure != 1 || r.Policies[0].FailureDetails[0].ResultType != "certificate-not-trusted" ||
			r.Policies[0].FailureDetails[0].ReceivingMXHostname != "mx-ststest.plain.test" {
			t.Errorf("mailed report %s", js)
		}
		posted := rpt.reports()
		if len(posted) != 1 {
			t.Fatalf("%d reports posted", len(posted))
		}
		r = validReport(t, posted[0])
		if p := r.Policies[0]; p.Policy.Domain != "d-mx-sts.plain.test" || p.Summary.Success != 1 || p.Summary.Failure != 0 || len(p.Policy.MXHost) != 1 {
			t.Errorf("posted report %s", posted[0])
		}
	})
	t.Run("policy cache across restart and fetch failure", func(t *testing.T) {
		q, _ := w.deliverTo(t, "C1", "d-mx-stscache.plain.test", nil)
		q.expect(t, "C1", 0, queue.Sent, "250")
		// Restart: a new policy source on the same cache directory, the
		// policy server down, and a new policy id announced.
		ps.Fail.Store(true)
		w.auth.AddZone(t, strings.Replace(w.plain, `_mta-sts.d-mx-stscache TXT "v=STSv1; id=1"`, `_mta-sts.d-mx-stscache TXT "v=STSv1; id=2"`, 1))
		w.sts = newSTS()
		before := ps.Fetches.Load()
		q, logs := w.deliverTo(t, "C2", "d-mx-stscache.plain.test", nil)
		q.expect(t, "C2", 0, queue.Sent, "250")
		if ps.Fetches.Load() == before {
			t.Error("the new id did not cause a fetch")
		}
		if !strings.Contains(logs.String(), "policy=mta-sts") || !strings.Contains(logs.String(), "cached MTA-STS policy (fetch failed") {
			t.Errorf("log:\n%s", logs)
		}
		// The cached enforce policy still protects the domain: an MX
		// with a bad certificate would be refused, and a changed MX list
		// is not learned while the server fails.
	})
}
