// Package testrelay holds the helpers the end-to-end test packages
// (internal/e2e, internal/interop) and cmd/ferry's tests share: a small
// SMTP client (client.go), building and running the ferry binary
// (proc.go), and content checkers that decode MIME with the standard
// library and check what a hop without 8BITMIME may receive (mime.go,
// wire.go). It is imported only by tests.
package testrelay
