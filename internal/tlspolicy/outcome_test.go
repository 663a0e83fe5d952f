package tlspolicy

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/ferrymta/ferry/internal/route"
)

func quietEngine(t *testing.T) *Engine {
	t.Helper()
	r, err := NewResolver(ResolverConfig{Servers: []string{"127.0.0.1:9"}})
	if err != nil {
		t.Fatal(err)
	}
	return NewEngine(EngineConfig{Resolver: r, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// TestCountsSurviveRestart: the counts not yet reported are saved to the
// spool when the reporter stops and added back at the next start.
func TestCountsSurviveRestart(t *testing.T) {
	e := quietEngine(t)
	sts := &STSPolicy{Mode: "enforce", MX: []string{"mx.example"}, MaxAge: time.Hour}
	p := HostPolicy{Kind: MTASTS, Domain: "example.org", Host: "mx.example", STS: sts}
	tgt := route.Target{Host: "mx.example", IP: netip.MustParseAddr("192.0.2.1"), Port: 25}
	e.Outcome(p, tgt, nil)
	e.Outcome(p, tgt, nil)
	e.Outcome(p, tgt, ErrNoStartTLS)
	e.Outcome(HostPolicy{Kind: Opportunistic, Domain: "plain.example"}, tgt, nil)
	want := map[string]Counts{
		"example.org":   e.Counts("example.org", PolicyTypeSTS),
		"plain.example": e.Counts("plain.example", PolicyTypeNoPolicy),
	}
	if want["example.org"].Success != 2 || want["example.org"].Failures["starttls-not-supported"] != 1 {
		t.Fatalf("counts %+v", want)
	}
	file := filepath.Join(t.TempDir(), "tlsrpt-counts.json")
	if err := e.SaveCounts(file); err != nil {
		t.Fatal(err)
	}
	if c := e.Counts("example.org", PolicyTypeSTS); c.Success != 0 {
		t.Errorf("saved counts still counted: %+v", c)
	}
	e2 := quietEngine(t)
	if err := e2.LoadCounts(file); err != nil {
		t.Fatal(err)
	}
	got := map[string]Counts{
		"example.org":   e2.Counts("example.org", PolicyTypeSTS),
		"plain.example": e2.Counts("plain.example", PolicyTypeNoPolicy),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("loaded %+v, want %+v", got, want)
	}
	if reports := buildReports(e2.out.take(), "o", "c", time.Time{}, time.Time{}, func(string) string { return "id" }); reports["example.org"].Policies[0].Policy.MXHost[0] != "mx.example" {
		t.Errorf("policy description lost: %+v", reports["example.org"])
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file left behind: %v", err)
	}
	if err := e2.LoadCounts(file); err != nil {
		t.Errorf("a missing state file: %v", err)
	}
}
