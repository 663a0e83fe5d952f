package main

import (
	"testing"

	"github.com/ferrymta/ferry/internal/config"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtpd"
)

// TestQueueTellsSMTPDItsSpace: the queue serve hands to smtpd as its Store
// answers smtpd.SpaceChecker, so a SIZE= the spool cannot take is refused
// with 452 4.3.1 at MAIL, before the content.
func TestQueueTellsSMTPDItsSpace(t *testing.T) {
	var store smtpd.Store = (*queue.Queue)(nil)
	if _, ok := store.(smtpd.SpaceChecker); !ok {
		t.Fatal("*queue.Queue does not implement smtpd.SpaceChecker")
	}
}

// TestVerifyingStoreTellsSMTPDItsSpace: with [dkim] resolver set, the store
// smtpd gets wraps the queue; the wrapper must still answer
// smtpd.SpaceChecker with the queue's answer.
func TestVerifyingStoreTellsSMTPDItsSpace(t *testing.T) {
	var cfg config.Config
	cfg.DKIM.Resolver = "127.0.0.1:53"
	full := roomStore{room: false}
	store := receiptStore(cfg, full, nil, nil)
	sc, ok := store.(smtpd.SpaceChecker)
	if !ok {
		t.Fatal("the verifying store does not implement smtpd.SpaceChecker")
	}
	if sc.HasRoomFor(1 << 20) {
		t.Fatal("the verifying store reports room where the queue reports none")
	}
}

// roomStore is an smtpd.Store whose HasRoomFor gives a fixed answer.
type roomStore struct {
	smtpd.Store
	room bool
}

func (s roomStore) HasRoomFor(int64) bool { return s.room }
