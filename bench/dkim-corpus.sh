#!/usr/bin/env bash
# bench/dkim-corpus.sh: the DKIM-after-conversion figure. Relays a corpus of
# 120 generated messages (8-bit, binary, multipart, long lines, some 7-bit
# clean), each signed upstream by dkimpy before the relay, through the built
# ferry binary to a next hop without 8BITMIME, and prints the share whose
# DKIM signature verifies there (judged by dkimpy, Debian's python3-dkim):
# Ferry's signature made after the conversion, against the signature made
# before it, in one run. Then the signing cost per message (go test -bench).
# See docs/dkim.md. Usage: bench/dkim-corpus.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
go test -count=1 -run 'TestDKIMCorpusFigure$' -v ./internal/e2e | sed -n 's/.*FIGURE //p'
go test -run - -bench 'Sign$' -benchtime 2s ./internal/dkim | grep -E '^Benchmark' |
	awk '{ printf "%-36s %10.1f µs/message\n", $1, $3 / 1000 }'
