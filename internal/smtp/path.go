package smtp

// Path is a reverse or forward path (RFC 5321 §4.1.2) with any source route
// dropped. The null reverse path "<>" has an empty LocalPart and Domain.
type Path struct {
	// LocalPart is the local part with quoting removed (the unquoted
	// content of a Quoted-string).
	LocalPart string
	// Domain is the domain or address literal ("[192.0.2.1]") as given.
	Domain string
}

// IsNull reports whether p is the null path "<>".
func (p Path) IsNull() bool { return p.LocalPart == "" && p.Domain == "" }
