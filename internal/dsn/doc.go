// Package dsn builds Ferry's delivery status notifications: RFC 6522
// multipart/report messages of report-type delivery-status carrying a short
// plain-English explanation, an RFC 3464 message/delivery-status part and the
// returned message (RFC 6533 message/global-delivery-status, message/global
// and message/global-headers for internationalised mail).
//
// # Building a report
//
// Build makes one report from a Report (kind, envelope of the original
// message, the recipients it covers with their last replies) and the original
// message. Kinds are Failed, Delayed, Delivered and Relayed; the kind is the
// Action of every recipient in the report. The Status of a recipient is the
// enhanced code of the next hop's reply when it gave one, otherwise one
// mapped from the basic code (RFC 3463), with its class made to agree with the
// action. A failure report returns the whole message unless RET=HDRS was
// given or it exceeds Report.MaxReturnSize (default 100 KiB); every other
// kind returns the header only (RFC 3461 §4.3). Content a 7-bit report
// cannot carry is converted with the downgrade package, so a report about a
// message without SMTPUTF8 is always 7-bit.
//
// # Queue events
//
// A Notifier turns queue events into reports and queues them with the null
// reverse path. Wire it as queue.Config.OnEvent, with the queue's Put as
// its PutFunc and the queue's Lifetime in NotifierConfig.Lifetime:
//
//	var q queue.Store
//	n, err := dsn.NewNotifier(dsn.NotifierConfig{ReportingMTA: host, Lifetime: qcfg.Lifetime},
//		func(ctx context.Context, env *smtp.Envelope, body io.Reader) (string, error) {
//			return q.Put(ctx, env, body)
//		})
//	qcfg.OnEvent = n.OnEvent
//	q, err = queue.Open(qcfg)
//
// EventFinished gives one failure report covering the failed recipients
// that asked for one; EventDelayed gives one delay report per message once
// it is older than NotifierConfig.DelayWarning (default 4 h), stored with
// queue.Event.PutReported where the queue offers it, which records the
// report as made in the same commit (once across nodes and restarts on a
// shared queue), else remembered in memory. Success
// reports come from delivery: Relayed for a next hop without the DSN
// extension (deliver's TransferPlan.RelayedDSN, RFC 3461 §5.2.2), Delivered
// for a final delivery.
//
// The Notifier logs one "dsn" line per report queued (original queue ID,
// the report's queue ID, kind, recipients) and one "dsn-suppressed" line per
// report not sent, with the reason.
//
// A failure report is never dropped because the queue refused it: when
// Put fails and the queue can keep the finished message (queue.Event.Keep,
// the segment log), the Notifier asks it to, logs "dsn-deferred" once, and
// the queue hands the event back until the report is queued. On a full
// spool (queue.ErrSpoolFull) a report returning the whole original is
// tried again with its header only. Wire the Notifier's PutFunc to
// queue.ReportIntake.PutReport where the backend offers it, so that
// reports may use part of the space kept back from new mail.
package dsn
