// Package interop holds Ferry's interoperability tests against a real,
// independent SMTP server: Debian's Postfix, run as a private instance on a
// loopback port by internal/postfixtest (issue 4, "Interop with a real,
// independent server"; issue 5, "End to end"). The tests build the ferry
// binary once and run "ferry serve" and "ferry probe" against Postfix as
// Ferry's next hop (normal, and with 8BITMIME discarded, the Domino case)
// and as the client relaying into Ferry. They skip, visibly, when Postfix
// is not installed or the tests do not run as root.
//
// The package has no code of its own; everything is in the _test.go files,
// and the test messages are under testdata/. The SMTP test client, the
// process harness and the content checkers it shares with internal/e2e
// live in internal/testrelay.
package interop
