package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// TranscriptRules are the run-time transcript settings that GET and POST
// /transcripts show and change: the protocol transcripts of inbound
// sessions from Clients and outbound sessions to NextHops are written to
// Dir, one file per session. They are in force until the next POST or
// configuration reload.
type TranscriptRules struct {
	// Dir is the directory of the transcript files; "" switches the
	// rules off.
	Dir string `json:"dir"`
	// Clients are client networks ("192.0.2.0/24", "2001:db8::7").
	Clients []string `json:"clients"`
	// NextHops are next-hop host names, ".parent" for subdomains, or IP
	// addresses.
	NextHops []string `json:"next_hops"`
	// FullContent records message content line by line instead of its
	// size only.
	FullContent bool `json:"full_content"`
}

// TranscriptSwitch reads and replaces the server's transcript rules.
type TranscriptSwitch interface {
	// Transcripts returns the rules in force.
	Transcripts() TranscriptRules
	// SetTranscripts validates r and puts it in force; an invalid r is
	// refused with an error that says why, and the rules in force stay.
	SetTranscripts(r TranscriptRules) error
}

// maxRulesBody bounds a POST /transcripts body.
const maxRulesBody = 64 << 10

func (s *server) getTranscripts(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, normalRules(s.opts.Transcripts.Transcripts()))
}

func (s *server) setTranscripts(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRulesBody))
	dec.DisallowUnknownFields()
	var rules TranscriptRules
	if err := dec.Decode(&rules); err != nil {
		writeError(w, badRequest("transcript rules: %v", err))
		return
	}
	if err := s.opts.Transcripts.SetTranscripts(rules); err != nil {
		writeError(w, badRequest("%v", err))
		return
	}
	now := normalRules(s.opts.Transcripts.Transcripts())
	s.log.Info("admin", "action", "transcripts", "dir", now.Dir,
		"clients", fmt.Sprint(now.Clients), "next_hops", fmt.Sprint(now.NextHops),
		"full_content", now.FullContent, "client", clientOf(r))
	writeJSON(w, http.StatusOK, now)
}

// normalRules shows empty lists as [] rather than null.
func normalRules(r TranscriptRules) TranscriptRules {
	if r.Clients == nil {
		r.Clients = []string{}
	}
	if r.NextHops == nil {
		r.NextHops = []string{}
	}
	return r
}
