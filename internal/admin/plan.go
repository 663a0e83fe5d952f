package admin

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ferrymta/ferry/internal/deliver"
	"github.com/ferrymta/ferry/internal/downgrade"
	"github.com/ferrymta/ferry/internal/queue"
	"github.com/ferrymta/ferry/internal/route"
	"github.com/ferrymta/ferry/internal/smtp"
)

// plans computes, for each next-hop key with recipients still to deliver,
// the transfer plan delivery would use now: the route's first resolved
// target that the hop cache knows, its keywords minus the route's discard
// list, and the message's needs (deliver.Plan, as delivery makes it).
func (s *server) plans(ctx context.Context, info *queue.MessageInfo) []HopPlan {
	table := s.routes()
	if table == nil || s.opts.Hops == nil || info.Env == nil {
		return nil
	}
	byHop := map[string][]int{}
	for _, r := range info.Rcpts {
		if r.State == queue.Pending || r.State == queue.Deferred {
			byHop[r.Hop] = append(byHop[r.Hop], r.Index)
		}
	}
	if len(byHop) == 0 {
		return nil
	}
	scan, scanErr := scanBody(info)
	var out []HopPlan
	for _, hop := range slices.Sorted(maps.Keys(byHop)) {
		rt := table.Lookup(hop)
		hp := HopPlan{Hop: hop, Route: rt.String()}
		switch hi, err := s.cachedHop(ctx, table, rt, hop); {
		case err != nil:
			hp.Note = "routing failed: " + err.Error()
		case hi == nil:
			hp.Note = "no next hop of this route has been seen since the server started; the plan is made at the first connection"
		case scanErr != nil:
			hp.NextHop, hp.Seen = hi.Hop, hi.Seen
			hp.Note = "cannot read the message: " + scanErr.Error()
		default:
			hp.NextHop, hp.Seen = hi.Hop, hi.Seen
			needs := deliver.NeedsOf(info.Env, byHop[hop], scan, info.Size)
			p, rep := PlanFor(needs, *hi, rt.Policy)
			if rep != nil {
				hp.Reply = rep.String()
			} else {
				hp.Plan = p.String()
			}
		}
		out = append(out, hp)
	}
	return out
}

// cachedHop returns the cache entry of the first target of rt for domain
// that the cache knows, or nil when none is known.
func (s *server) cachedHop(ctx context.Context, table *route.Table, rt route.Route, domain string) (*deliver.HopInfo, error) {
	targets, err := table.Resolve(ctx, rt, domain)
	if err != nil {
		return nil, err
	}
	for _, t := range targets {
		if hi, ok := s.opts.Hops.Get(t.HopKey()); ok {
			return &hi, nil
		}
	}
	return nil, nil
}

// scanBody scans a queued message's stored content.
func scanBody(info *queue.MessageInfo) (downgrade.Needs, error) {
	rc, err := info.Body()
	if err != nil {
		return downgrade.Needs{}, fmt.Errorf("opening %s: %w", info.ID, err)
	}
	defer rc.Close()
	n, err := downgrade.Scan(rc)
	if err != nil {
		return n, fmt.Errorf("scanning %s: %w", info.ID, err)
	}
	return n, nil
}

// PlanFor is the transfer plan delivery would make for a message with
// needs at the hop described by hi under policy pol: the hop's keywords
// minus the route's discard list; when content is converted, for the
// target the plan names (7-bit, or 8BITMIME keeping the 8-bit parts the
// hop takes, RFC 6152 §3). A non-nil reply means the message cannot go to
// this hop at all.
func PlanFor(needs deliver.MessageNeeds, hi deliver.HopInfo, pol route.Policy) (deliver.TransferPlan, *smtp.Reply) {
	return deliver.Plan(needs, Offered(hi, pol), pol)
}

// Offered returns the keywords delivery uses at the hop: those it offered
// minus the route's discard list (like Postfix's
// smtp_discard_ehlo_keywords).
func Offered(hi deliver.HopInfo, pol route.Policy) smtp.Extensions {
	ext := maps.Clone(hi.Keywords)
	if ext == nil {
		ext = smtp.Extensions{}
	}
	for _, k := range pol.DiscardKeywords {
		delete(ext, strings.ToUpper(k))
	}
	return ext
}
