package main

import (
	"testing"

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
