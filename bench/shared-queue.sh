#!/usr/bin/env bash
# bench/shared-queue.sh: end to end through relays sharing one PostgreSQL
# queue, against one relay on its segment log, in one run, on loopback.
#
# Starts a private PostgreSQL cluster (initdb in a temporary directory as the
# unprivileged user ferry-pg, postgres or nobody; Unix socket only), then per
# set-up: the relays ("ferry serve"), a counting sink (inside "ferry bench")
# as every relay's next hop, and one "ferry bench" per relay driving it at
# the same time. Set-ups:
#   segment-1   one relay, segment log (the baseline)
#   postgres-1  one relay on the shared queue
#   postgres-2  two relays on the shared queue, the load split between them
# Prints accepted and end-to-end msgs/s per set-up, and the ratios of the
# set-ups' end-to-end rates. The clients of one set-up share a run ID and
# number their messages apart, so the one sink counts every message,
# whichever relay delivered it (end to end = every message of the run over
# the time from the first 250 to the last arrival).
#
# Usage: bench/shared-queue.sh [--messages N] [--sessions S] [--size 4KiB] [--keep]
#   --keep  keep the work directory (relay logs, bench JSON) and name it at the end
set -euo pipefail

messages=2000 sessions=32 size=4KiB keep=0
while [ $# -gt 0 ]; do
	case "$1" in
	--messages) messages=$2; shift ;;
	--sessions) sessions=$2; shift ;;
	--size) size=$2; shift ;;
	--keep) keep=1 ;;
	-h|--help) sed -n '2,20p' "$0"; exit 0 ;;
	*) echo "shared-queue.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ]; then echo "shared-queue.sh: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 2; fi
work=$(mktemp -d /tmp/ferry-sharedq.XXXXXX)
# The relays' PIDs go to a file: serve runs in a command substitution (a
# subshell), where appending to an array would not reach this shell, and
# the relays would outlive their set-up and the script.
pidfile=$work/relays.pids
: >"$pidfile"
stop_relays() {
	local p
	while read -r p; do kill "$p" 2>/dev/null || true; done <"$pidfile"
	while read -r p; do
		for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null || true
	done <"$pidfile"
	: >"$pidfile"
}
cleanup() {
	stop_relays
	wait 2>/dev/null || true
	[ -d "$work/pg/data" ] && ${pgrun:-} "$bin/pg_ctl" -D "$work/pg/data" -m fast -w stop >/dev/null 2>&1 || true
	if [ "$keep" = 1 ]; then echo "shared-queue.sh: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

(cd "$repo" && go build -o "$work/ferry" ./cmd/ferry)
ferry=$work/ferry

pgrun=""
if [ "$(id -u)" = 0 ]; then
	for u in ferry-pg postgres nobody; do
		if id "$u" >/dev/null 2>&1; then pgrun="runuser -u $u --"; break; fi
	done
fi
mkdir -p "$work/pg" && chmod 755 "$work"
if [ -n "$pgrun" ]; then chown "$(echo "$pgrun" | awk '{print $3}')" "$work/pg"; fi
$pgrun "$bin/initdb" -D "$work/pg/data" -U ferry --auth=trust --no-sync >/dev/null
cat >>"$work/pg/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$work/pg'
max_connections = 200
fsync = on
synchronous_commit = on
EOF
$pgrun "$bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w start >/dev/null

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# serve NAME FLAGS...: starts a relay, prints its SMTP address.
serve() {
	local name=$1; shift
	"$ferry" serve --listen 127.0.0.1:0 --admin off --hostname "$name.bench" --spool "$work/$name" "$@" \
		>"$work/$name.out" 2>"$work/$name.log" &
	echo $! >>"$pidfile"
	for _ in $(seq 1 600); do
		if addr=$(grep -o 'listening on .*' "$work/$name.out" 2>/dev/null | head -1 | awk '{print $3}') && [ -n "$addr" ]; then
			echo "$addr"; return
		fi
		sleep 0.1
	done
	echo "shared-queue.sh: $name did not start" >&2; cat "$work/$name.log" >&2; exit 1
}

run() { # NAME RELAYS BACKEND
	local name=$1 n=$2 backend=$3 sink per addrs=() i db url
	sink="127.0.0.1:$(freeport)"
	if [ "$backend" = postgres ]; then
		db="bench_$name"; db=${db//-/_}
		$pgrun "$bin/psql" -q -h "$work/pg" -U ferry -d postgres -c "CREATE DATABASE $db" >/dev/null
		url="postgres://ferry@/$db?host=$work/pg"
	fi
	for i in $(seq 1 "$n"); do
		if [ "$backend" = postgres ]; then
			addrs+=("$(serve "$name-$i" --queue-url "$url" --route "*=[${sink%:*}]:${sink##*:}")")
		else
			addrs+=("$(serve "$name-$i" --route "*=[${sink%:*}]:${sink##*:}")")
		fi
	done
	per=$((messages / n))
	local jobs=() runid="$name-$$"
	# One run over every relay: the clients share a run ID and number their
	# messages apart (--seq-base), so the one sink counts every message,
	# whichever relay delivers it, and waits for all of them.
	"$ferry" bench --target "${addrs[0]}" --sink-listen "$sink" --run-id "$runid" --sink-messages $((per * n)) \
		--expect $((per * n)) --sink-timeout 30s --messages "$per" \
		--sessions $((sessions / n)) --size "$size" --json >"$work/$name.json" 2>"$work/$name.bench.log" &
	jobs+=($!)
	sleep 0.5 # the sink listens before the other relays' load starts
	for i in $(seq 2 "$n"); do
		"$ferry" bench --target "${addrs[$((i - 1))]}" --run-id "$runid" --seq-base $(((i - 1) * per)) --messages "$per" \
			--sessions $((sessions / n)) --size "$size" --json >"$work/$name.$i.json" 2>/dev/null &
		jobs+=($!)
	done
	for j in "${jobs[@]}"; do wait "$j"; done
	python3 - "$name" "$work" "$n" <<'EOF'
import json, sys
name, work, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = json.load(open(f"{work}/{name}.json"))
others = [json.load(open(f"{work}/{name}.{i}.json")) for i in range(2, n + 1)]
acc = r["accept_rate"] + sum(o["accept_rate"] for o in others)
s = r.get("sink") or {}
e2e = s.get('end_to_end_rate', 0)
print(f"{name:12s} relays={n}  accepted {acc:7.0f} msgs/s (sum over relays)  end-to-end {e2e:7.0f} msgs/s  "
      f"delivered={s.get('distinct', '?')}/{s.get('expected', '?')} duplicates={s.get('duplicates', '?')} missing={s.get('missing', '?')} foreign={s.get('foreign', '?')}"
      + (f"  ({s['wait_error']})" if s.get('wait_error') else ""))
with open(f"{work}/rates", "a") as f:
    f.write(f"{name} {e2e}\n")
EOF
	stop_relays
	if [ "$backend" = postgres ]; then
		# Database transactions per message delivered: the relays' share of
		# the server's work, far less noisy than a rate on a shared machine.
		# Read once every relay's sessions have ended (and flushed their
		# statistics).
		local q="$pgrun $bin/psql -At -h $work/pg -U ferry -d postgres -c"
		for _ in $(seq 1 100); do
			[ "$($q "SELECT count(*) FROM pg_stat_activity WHERE datname = '$db'")" = 0 ] && break
			sleep 0.1
		done
		$q "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$db'" |
			awk -v name="$name" -v m=$((per * n)) '{printf "%-12s database transactions %d, %.1f per message\n", name, $1, $1 / m}'
	fi
}

echo "messages=$messages sessions=$sessions size=$size (PostgreSQL $("$bin/postgres" --version | awk '{print $3}'))"
run segment-1 1 segment
run postgres-1 1 postgres
run postgres-2 2 postgres
python3 - "$work/rates" <<'EOF'
import sys
r = dict(l.split() for l in open(sys.argv[1]))
p1, p2, s1 = float(r["postgres-1"]), float(r["postgres-2"]), float(r["segment-1"])
if p1 > 0 and s1 > 0:
    print(f"end to end, same run: postgres-2 / postgres-1 = {p2 / p1:.2f}, postgres-1 / segment-1 = {p1 / s1:.2f}")
EOF
