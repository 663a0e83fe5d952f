package deliver

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/ferrymta/ferry/internal/downgrade"
)

// Downgrader is the Converter backed by internal/downgrade: a lossless,
// streaming conversion to 7-bit MIME, or, for a hop that offers 8BITMIME
// (ConversionTarget.EightBit), to 8BITMIME: then only the parts the hop
// cannot take (a NUL, a bare CR or LF, a line over 998 octets) are encoded
// and 8-bit parts are kept as they are; header fields keep their 8-bit
// text only when the message goes with SMTPUTF8. The zero value converts
// with fresh buffers each time; NewDowngrader's keeps the converters'
// buffers (about 0.5 MiB each) for the next message.
type Downgrader struct {
	// Options tune downgrade.Convert (memory limit, temporary directory).
	Options downgrade.Options
	// converters holds idle *downgrade.Converter; nil in the zero value.
	converters *sync.Pool
}

// NewDowngrader returns a Downgrader with opts that reuses its converters
// from message to message, one per conversion in progress.
func NewDowngrader(opts downgrade.Options) Downgrader {
	return Downgrader{Options: opts, converters: &sync.Pool{}}
}

// Convert converts src for target t: to 7-bit MIME, or to 8BITMIME when
// t.EightBit is set (downgrade.Options.EightBit, and UTF8Headers for
// t.SMTPUTF8). A *downgrade.Error means the message cannot be converted
// losslessly: 5.6.5, or 5.6.9 when its header needs SMTPUTF8.
func (d Downgrader) Convert(dst io.Writer, src io.Reader, t ConversionTarget) (ConversionReport, error) {
	opts := d.Options
	opts.EightBit, opts.UTF8Headers = t.EightBit, t.SMTPUTF8
	var rep *downgrade.Report
	var err error
	if d.converters == nil {
		rep, err = downgrade.Convert(dst, src, opts)
	} else {
		cv, _ := d.converters.Get().(*downgrade.Converter)
		if cv == nil {
			cv = &downgrade.Converter{}
		}
		cv.Options = opts
		rep, err = cv.Convert(dst, src)
		d.converters.Put(cv)
	}
	if rep == nil {
		return ConversionReport{}, err
	}
	return ConversionReport{Changed: rep.Changed, Summary: summarize(rep), DKIMSigned: rep.DKIMSigned && rep.Changed}, err
}

// summarize describes a downgrade report in a few words.
func summarize(rep *downgrade.Report) string {
	if !rep.Changed {
		return "unchanged"
	}
	var parts []string
	for _, p := range rep.Parts {
		why := ""
		if rep.EightBit && p.Reason != "" {
			// For 8BITMIME, say what the hop could not take: the
			// kinds stay the last word, which the admin metrics read.
			why = "(" + p.Reason + ") "
		}
		parts = append(parts, fmt.Sprintf("%s %s%s→%s", partName(p.Path), why, cteName(p.OldCTE), p.NewCTE))
	}
	if rep.Kept8Bit > 0 {
		parts = append(parts, fmt.Sprintf("%d 8-bit part(s) kept", rep.Kept8Bit))
	}
	if len(rep.Headers) > 0 {
		parts = append(parts, fmt.Sprintf("%d header field(s) RFC 2047-encoded", len(rep.Headers)))
	}
	if len(rep.Relabelled) > 0 {
		label := "7bit"
		if rep.EightBit {
			label = "8bit"
		}
		parts = append(parts, fmt.Sprintf("%d composite part(s) relabelled %s", len(rep.Relabelled), label))
	}
	if len(rep.Repairs) > 0 {
		parts = append(parts, fmt.Sprintf("%d repair(s)", len(rep.Repairs)))
	}
	parts = append(parts, fmt.Sprintf("%d→%d octets", rep.BytesIn, rep.BytesOut))
	return strings.Join(parts, ", ")
}

func partName(p string) string {
	if p == "" {
		return "body"
	}
	return "part " + p
}

func cteName(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
