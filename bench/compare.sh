#!/usr/bin/env bash
# bench/compare.sh: Ferry against Postfix and maddy, side by side, in one run, on loopback.
#
# Runs, on this machine (root, Debian's postfix installed):
#   - a counting sink (inside each "ferry bench" run) as the next hop of both relays;
#   - a private Postfix relay instance (bench/postfixrelay, internal/postfixtest's
#     set-up: own config/queue/data dirs under /var/tmp, relayhost = the sink,
#     mynetworks = loopback, no local delivery);
#   - maddy (a Go MTA; release $maddy_version built by this script from the Go
#     module proxy into the work dir, never committed) as a queueing relay
#     (target.queue, fsync before 250) to the same sink;
#   - "ferry serve" with a durable queue (fdatasync before every 250, the default)
#     relaying everything to the same sink;
# and for every scenario, R runs of: baseline (load generator straight into the
# sink), Postfix, maddy, Ferry, interleaved so that noise hits all alike. Each
# run also records the CPU of the load generator and sink (one process) per
# message: the budget a relay shares the machine with. Then
# 10,000 idle sessions held by Ferry, with resident memory per session.
# Prints one table of medians with the Ferry/Postfix ratios and writes it as JSON.
#
# Usage: bench/compare.sh [--quick] [--runs N] [--out FILE] [--budget SECONDS] [--keep]
#   --quick     small counts, one run each: a smoke run of the whole set-up (~1 min)
#   --runs N    runs per scenario and server (default 3; --quick: 1)
#   --out FILE  JSON output (default bench/results/latest.json; --quick: bench/results/quick.json)
#   --budget S  stop starting new runs after S seconds (default 1800; --quick 300)
#   --keep      keep the work directory (per-run JSON, logs)
# See docs/performance.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
quick=0 runs="" out="" budget="" keep=0
args="$*"
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--runs) runs=$2; shift ;;
	--out) out=$2; shift ;;
	--budget) budget=$2; shift ;;
	--keep) keep=1 ;;
	-h|--help) sed -n '2,24p' "$0"; exit 0 ;;
	*) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

if [ "$(id -u)" != 0 ]; then echo "compare.sh: needs root (a private Postfix instance)" >&2; exit 2; fi
maddy_version=v0.8.1
if [ ! -x /usr/sbin/postfix ]; then echo "compare.sh: Debian's postfix is not installed (apt-get install postfix)" >&2; exit 2; fi

if [ "$quick" = 1 ]; then
	runs=${runs:-1} budget=${budget:-300} out=${out:-$repo/bench/results/quick.json}
	m_small=300 m_big=100 m_many=600 idle_n=1000
else
	runs=${runs:-3} budget=${budget:-1800} out=${out:-$repo/bench/results/latest.json}
	m_small=5000 m_big=2000 m_many=6000 idle_n=10000
fi
# Scenario table: name sessions messages size kind sink-keywords ("-": Ferry's default set, with 8BITMIME).
no8bit="PIPELINING,SIZE,ENHANCEDSTATUSCODES"
scenarios=(
	"s20x4KiB 20 $m_small 4KiB ascii -"
	"s20x64KiB 20 $m_big 64KiB ascii -"
	"s200x4KiB 200 $m_many 4KiB ascii -"
	"8bit-to-7bit 20 $m_small 4KiB 8bit $no8bit"
)

start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
remaining() { echo $(( budget - $(elapsed) )); }

work=$(mktemp -d /var/tmp/ferry-compare.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/results" "$(dirname "$out")"
ferry_pid="" relay_pid="" maddy_pid=""
cleanup() {
	set +e
	[ -n "$ferry_pid" ] && kill -TERM "$ferry_pid" 2>/dev/null && wait "$ferry_pid" 2>/dev/null
	[ -n "$maddy_pid" ] && kill -TERM "$maddy_pid" 2>/dev/null && wait "$maddy_pid" 2>/dev/null
	exec 7>&- 2>/dev/null # EOF on postfixrelay's stdin: it stops Postfix and removes its dirs
	[ -n "$relay_pid" ] && kill -TERM "$relay_pid" 2>/dev/null && wait "$relay_pid" 2>/dev/null
	if [ "$keep" = 1 ]; then echo "compare.sh: work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Sessions: the load generator and Ferry each hold 10,000+ sockets in the idle test.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

echo "compare.sh: building (work dir $work)" >&2
(cd "$repo" && go build -o "$work/ferry" ./cmd/ferry && go build -o "$work/postfixrelay" ./bench/postfixrelay && go build -o "$work/report" ./bench/report)
# maddy, pinned, in a throw-away module in the work dir (the module and its
# binary are never part of the repository).
mkdir -p "$work/maddy-build" "$work/maddy/state" "$work/maddy/run"
# maddy's own go.mod replaces three modules with its forks; a module that
# requires maddy must say the same, so its replace lines are copied over.
(cd "$work/maddy-build" && go mod init maddy-build.invalid/bench > /dev/null 2>&1 &&
	go get -tool "github.com/foxcpp/maddy/cmd/maddy@$maddy_version" > build.log 2>&1 &&
	grep '^replace ' "$(go env GOMODCACHE)/github.com/foxcpp/maddy@$maddy_version/go.mod" >> go.mod &&
	go mod tidy >> build.log 2>&1 &&
	GOBIN="$work/bin" go install github.com/foxcpp/maddy/cmd/maddy >> build.log 2>&1) ||
	{ echo "compare.sh: building maddy $maddy_version failed:" >&2; tail -20 "$work/maddy-build/build.log" >&2; exit 1; }

# free_port prints a loopback port nobody listens on now.
free_port() {
	local p i
	for i in $(seq 1 200); do
		p=$(( 20000 + RANDOM % 30000 ))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
	done
	echo "compare.sh: no free port" >&2; exit 1
}
sink_port=$(free_port) ferry_port=$(free_port) postfix_port=$(free_port) maddy_port=$(free_port)
while [ "$ferry_port" = "$sink_port" ]; do ferry_port=$(free_port); done
while [ "$postfix_port" = "$sink_port" ] || [ "$postfix_port" = "$ferry_port" ]; do postfix_port=$(free_port); done
while [ "$maddy_port" = "$sink_port" ] || [ "$maddy_port" = "$ferry_port" ] || [ "$maddy_port" = "$postfix_port" ]; do maddy_port=$(free_port); done
sink=127.0.0.1:$sink_port

# Ferry: durable queue (default: fdatasync before 250), one route to the sink,
# limits raised so that 200 sessions and 10,000 idle ones from 127.0.0.1 are let in.
cat > "$work/ferry.toml" <<EOF
hostname = "ferry-relay.bench.invalid"
[limits]
max_connections = 20000
max_connections_per_ip = 20000
[log]
file = "$work/ferry.log"
EOF
"$work/ferry" serve --config "$work/ferry.toml" --listen "127.0.0.1:$ferry_port" --spool "$work/spool" \
	--route "*=[127.0.0.1]:$sink_port" --admin off > "$work/ferry.out" 2> "$work/ferry.err" &
ferry_pid=$!

# maddy: SMTP endpoint → on-disk queue → plain SMTP to the sink; no checks,
# no TLS, no limits.
cat > "$work/maddy.conf" <<EOF
hostname maddy-relay.bench.invalid
state_dir $work/maddy/state
runtime_dir $work/maddy/run
tls off
log $work/maddy.log
target.smtp sink_hop {
    starttls no
    targets tcp://127.0.0.1:$sink_port
}
target.queue relay_queue {
    target &sink_hop
    max_tries 20
}
smtp tcp://127.0.0.1:$maddy_port {
    hostname maddy-relay.bench.invalid
    deliver_to &relay_queue
}
EOF
"$work/bin/maddy" --config "$work/maddy.conf" run > "$work/maddy.out" 2> "$work/maddy.err" &
maddy_pid=$!

mkfifo "$work/relay.stdin"
"$work/postfixrelay" -sink "$sink" -port "$postfix_port" -max-life "$((budget + 600))s" \
	< "$work/relay.stdin" > "$work/relay.out" 2> "$work/relay.err" &
relay_pid=$!
exec 7> "$work/relay.stdin"

for i in $(seq 1 300); do
	grep -q "listening on" "$work/ferry.out" 2>/dev/null && grep -q "^addr=" "$work/relay.out" 2>/dev/null &&
		(exec 3<>"/dev/tcp/127.0.0.1/$maddy_port") 2>/dev/null && break
	if ! kill -0 "$maddy_pid" 2>/dev/null; then echo "compare.sh: maddy died:" >&2; cat "$work/maddy.err" "$work/maddy.log" >&2; exit 1; fi
	if ! kill -0 "$ferry_pid" 2>/dev/null; then echo "compare.sh: ferry serve died:" >&2; cat "$work/ferry.err" >&2; exit 1; fi
	if ! kill -0 "$relay_pid" 2>/dev/null; then echo "compare.sh: postfixrelay died:" >&2; cat "$work/relay.err" >&2; exit 1; fi
	sleep 0.1
done
grep -q "^addr=" "$work/relay.out" || { echo "compare.sh: Postfix did not start" >&2; cat "$work/relay.err" >&2; exit 1; }
postfix_pid=$(sed -n 's/^addr=[^ ]* pid=\([0-9]*\).*/\1/p' "$work/relay.out")
(exec 3<>"/dev/tcp/127.0.0.1/$maddy_port") 2>/dev/null || { echo "compare.sh: maddy did not start" >&2; cat "$work/maddy.err" "$work/maddy.log" >&2; exit 1; }
echo "compare.sh: sink $sink, ferry 127.0.0.1:$ferry_port (pid $ferry_pid), postfix 127.0.0.1:$postfix_port (master pid $postfix_pid), maddy 127.0.0.1:$maddy_port (pid $maddy_pid)" >&2

postfix_version=$(/usr/sbin/postconf -c "$(sed -n 's/.* dir=\(.*\)$/\1/p' "$work/relay.out")/conf" -h mail_version 2>/dev/null || echo unknown)
cat > "$work/results/machine.json" <<EOF
{"nproc": $(nproc), "kernel": "$(uname -r)", "go": "$(go version | awk '{print $3}')", "postfix": "$postfix_version", "maddy": "$maddy_version",
 "loadavg_at_start": "$(cut -d' ' -f1-3 /proc/loadavg)", "runs": $runs, "quick": $([ "$quick" = 1 ] && echo true || echo false)}
EOF

# one_run SCENARIO SERVER RUN SESSIONS MESSAGES SIZE KIND KEYWORDS
one_run() {
	local scn=$1 srv=$2 run=$3 sessions=$4 messages=$5 size=$6 kind=$7 kw=$8 left target cpu=()
	left=$(remaining)
	if [ "$left" -le 10 ]; then echo "compare.sh: budget spent; skipping $scn $srv run $run" >&2; return; fi
	case $srv in
	baseline) target=() ;;
	ferry) target=(--target "127.0.0.1:$ferry_port"); cpu=(--cpu-pid "$ferry_pid") ;;
	postfix) target=(--target "127.0.0.1:$postfix_port"); cpu=(--cpu-pid "$postfix_pid") ;;
	maddy) target=(--target "127.0.0.1:$maddy_port"); cpu=(--cpu-pid "$maddy_pid") ;;
	esac
	# The baseline is the load generator's ceiling, not a relay: it sends
	# 8-bit bodies as they are, so its sink keeps 8BITMIME.
	local kwargs=()
	[ "$kw" != - ] && [ "$srv" != baseline ] && kwargs=(--sink-keywords "$kw")
	local dl=$(( left < 300 ? left : 300 )) res=$work/results/${scn}__${srv}__${run}.json TIMEFORMAT="%3U %3S"
	{ time "$work/ferry" bench --json "${target[@]}" "${cpu[@]}" "${kwargs[@]}" --sink-listen "$sink" \
		--sessions "$sessions" --messages "$messages" --size "$size" --kind "$kind" \
		--deadline "${dl}s" --sink-timeout "$(( dl / 2 ))s" \
		> "$res" 2> "$work/results/${scn}__${srv}__${run}.err" || true; } 2> "$res.time"
	# The load generator's and sink's own CPU (the "ferry bench" process,
	# user + system), recorded in the run's report.
	jq --argjson s "$(awk '{ printf "%.3f", $1 + $2 }' "$res.time")" '. + {bench_cpu_seconds: $s}' "$res" > "$res.tmp" 2>/dev/null &&
		mv "$res.tmp" "$res" || rm -f "$res.tmp"
	printf 'compare.sh: %-13s %-8s run %d: %s\n' "$scn" "$srv" "$run" \
		"$(jq -r '"accept \(.accept_rate|floor)/s, e2e \(.sink.end_to_end_rate|floor)/s, cpu \(if .cpu then (.cpu.seconds_per_1000_msgs * 1000 | floor) / 1000 else "-" end) s/1k, missing \(.sink.missing), dup \(.sink.duplicates)"' \
			"$work/results/${scn}__${srv}__${run}.json" 2>/dev/null || echo failed)" >&2
	# Let idle next-hop connections of the relays (to this run's sink, now
	# closed) time out or fail before the next run's sink takes the port.
	sleep 1
}

names=()
for s in "${scenarios[@]}"; do
	read -r name sessions messages size kind kw <<< "$s"
	names+=("$name")
	for run in $(seq 1 "$runs"); do
		for srv in baseline postfix maddy ferry; do
			one_run "$name" "$srv" "$run" "$sessions" "$messages" "$size" "$kind" "$kw"
		done
	done
done

# Idle sessions held by Ferry, resident memory per session.
if [ "$(remaining)" -gt 30 ]; then
	"$work/ferry" bench --json --idle "$idle_n" --target "127.0.0.1:$ferry_port" --server-pid "$ferry_pid" \
		--deadline 120s > "$work/results/idle.json" 2> "$work/results/idle.err" || true
fi

"$work/report" -dir "$work/results" -out "$out" -scenarios "$(IFS=,; echo "${names[*]}")" \
	-command "bench/compare.sh $args"
echo "compare.sh: wrote $out in $(elapsed)s" >&2
