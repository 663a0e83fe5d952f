// Package e2e holds Ferry's end-to-end tests: they build the ferry binary
// once, run "ferry serve" between a small SMTP client and one or more
// "ferry sink" next hops, and check what arrives at the hop (issue 4,
// section Tests). The package has no code of its own; everything is in the
// _test.go files, and the test messages are under testdata/.
package e2e
