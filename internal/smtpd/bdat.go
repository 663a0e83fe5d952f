package smtpd

import (
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/ferrymta/ferry/internal/smtp"
)

// errTransactionAborted is what the store reads when a BDAT transaction is
// abandoned (RSET, a new EHLO, the end of the session).
var errTransactionAborted = errors.New("smtpd: transaction aborted by the client")

// bdatTransfer is a BDAT transaction in progress (RFC 3030): the store reads
// the chunks through a pipe while the session reads commands between them.
type bdatTransfer struct {
	chunks *smtp.BDATReader
	msg    *pendingMessage
	pw     *io.PipeWriter
	result chan putResult
	buf    []byte
}

// putResult is what Store.Put returned.
type putResult struct {
	id  string
	err error
}

// abort ends the transfer without a message and waits for the store.
func (b *bdatTransfer) abort() {
	b.pw.CloseWithError(errTransactionAborted)
	<-b.result
}

// cmdBDAT runs BDAT (RFC 3030 §2). Every chunk whose size could be parsed is
// read in full, even when the command is refused, so chunk octets are never
// taken for commands.
func (ss *session) cmdBDAT(arg string) smtp.Reply {
	size, last, err := smtp.ParseBDATArg(arg)
	if err != nil {
		// Without a size the chunk's end is unknown: stop here rather than
		// read content as commands.
		ss.hangUp("BDAT", syntaxReply(err, "BDAT size [LAST]"))
		return smtp.Reply{}
	}
	var refuse *smtp.Reply
	switch {
	case ss.tlsRequired("BDAT"):
		r := replyTLSRequired() // RFC 3207 §4
		refuse = &r
	case !ss.srv.ext.chunking || !ss.info.ESMTP:
		r := replyNotImpl()
		refuse = &r
	case ss.env == nil:
		r := replySequence("need MAIL command")
		refuse = &r
	case len(ss.env.Rcpts) == 0:
		r := replySequence("need RCPT command")
		refuse = &r
	case ss.bdat == nil:
		if r := ss.srv.policy.Data(ss.info, ss.env); r != nil {
			ss.resetTransaction()
			reply := ss.refused(r)
			refuse = &reply
		}
	}
	ss.conn.setReadTimeout(ss.srv.cfg.Timeouts.Data, false)
	if refuse != nil {
		// A refused chunk is still read, in at most DataTotal.
		if ss.bdat == nil {
			ss.conn.setReadLimit(time.Now().Add(ss.srv.cfg.Timeouts.DataTotal))
		}
		_, err := io.CopyN(io.Discard, ss.r, size)
		if ss.bdat == nil {
			ss.conn.setReadLimit(time.Time{})
		}
		if err != nil {
			ss.readFailed()
			ss.done = true
			return smtp.Reply{}
		}
		return *refuse
	}
	if ss.bdat == nil {
		ss.startBDAT()
	}
	b := ss.bdat
	chunk := b.chunks.Chunk(ss.r, size, last)
	_, werr := io.CopyBuffer(b.pw, chunk, b.buf)
	if werr != nil {
		// The store stopped reading, or the content failed (size, bare
		// newline), or the connection did: drain the chunk, then report.
		if _, derr := io.Copy(io.Discard, chunk); derr != nil && !errors.Is(derr, b.chunks.Err()) {
			werr = derr
		}
		b.pw.CloseWithError(werr)
		return ss.endBDAT()
	}
	if !last {
		return smtp.NewReply(smtp.CodeOK, smtp.EnhOK, "Ok: "+strconv.FormatInt(size, 10)+" octets received")
	}
	b.pw.Close()
	return ss.endBDAT()
}

// startBDAT starts the store reading a new BDAT message.
func (ss *session) startBDAT() {
	cfg := &ss.srv.cfg
	pr, pw := io.Pipe()
	b := &bdatTransfer{
		chunks: smtp.NewBDATReader(smtp.DataOptions{MaxSize: cfg.MaxMessageSize, Bare: cfg.BareNewline},
			ss.env.Body == smtp.BodyBinaryMIME),
		pw:     pw,
		result: make(chan putResult, 1),
		buf:    make([]byte, bufferSize),
	}
	ss.tx.Chunked = true
	// The whole transfer, chunks and the BDAT commands between them, is
	// bounded (slowloris); resetTransaction lifts the bound.
	ss.conn.setReadLimit(time.Now().Add(cfg.Timeouts.DataTotal))
	b.msg = ss.prepareMessage(pr)
	msg, ctx, env, body, store := b.msg, ss.putContext(), b.msg.env, b.msg.body, ss.srv.store
	go func() {
		msg.noteHeader() // reads chunks as the session feeds them
		id, err := store.Put(ctx, env, body)
		pr.CloseWithError(errTransactionAborted) // unblock the session if Put stopped early
		b.result <- putResult{id, err}
	}()
	ss.bdat = b
}

// endBDAT waits for the store and returns the final reply of a BDAT
// transaction, which it ends.
func (ss *session) endBDAT() smtp.Reply {
	b := ss.bdat
	res := <-b.result
	ss.bdat = nil
	return ss.finishMessage(b.msg, res.id, res.err, nil)
}
