package admin

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"syscall"
)

// UnixHost is the Host header requests over the admin Unix socket carry
// (curl --unix-socket SOCKET http://localhost/queue); any other is
// refused.
const UnixHost = "localhost"

// maxPostBody bounds the JSON body of a state-changing request.
const maxPostBody = 1 << 20

// minTokenLen is the shortest bearer token LoadToken accepts.
const minTokenLen = 16

// Guard says who may use the admin API on one listener.
type Guard struct {
	// Addr is the listener's own address: "host:port" as bound for TCP,
	// or the socket path. Requests whose Host header is not this address
	// are refused (DNS rebinding).
	Addr string
	// Token, when not empty, is the bearer token every request must
	// carry in "Authorization: Bearer TOKEN" (RFC 6750 §2.1).
	Token string
}

// Protect wraps the admin API handler h with g's checks, in this order:
// a Host that is not the listener's own address, or an Origin of another
// site (a web page's request), is refused with 403; a missing or wrong
// token with 401; a state-changing request (any method but GET and HEAD)
// without a JSON body (Content-Type application/json) with 415 or 400.
func Protect(h http.Handler, g Guard) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.hostOK(r.Host) {
			writeJSON(w, http.StatusForbidden, ErrorBody{Error: fmt.Sprintf("Host %q is not this admin listener's address", r.Host)})
			return
		}
		if err := sameOrigin(r); err != nil {
			writeJSON(w, http.StatusForbidden, ErrorBody{Error: err.Error()})
			return
		}
		if g.Token != "" && !tokenOK(r, g.Token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ferry admin"`)
			writeJSON(w, http.StatusUnauthorized, ErrorBody{Error: "this admin listener requires the bearer token of admin.token_file"})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if code, err := jsonBody(r); err != nil {
				writeJSON(w, code, ErrorBody{Error: err.Error()})
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// hostOK reports whether host (the request's Host header) names this
// listener: over a Unix socket UnixHost; over TCP the bound address with
// its port, "localhost:PORT" for a loopback listener, or any IP literal
// with the port for a listener on every address. Host names other than
// localhost are never accepted: a DNS-rebinding page has one.
func (g Guard) hostOK(host string) bool {
	if IsUnixSocket(g.Addr) {
		return host == UnixHost
	}
	lh, lp, err := net.SplitHostPort(g.Addr)
	if err != nil {
		return false
	}
	h, p, err := net.SplitHostPort(host)
	if err != nil || p != lp {
		return false
	}
	lip, err := netip.ParseAddr(lh)
	if err != nil {
		return false
	}
	if h == "localhost" {
		return lip.IsLoopback()
	}
	ip, err := netip.ParseAddr(h)
	if err != nil {
		return false
	}
	return lip.IsUnspecified() || ip.Unmap() == lip.Unmap()
}

// sameOrigin refuses a request a browser sent on behalf of another site
// (RFC 6454 §7.3, Fetch metadata): an Origin other than the request's own
// http://HOST, or Sec-Fetch-Site cross-site or same-site.
func sameOrigin(r *http.Request) error {
	if o := r.Header.Get("Origin"); o != "" && !strings.EqualFold(o, "http://"+r.Host) {
		return fmt.Errorf("requests from origin %q are refused", o)
	}
	switch s := r.Header.Get("Sec-Fetch-Site"); s {
	case "", "same-origin", "none":
	default:
		return fmt.Errorf("requests from another site (Sec-Fetch-Site: %s) are refused", s)
	}
	return nil
}

// tokenOK compares the request's bearer token with want in constant time.
func tokenOK(r *http.Request, want string) bool {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(want)) == 1
}

// jsonBody checks that r carries a JSON object as Content-Type
// application/json, and leaves it readable again in r.Body.
func jsonBody(r *http.Request) (int, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return http.StatusUnsupportedMediaType, fmt.Errorf("%s %s: want a JSON body (Content-Type: application/json), got Content-Type %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxPostBody+1))
	if err != nil {
		return http.StatusBadRequest, fmt.Errorf("reading the request body: %w", err)
	}
	if len(b) > maxPostBody {
		return http.StatusRequestEntityTooLarge, fmt.Errorf("request body over %d octets", maxPostBody)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return http.StatusBadRequest, fmt.Errorf("%s %s: want a JSON object as the body: %w", r.Method, r.URL.Path, err)
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return 0, nil
}

// LoadToken reads the bearer token of a TCP admin listener from path. It
// refuses a file that is missing, not owned by the user the server runs
// as, or open to its group or others (any of the mode bits 0077), and a
// token shorter than 16 characters.
func LoadToken(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("admin API: a TCP admin listener needs admin.token_file (a file with a bearer token)")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("admin token file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("admin token file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("admin token file %s: mode %04o lets its group or others read it; want 0600 or 0400 (chmod 600 %s)", path, perm, path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return "", fmt.Errorf("admin token file %s: owned by uid %d, not by the service user (uid %d)", path, st.Uid, os.Geteuid())
	}
	tok, err := ReadToken(path)
	if err != nil {
		return "", err
	}
	if len(tok) < minTokenLen {
		return "", fmt.Errorf("admin token file %s: the token has %d characters; want at least %d", path, len(tok), minTokenLen)
	}
	return tok, nil
}

// ReadToken reads a bearer token from path as a client does: the file's
// content without surrounding white space.
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("admin token file %s is empty", path)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("admin token file %s: want one token without white space", path)
	}
	return tok, nil
}
