package dkimtest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
)

// Python is Debian's interpreter, which has python3-dkim (the first
// python3 on PATH may be another without it).
const Python = "/usr/bin/python3"

// NeedDkimpy skips the test when dkimpy cannot be imported; .ci/run
// installs it (Debian package python3-dkim).
func NeedDkimpy(t testing.TB) {
	t.Helper()
	if err := exec.Command(Python, "-c", "import dkim").Run(); err != nil {
		t.Skipf("dkimpy (python3-dkim) not available to %s: %v; .ci/run installs it", Python, err)
	}
}

// verifyScript reads a JSON request on stdin: {"keys": {name: record},
// "messages": [path...], "sign": {...}} and prints one JSON result per
// message: DKIM verification of every signature and the ARC chain.
const verifyScript = `
import sys, json, dkim
req = json.load(sys.stdin)
keys = {k.lower().rstrip('.'): v for k, v in req["keys"].items()}
def dnsfunc(name, timeout=5):
    n = name.decode() if isinstance(name, bytes) else name
    v = keys.get(n.lower().rstrip('.'))
    return v.encode() if v is not None else None
out = []
for path in req["messages"]:
    msg = open(path, "rb").read()
    d = dkim.DKIM(msg)
    sigs = [v for (k, v) in d.headers if k.lower() == b"dkim-signature"]
    res = []
    for i in range(len(sigs)):
        try:
            ok = dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc)
        except Exception as e:
            ok = False
        tags = dkim.util.parse_tag_value(b"".join(sigs[i].split()))
        res.append({"d": tags.get(b"d", b"").decode(), "s": tags.get(b"s", b"").decode(), "ok": bool(ok)})
    cv, _, reason = dkim.arc_verify(msg, dnsfunc=dnsfunc)
    cv = cv.decode() if isinstance(cv, bytes) else str(cv)
    out.append({"dkim": res, "arc": cv, "arc_reason": reason})
json.dump(out, sys.stdout)
`

// Signature is dkimpy's verdict on one DKIM-Signature field.
type Signature struct {
	Domain   string `json:"d"`
	Selector string `json:"s"`
	OK       bool   `json:"ok"`
}

// Verdict is dkimpy's verdict on one message: every DKIM signature, top
// first, and the ARC chain ("pass", "fail", "none").
type Verdict struct {
	DKIM      []Signature `json:"dkim"`
	ARC       string      `json:"arc"`
	ARCReason string      `json:"arc_reason"`
}

// Verify runs dkimpy over the message files, with keys (DNS name → TXT
// record value) as its only source of public keys, and returns one verdict
// per file.
func Verify(t testing.TB, keys map[string]string, files ...string) []Verdict {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"keys": keys, "messages": files})
	cmd := exec.Command(Python, "-c", verifyScript)
	cmd.Stdin = bytes.NewReader(req)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("dkimpy: %v\n%s", err, stderr.String())
	}
	var out []Verdict
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("dkimpy output %q: %v", stdout.String(), err)
	}
	return out
}

// VerifyBytes writes each message to a file in the test's directory and
// verifies them with Verify.
func VerifyBytes(t testing.TB, keys map[string]string, msgs ...[]byte) []Verdict {
	t.Helper()
	dir := t.TempDir()
	var files []string
	for i, m := range msgs {
		p := dir + "/" + string(rune('a'+i%26)) + itoa(i) + ".eml"
		if err := os.WriteFile(p, m, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	return Verify(t, keys, files...)
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// signScript signs a message on stdin with dkimpy: argv are selector,
// domain, key file, algorithm; prints the DKIM-Signature field.
const signScript = `
import sys, dkim
sel, dom, keyfile, alg = sys.argv[1:5]
msg = sys.stdin.buffer.read()
key = open(keyfile, "rb").read()
sig = dkim.sign(msg, sel.encode(), dom.encode(), key, canonicalize=(b"relaxed", b"relaxed"),
    signature_algorithm=alg.encode(), include_headers=[b"from", b"to", b"subject", b"date", b"content-type", b"content-transfer-encoding", b"mime-version"])
sys.stdout.buffer.write(sig)
`

// Sign returns msg signed upstream by dkimpy with the key in keyFile (PEM;
// for Ed25519 dkimpy wants the raw 32-octet seed in base64, see
// Ed25519Seed) for selector and domain: the DKIM-Signature field
// prepended.
func Sign(t testing.TB, msg []byte, selector, domain, keyFile, alg string) []byte {
	t.Helper()
	cmd := exec.Command(Python, "-c", signScript, selector, domain, keyFile, alg)
	cmd.Stdin = bytes.NewReader(msg)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("dkimpy sign: %v\n%s", err, stderr.String())
	}
	return append(stdout.Bytes(), msg...)
}

// signAllScript signs many message files in one process: argv are
// selector, domain, key file, then pairs of input and output paths.
const signAllScript = `
import sys, dkim
sel, dom, keyfile = sys.argv[1:4]
key = open(keyfile, "rb").read()
paths = sys.argv[4:]
for i in range(0, len(paths), 2):
    msg = open(paths[i], "rb").read()
    sig = dkim.sign(msg, sel.encode(), dom.encode(), key, canonicalize=(b"relaxed", b"relaxed"),
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id", b"content-type", b"content-transfer-encoding", b"mime-version"])
    open(paths[i+1], "wb").write(sig + msg)
`

// SignAll signs every message with dkimpy (rsa-sha256, relaxed/relaxed)
// in one process and returns the signed messages in order.
func SignAll(t testing.TB, msgs [][]byte, selector, domain, keyFile string) [][]byte {
	t.Helper()
	dir := t.TempDir()
	args := []string{"-c", signAllScript, selector, domain, keyFile}
	for i, m := range msgs {
		in := dir + "/in" + itoa(i) + ".eml"
		if err := os.WriteFile(in, m, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, in, dir+"/out"+itoa(i)+".eml")
	}
	cmd := exec.Command(Python, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("dkimpy sign: %v\n%s", err, stderr.String())
	}
	out := make([][]byte, len(msgs))
	for i := range msgs {
		b, err := os.ReadFile(dir + "/out" + itoa(i) + ".eml")
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}
