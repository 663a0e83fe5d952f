// Package e2e holds Ferry's end-to-end tests: they build the ferry binary
// once, run "ferry serve" between a small SMTP client and one or more
// "ferry sink" next hops, and check what arrives at the hop (issue 4,
// section Tests). The package has no code of its own; everything is in the
// _test.go files, and the test messages are under testdata/. The SMTP test
// client, the process harness and the content checkers it shares with
// internal/interop live in internal/testrelay.
//
// Hostile input (issue 7): smuggling_test.go sends every published SMTP
// smuggling sequence through Ferry, hostile_test.go runs hostile clients
// beside a well-behaved one, and bigdata_test.go streams 256 MB of DATA
// over the SIZE limit while watching the server's memory. Set
// FERRY_BIG_DATA=1 to stream 1 GB instead (a few seconds; about 10 s
// with -race).
package e2e
