package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferrymta/ferry/internal/admin"
	"github.com/ferrymta/ferry/internal/config"
	"github.com/ferrymta/ferry/internal/maillog"
	"github.com/ferrymta/ferry/internal/route"
)

// transcriptSwitch decides which sessions get a protocol transcript: the
// [transcripts] rules (by client network inbound, by next-hop host
// outbound) and each listener's transcript_dir. The admin API replaces the
// rules at run time (POST /transcripts), a reload puts the file's back.
// Every decision reads the state in force when a connection starts.
type transcriptSwitch struct {
	state atomic.Pointer[transcriptState]
	// mu orders the writers (a reload, the admin API); readers only load.
	mu     sync.Mutex
	seq    atomic.Uint64
	logger *slog.Logger
}

// transcriptState is one immutable set of settings.
type transcriptState struct {
	rules config.Transcripts
	// listenerDirs are the listeners' transcript_dir, by index.
	listenerDirs []string
}

// newTranscriptSwitch builds the switch from the configuration, creating
// the directories it names.
func newTranscriptSwitch(cfg config.Config, logger *slog.Logger) (*transcriptSwitch, error) {
	s := &transcriptSwitch{logger: logger}
	st, err := transcriptStateOf(cfg)
	if err != nil {
		return nil, err
	}
	s.state.Store(st)
	return s, nil
}

// transcriptStateOf reads the settings of cfg and creates their
// directories.
func transcriptStateOf(cfg config.Config) (*transcriptState, error) {
	st := &transcriptState{rules: cfg.Transcripts}
	if err := makeTranscriptDir(cfg.Transcripts.Dir); err != nil {
		return nil, fmt.Errorf("transcripts.dir: %w", err)
	}
	for _, l := range cfg.Listeners {
		if err := makeTranscriptDir(l.TranscriptDir); err != nil {
			return nil, fmt.Errorf("listener %s: transcript_dir: %w", l.Address, err)
		}
		st.listenerDirs = append(st.listenerDirs, l.TranscriptDir)
	}
	return st, nil
}

// makeTranscriptDir creates dir (owner only: transcripts hold addresses
// and, with full content, mail); "" is no directory.
func makeTranscriptDir(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	return nil
}

// apply puts a prepared state in force (a reload).
func (s *transcriptSwitch) apply(st *transcriptState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.Store(st)
}

// forListener returns listener i's smtpd.Config.TranscriptFor: a client
// the rules select is recorded in the rules' directory, with their
// content setting; otherwise the listener's transcript_dir applies.
func (s *transcriptSwitch) forListener(i int) func(net.Addr) (string, bool) {
	return func(remote net.Addr) (string, bool) {
		st := s.state.Load()
		if ap, err := netip.ParseAddrPort(addrString(remote)); err == nil && st.rules.MatchClient(ap.Addr()) {
			return st.rules.Dir, st.rules.FullContent
		}
		if i < len(st.listenerDirs) {
			return st.listenerDirs[i], false
		}
		return "", false
	}
}

// outbound is deliver.Config.Transcript: a connection to a next hop the
// rules select gets a transcript file named after the time, a sequence
// number and the host.
func (s *transcriptSwitch) outbound(t route.Target) (*maillog.Transcript, bool) {
	st := s.state.Load()
	if !st.rules.MatchNextHop(t.Host, t.IP) {
		return nil, false
	}
	name := fmt.Sprintf("out-%s-%s-%s", time.Now().UTC().Format("20060102T150405"),
		strconv.FormatUint(s.seq.Add(1), 10), fileSafe(t.Host))
	tr, err := maillog.OpenTranscript(st.rules.Dir, name)
	if err != nil {
		s.logger.Warn("transcript", "relay", t.String(), "err", err)
		return nil, false
	}
	return tr, st.rules.FullContent
}

// fileSafe keeps letters, digits, '.' and '-' of a host name for a file
// name.
func fileSafe(host string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, host)
}

// Transcripts returns the rules in force for GET /transcripts.
func (s *transcriptSwitch) Transcripts() admin.TranscriptRules {
	r := s.state.Load().rules
	out := admin.TranscriptRules{Dir: r.Dir, NextHops: append([]string(nil), r.NextHops...), FullContent: r.FullContent}
	for _, p := range r.Clients {
		out.Clients = append(out.Clients, p.String())
	}
	return out
}

// SetTranscripts validates and applies rules from POST /transcripts; the
// listeners' transcript_dir stay as configured.
func (s *transcriptSwitch) SetTranscripts(r admin.TranscriptRules) error {
	rules := config.Transcripts{Dir: r.Dir, FullContent: r.FullContent}
	var err error
	if rules.Clients, err = config.ParseTranscriptClients(r.Clients); err != nil {
		return err
	}
	for _, h := range r.NextHops {
		norm, err := config.CheckNextHopPattern(h)
		if err != nil {
			return fmt.Errorf("next hop %q: %w", h, err)
		}
		rules.NextHops = append(rules.NextHops, norm)
	}
	if rules.Dir == "" && (len(rules.Clients) > 0 || len(rules.NextHops) > 0) {
		return errors.New("dir: want a directory for the transcripts of the clients and next hops listed")
	}
	if rules.Dir != "" && !filepath.IsAbs(rules.Dir) {
		return fmt.Errorf("dir %q: want an absolute path", rules.Dir)
	}
	if err := makeTranscriptDir(rules.Dir); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.state.Load()
	s.state.Store(&transcriptState{rules: rules, listenerDirs: old.listenerDirs})
	return nil
}
