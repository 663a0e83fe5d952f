package deliver

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/ferrymta/ferry/internal/downgrade"
)

// Downgrader is the Converter backed by internal/downgrade: a lossless,
// streaming conversion to 7-bit MIME. Its output is always 7-bit. The zero
// value converts with fresh buffers each time; NewDowngrader's keeps the
// converters' buffers (about 0.5 MiB each) for the next message.
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

// Convert converts src to 7-bit MIME; allow8Bit is ignored (downgrade
// always encodes every 8-bit leaf). A *downgrade.Error means the message
// cannot be converted losslessly: 5.6.5, or 5.6.9 when its header needs
// SMTPUTF8.
func (d Downgrader) Convert(dst io.Writer, src io.Reader, _ bool) (ConversionReport, error) {
	var rep *downgrade.Report
	var err error
	if d.converters == nil {
		rep, err = downgrade.Convert(dst, src, d.Options)
	} else {
		cv, _ := d.converters.Get().(*downgrade.Converter)
		if cv == nil {
			cv = &downgrade.Converter{Options: d.Options}
		}
		rep, err = cv.Convert(dst, src)
		d.converters.Put(cv)
	}
	if rep == nil {
		return ConversionReport{}, err
	}
	return ConversionReport{Changed: rep.Changed, Summary: summarize(rep), DKIMSigned: rep.DKIMSigned && rep.Changed}, err
}

// SevenBitOutput reports that Downgrader's output is always 7-bit.
func (Downgrader) SevenBitOutput() bool { return true }

// summarize describes a downgrade report in a few words.
func summarize(rep *downgrade.Report) string {
	if !rep.Changed {
		return "unchanged"
	}
	var parts []string
	for _, p := range rep.Parts {
		parts = append(parts, fmt.Sprintf("%s %s→%s", partName(p.Path), cteName(p.OldCTE), p.NewCTE))
	}
	if len(rep.Headers) > 0 {
		parts = append(parts, fmt.Sprintf("%d header field(s) RFC 2047-encoded", len(rep.Headers)))
	}
	if len(rep.Relabelled) > 0 {
		parts = append(parts, fmt.Sprintf("%d composite part(s) relabelled 7bit", len(rep.Relabelled)))
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
