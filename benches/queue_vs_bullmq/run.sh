#!/usr/bin/env bash
# kermes's queue against BullMQ on the same pinned Redis, alternating runs, and the ratio
# per handler concurrency. Installs BullMQ (npm, into ./node_modules) when missing; the
# test suite never runs this.
#
#   bash benches/queue_vs_bullmq/run.sh
#   ROUNDS=5 MESSAGES=30000 CONCURRENCY="1 16 64" bash benches/queue_vs_bullmq/run.sh
#
# Workload (both sides): 64 producers enqueue MESSAGES messages while one worker with a
# no-op handler at the given concurrency takes them; finished messages are removed. Then
# the pickup latency on an idle queue (enqueue -> handler start), 1000 times. The server
# runs on core 0, each client on core 1 (SERVER_CORE, CLIENT_CORE), one client at a time,
# which goes first alternating per round. Prints every run and a summary: messages/s per
# side (medians), the median of the per-round ratios, server and client CPU microseconds
# per message, pickup p50/p99.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
ROUNDS=${ROUNDS:-3}
MESSAGES=${MESSAGES:-20000}
CONCURRENCY=${CONCURRENCY:-"1 16 64"}
PORT=${PORT:-6391}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
OUT=${OUT:-"$here/results.tsv"}

command -v node >/dev/null || { echo "node is needed (Debian: apt-get install nodejs npm)" >&2; exit 1; }
if [ ! -d "$here/node_modules/bullmq" ]; then
  (cd "$here" && npm install --no-audit --no-fund --loglevel=error)
fi
server_bin=$(command -v redis-server || true)
[ -x "$root/.cache/servers/bin/redis-server" ] && server_bin="$root/.cache/servers/bin/redis-server"
[ -n "$server_bin" ] || { echo "redis-server not found: bash scripts/install-servers.sh" >&2; exit 1; }

bin=$(cd "$root" && cargo bench --bench mq_throughput --features testing --no-run --message-format=json 2>/dev/null |
  python3 -c 'import sys, json
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "mq_throughput":
        print(m["executable"])')
[ -x "$bin" ] || { echo "could not build benches/mq_throughput.rs" >&2; exit 1; }

taskset -c "$SERVER_CORE" "$server_bin" --port "$PORT" --save '' --appendonly no \
  --daemonize no --loglevel warning >/dev/null &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "server: $("$server_bin" --version | head -c 40)... pid $server on core $SERVER_CORE; bullmq $(node -p "require('$here/node_modules/bullmq/package.json').version")"

kermes() { REDIS_URL="redis://127.0.0.1:$PORT" MQ_TSV=1 taskset -c "$CLIENT_CORE" "$bin" --bench; }
bullmq() { taskset -c "$CLIENT_CORE" node "$here/bullmq.mjs" "$@"; }

: >"$OUT"
for round in $(seq "$ROUNDS"); do
  for c in $CONCURRENCY; do
    if [ $((round % 2)) -eq 1 ]; then order="k b"; else order="b k"; fi
    for side in $order; do
      redis-cli -p "$PORT" flushall >/dev/null
      if [ "$side" = k ]; then
        line=$(MQ_CONCURRENCY=$c MQ_MESSAGES=$MESSAGES MQ_PICKUP=0 kermes)
      else
        line=$(bullmq throughput "$PORT" "$c" "$MESSAGES")
      fi
      echo -e "$round\t$line" | tee -a "$OUT"
    done
  done
  for side in k b; do
    redis-cli -p "$PORT" flushall >/dev/null
    if [ "$side" = k ]; then
      line=$(MQ_CONCURRENCY="" kermes)
    else
      line=$(bullmq pickup "$PORT")
    fi
    echo -e "$round\t$line" | tee -a "$OUT"
  done
done

python3 - "$OUT" <<'PY'
import sys, statistics as st
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
med = st.median
print("\nsummary (medians over rounds; ratio = kermes / BullMQ, per round, then the median)")
print(f"{'concurrency':>11} {'kermes msg/s':>12} {'BullMQ msg/s':>12} {'ratio':>6} "
      f"{'server us/msg k/B':>18} {'client us/msg k/B':>18}")
conc = sorted({int(r[3]) for r in rows if r[2] == "throughput"})
for c in conc:
    k = {r[0]: r for r in rows if r[2] == "throughput" and int(r[3]) == c and r[1] == "kermes"}
    b = {r[0]: r for r in rows if r[2] == "throughput" and int(r[3]) == c and r[1] == "bullmq"}
    both = sorted(set(k) & set(b))
    ratio = med(float(k[x][4]) / float(b[x][4]) for x in both)
    f = lambda d, i: med(float(v[i]) for v in d.values())
    print(f"{c:>11} {f(k,4):>12.0f} {f(b,4):>12.0f} {ratio:>5.2f}x "
          f"{f(k,5):>8.1f} / {f(b,5):<8.1f} {f(k,6):>8.1f} / {f(b,6):<8.1f}")
for side in ("kermes", "bullmq"):
    p = [r for r in rows if r[2] == "pickup" and r[1] == side]
    if p:
        print(f"pickup {side:>6}: p50 {med(float(r[4]) for r in p):.3f} ms, "
              f"p99 {med(float(r[5]) for r in p):.3f} ms, max {max(float(r[6]) for r in p):.3f} ms")
PY
