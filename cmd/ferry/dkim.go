package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ferrymta/ferry/internal/arc"
	"github.com/ferrymta/ferry/internal/config"
	"github.com/ferrymta/ferry/internal/deliver"
	"github.com/ferrymta/ferry/internal/dkim"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/smtp"
	"github.com/ferrymta/ferry/internal/smtpd"
)

// verifyTimeout bounds the DNS lookups of one message's verification at
// receipt; a lookup that takes longer is a temperror result, and the
// message is accepted all the same.
const verifyTimeout = 15 * time.Second

// loadKeyring loads every [[dkim.key]] (config.Load has checked each one;
// this reads them again for use).
func loadKeyring(cfg config.Config) (*dkim.Keyring, error) {
	var keys []*dkim.Key
	for _, k := range cfg.DKIM.Keys {
		key, err := dkim.LoadKey(k.Domain, k.Selector, dkim.Algorithm(k.Algorithm), k.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("dkim key %s: %w", k.Name(), err)
		}
		keys = append(keys, key)
	}
	return dkim.NewKeyring(keys...)
}

// dkimSigner returns delivery's signer over keys, or nil when no key is
// configured (then nothing is buffered or signed).
func dkimSigner(cfg config.Config, keys *dkim.Keys) deliver.Signer {
	if len(cfg.DKIM.Keys) == 0 {
		return nil
	}
	id := cfg.DKIM.AuthServID
	if id == "" {
		id = cfg.Hostname
	}
	return &deliver.KeySigner{Keys: keys, AuthServID: id, ARCKey: cfg.DKIM.ARCKey}
}

// receiptMemory is the most of one message held in memory while it is
// verified at receipt (less when the budget is small: receiptMemoryShare);
// a larger message goes to a temporary file.
const receiptMemory = 1 << 20

// receiptMemoryShare caps one message's memory at this fraction of the
// budget, so that it and the queue's copy of the same message always fit
// in the budget together.
const receiptMemoryShare = 8

// verifyingStore verifies the DKIM signatures and the ARC chain of every
// message before it is stored, and stores the results with it
// (smtp.Envelope.AuthResults). A message is held while it is verified in a
// queue.Spill: in memory taken from mem, or in an unlinked temporary file
// in the spool.
type verifyingStore struct {
	smtpd.Store
	res dkim.TXTResolver
	log *slog.Logger
	// mem is verification's share of the memory for message content
	// (see splitMemory); wait is how long verification waits for the
	// header copies it needs there.
	mem  *queue.MemBudget
	wait time.Duration
	// dir receives the temporary files.
	dir string
}

// verifyShare is the part of the queue's memory budget for message
// content (queue.Config.MaxBufferedBytes) that verification at receipt
// gets when it is on: a quarter.
const verifyShare = 4

// splitMemory gives verification at receipt, when [dkim] resolver is set,
// its share of qc.MaxBufferedBytes and leaves the queue's Put the rest, so
// that messages being verified and messages being stored together hold no
// more than MaxBufferedBytes. It returns verification's budget (nil when
// verification is off). Two budgets rather than one: a message verified in
// memory that waited for the queue's budget to store it would hold memory
// the queue waits for.
func splitMemory(cfg config.Config, qc *queue.Config) *queue.MemBudget {
	if cfg.DKIM.Resolver == "" {
		return nil
	}
	if qc.MaxBufferedBytes <= 0 {
		qc.MaxBufferedBytes = queue.DefaultConfig(qc.Dir).MaxBufferedBytes
	}
	share := qc.MaxBufferedBytes / verifyShare
	qc.MaxBufferedBytes -= share
	return queue.NewMemBudget(share)
}

// receiptStore wraps q with verification when [dkim] resolver is set; mem
// is verification's budget (splitMemory).
func receiptStore(cfg config.Config, q smtpd.Store, mem *queue.MemBudget, logger *slog.Logger) smtpd.Store {
	if cfg.DKIM.Resolver == "" {
		return q
	}
	if logger == nil {
		logger = slog.Default()
	}
	d := queue.DefaultConfig(cfg.Queue.Spool)
	if mem == nil {
		mem = queue.NewMemBudget(d.MaxBufferedBytes / verifyShare)
	}
	return &verifyingStore{Store: q, res: dkim.NewNetResolver(cfg.DKIM.Resolver), log: logger, mem: mem, wait: d.MemoryWait, dir: cfg.Queue.Spool}
}

// Put verifies the message, then stores it. The header is read first: a
// message without DKIM-Signature and ARC fields is stored as it streams
// in (its results say so); a signed one is read whole into a
// queue.Spill, verified, then stored. Verification never refuses a
// message: a signature that fails is a result. The body is read to its end
// on every path.
func (s *verifyingStore) Put(ctx context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
	buf := queue.NewSpill(s.mem, s.dir, min(receiptMemory, s.mem.Total()/receiptMemoryShare), "verification at receipt")
	defer buf.Close()
	fields, head, err := dkim.ReadHeader(bufio.NewReader(io.TeeReader(body, buf)))
	// DKIM and ARC each keep a copy of the header while they verify.
	headerCopies := 2 * int64(len(head))
	switch {
	case errors.Is(err, dkim.ErrHeaderTooLong):
		s.log.Warn(env.ID+": not verified: header longer than 1 MiB", "id", env.ID)
		return s.Store.Put(ctx, env, io.MultiReader(buf.Reader(), body))
	case err != nil:
		return "", drain(body, err)
	case !authFields(fields):
		env.AuthResults = &smtp.AuthResults{ARC: arc.None}
		s.log.Info(env.ID+": "+env.AuthResults.String(), "event", "verified", "id", env.ID, "results", env.AuthResults.String())
		return s.Store.Put(ctx, env, io.MultiReader(buf.Reader(), body))
	}
	if err := s.mem.Acquire(ctx, headerCopies, s.wait); err != nil {
		return "", drain(body, err)
	}
	if _, err := io.Copy(buf, body); err != nil {
		s.mem.Release(headerCopies)
		return "", drain(body, err)
	}
	env.AuthResults = s.verify(ctx, env.ID, buf.Reader)
	s.mem.Release(headerCopies)
	return s.Store.Put(ctx, env, buf.Reader())
}

// drain reads body to its end and returns err.
func drain(body io.Reader, err error) error {
	_, _ = io.Copy(io.Discard, body)
	return err
}

// authFields reports whether the header has a field verification reads.
func authFields(fields []dkim.Field) bool {
	for _, f := range fields {
		switch strings.ToLower(f.Name) {
		case "dkim-signature", "arc-seal", "arc-message-signature", "arc-authentication-results":
			return true
		}
	}
	return false
}

// verify returns the results for one message, read from open (once for
// DKIM, once for ARC), and logs them.
func (s *verifyingStore) verify(ctx context.Context, id string, open func() io.Reader) *smtp.AuthResults {
	ar, chain, err := authenticate(ctx, s.res, open)
	if err != nil {
		s.log.Warn(id+": verification incomplete", "id", id, "err", err)
	}
	args := []any{"event", "verified", "id", id, "results", ar.String()}
	if chain.Reason != "" {
		args = append(args, "arc_reason", chain.Reason)
	}
	s.log.Info(id+": "+ar.String(), args...)
	return ar
}

// authenticate verifies the DKIM signatures and the ARC chain of the
// message open reads with
// keys from res, within verifyTimeout. The error says what could not be
// read; the results hold what could.
func authenticate(ctx context.Context, res dkim.TXTResolver, open func() io.Reader) (*smtp.AuthResults, arc.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	defer cancel()
	ar := &smtp.AuthResults{}
	var derr error
	ar.DKIM, derr = dkim.Verify(ctx, open(), res)
	chain, aerr := arc.Validate(ctx, open(), res)
	ar.ARC, ar.ARCInstance = chain.Status, chain.Instance
	return ar, chain, errors.Join(derr, aerr)
}

// runDKIM runs "ferry dkim keygen".
func runDKIM(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) > 0 && args[0] == "keygen":
		return runKeygen(args[1:], stdout, stderr)
	case len(args) > 0 && (args[0] == "-h" || args[0] == "--help"):
		fmt.Fprintln(stdout, keygenUsage)
		return 0
	case len(args) == 0:
		fmt.Fprintln(stderr, "ferry dkim: missing command: want keygen")
	default:
		fmt.Fprintf(stderr, "ferry dkim: unknown command %q: want keygen\n", args[0])
	}
	fmt.Fprintln(stderr, keygenUsage)
	return 2
}

const keygenUsage = `Usage: ferry dkim keygen [-algorithm rsa-sha256|ed25519-sha256] [-out FILE] DOMAIN SELECTOR

Writes a new private key (mode 0600; an existing file is never overwritten)
and prints the [[dkim.key]] entry for the configuration and the DNS TXT
record to publish at SELECTOR._domainkey.DOMAIN (see docs/dkim.md).`

// runKeygen writes a new private key (mode 0600, never over an existing
// file) and prints the [[dkim.key]] entry and the DNS TXT record to
// publish.
func runKeygen(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ferry dkim keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	algName := fs.String("algorithm", string(dkim.RSASHA256), "rsa-sha256 (2048 bits) or ed25519-sha256 (RFC 8463)")
	out := fs.String("out", "", "key `file` to write (default SELECTOR.DOMAIN.pem in the current directory)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), keygenUsage+"\n\nFlags:")
		fs.PrintDefaults()
	}
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if !checkArgs(fs, pos, 2, 2, "DOMAIN SELECTOR") {
		return 2
	}
	domain, selector := pos[0], pos[1]
	alg, err := dkim.ParseAlgorithm(*algName)
	if err != nil {
		fmt.Fprintf(stderr, "ferry dkim keygen: -algorithm: %v\n", err)
		return 2
	}
	if err := dkim.CheckNames(domain, selector); err != nil {
		fmt.Fprintf(stderr, "ferry dkim keygen: %v\n", err)
		return 2
	}
	file := *out
	if file == "" {
		file = selector + "." + domain + ".pem"
	}
	pemData, signer, err := dkim.GenerateKey(alg)
	if err != nil {
		fmt.Fprintf(stderr, "ferry dkim keygen: %v\n", err)
		return 1
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		fmt.Fprintf(stderr, "ferry dkim keygen: %v\n", err)
		return 1
	}
	if _, err := f.Write(pemData); err != nil {
		f.Close()
		os.Remove(file)
		fmt.Fprintf(stderr, "ferry dkim keygen: writing %s: %v\n", file, err)
		return 1
	}
	if err := f.Close(); err != nil {
		os.Remove(file)
		fmt.Fprintf(stderr, "ferry dkim keygen: writing %s: %v\n", file, err)
		return 1
	}
	rec, err := dkim.KeyRecord(signer)
	if err != nil {
		fmt.Fprintf(stderr, "ferry dkim keygen: %v\n", err)
		return 1
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		abs = file
	}
	name := selector + "._domainkey." + domain
	fmt.Fprintf(stdout, "Wrote %s (%s, mode 0600).\n\nAdd to the configuration:\n\n[[dkim.key]]\ndomain = %q\nselector = %q\nkey_file = %q\nalgorithm = %q\n\nPublish this DNS TXT record, then reload Ferry (SIGHUP):\n\n%s\n",
		file, alg, domain, selector, abs, string(alg), dkim.ZoneLine(name, rec))
	return 0
}

// HasRoomFor passes the wrapped store's free-space answer through, so that
// verification at receipt does not switch off the early 452 4.3.1 at MAIL
// (smtpd.SpaceChecker); a store that cannot tell admits the message and Put
// finds out.
func (s *verifyingStore) HasRoomFor(size int64) bool {
	if sc, ok := s.Store.(smtpd.SpaceChecker); ok {
		return sc.HasRoomFor(size)
	}
	return true
}
