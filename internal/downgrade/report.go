package downgrade

import (
	"fmt"
	"slices"
	"strings"
)

// Options tunes Convert. The zero value is ready to use.
type Options struct {
	// MemoryLimit is how many octets of one leaf body are held in memory
	// before the rest is spilled to a temporary file (default 4 MiB).
	MemoryLimit int
	// TempDir is where spill files go ("" means os.TempDir()).
	TempDir string
	// MaxHeaderBytes bounds one header section (default 1 MiB); a larger
	// one is ErrMalformed.
	MaxHeaderBytes int
	// MaxDepth bounds the nesting of multipart and message entities
	// (default 50); deeper entities are treated as leaves.
	MaxDepth int
	// EightBit selects the 8BITMIME target, for a next hop that offers
	// 8BITMIME (RFC 6152) but not BINARYMIME (RFC 3030): only leaves with
	// a NUL, a bare CR or LF or a line over 998 octets
	// (RFC 5321 §4.5.3.1.6) are encoded; every other leaf, 8-bit text
	// included, is copied byte for byte, except that a "binary" label
	// becomes "8bit". A composite labelled binary (or with a label
	// Convert does not know) is relabelled 8bit. Header fields are
	// treated as for the 7-bit target unless UTF8Headers is set. The
	// output is then sent with BODY=8BITMIME. False (the zero value) is
	// the 7-bit target.
	EightBit bool
	// UTF8Headers, with EightBit, says the message goes with SMTPUTF8
	// (RFC 6531): header fields with 8-bit text are then copied as they
	// are (RFC 6532 §3.2), only folded when a line is over 998 octets.
	// Without EightBit it has no effect: 8-bit header text is encoded.
	UTF8Headers bool
}

func (o Options) withDefaults() Options {
	if o.MemoryLimit <= 0 {
		o.MemoryLimit = 4 << 20
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 1 << 20
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = 50
	}
	return o
}

// Report says what Convert did.
type Report struct {
	// Changed is true when the output differs from the input.
	Changed bool `json:"changed"`
	// Parts lists the leaves whose body was re-encoded.
	Parts []PartReport `json:"parts,omitempty"`
	// Relabelled lists composite parts whose 8bit or binary label became
	// 7bit (RFC 2045 §6.4), or whose binary label became 8bit for the
	// 8BITMIME target; "" is the top-level entity.
	Relabelled []string `json:"relabelled,omitempty"`
	// EightBit is set when the output is for the 8BITMIME target
	// (Options.EightBit).
	EightBit bool `json:"eight_bit,omitempty"`
	// Kept8Bit counts the leaves with octets above 127 that the 8BITMIME
	// target copied as they were.
	Kept8Bit int `json:"kept_8bit,omitempty"`
	// Headers lists header fields rewritten with RFC 2047 encoded-words.
	Headers []HeaderReport `json:"headers,omitempty"`
	// DKIMSigned is true when the top-level header has a DKIM-Signature
	// field: changing the message invalidates it (RFC 6376 §5.3).
	DKIMSigned bool `json:"dkim_signed"`
	// Repairs lists fixes of malformed input (see the package doc).
	Repairs []Repair `json:"repairs,omitempty"`
	// BytesIn and BytesOut count the whole message before and after.
	BytesIn  int64 `json:"bytes_in"`
	BytesOut int64 `json:"bytes_out"`
}

// PartReport describes one re-encoded leaf.
type PartReport struct {
	Path        string `json:"path"`         // MIME part path, e.g. "1.2" (IMAP numbering)
	ContentType string `json:"content_type"` // media type as declared, lower case ("" if none)
	OldCTE      string `json:"old_cte"`      // the label before ("" if none)
	NewCTE      string `json:"new_cte"`      // "quoted-printable" or "base64"; "8bit" for a binary leaf kept (8BITMIME target)
	Reason      string `json:"reason"`       // what the target could not take: "8-bit", "NUL", "bare CR", "bare LF", "long lines" (joined with " and "), or "no BINARYMIME"
	BytesIn     int64  `json:"bytes_in"`     // body octets before
	BytesOut    int64  `json:"bytes_out"`    // body octets after
}

// HeaderReport names one header field rewritten with encoded-words.
type HeaderReport struct {
	Part  string `json:"part"`  // "" for the top-level header
	Field string `json:"field"` // field name as written
}

// Repair describes one fix of malformed input.
type Repair struct {
	Part string `json:"part"`
	What string `json:"what"`
}

// Summary returns a one-line account for the mail log, such as
// "converted 2 parts (8bit→quoted-printable, binary→base64), 1 header encoded".
func (r *Report) Summary() string {
	if !r.Changed {
		return "unchanged"
	}
	var parts []string
	if n := len(r.Parts); n > 0 {
		kinds := make([]string, 0, n)
		for _, p := range r.Parts {
			old := p.OldCTE
			if old == "" {
				old = "7bit"
			}
			k := old + "→" + p.NewCTE
			if !slices.Contains(kinds, k) {
				kinds = append(kinds, k)
			}
		}
		parts = append(parts, fmt.Sprintf("converted %d %s (%s)", n, plural(n, "part"), strings.Join(kinds, ", ")))
	}
	if n := len(r.Headers); n > 0 {
		parts = append(parts, fmt.Sprintf("%d %s encoded", n, plural(n, "header")))
	}
	if n := len(r.Relabelled); n > 0 {
		label := "7bit"
		if r.EightBit {
			label = "8bit"
		}
		parts = append(parts, fmt.Sprintf("%d composite %s relabelled %s", n, plural(n, "part"), label))
	}
	if n := r.Kept8Bit; n > 0 {
		parts = append(parts, fmt.Sprintf("%d 8-bit %s kept", n, plural(n, "part")))
	}
	if n := len(r.Repairs); n > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", n, plural(n, "repair")))
	}
	if r.DKIMSigned {
		parts = append(parts, "DKIM signature invalidated")
	}
	return strings.Join(parts, ", ")
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
