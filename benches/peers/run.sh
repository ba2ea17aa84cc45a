#!/usr/bin/env bash
# The peers matrix: kermes, redis-rs, fred and rustis side by side, plus redis-benchmark for
# reference, with the server pinned to core 0 and every client to core 1. Prints a markdown
# table of medians over RUNS runs (the run with the median ops/s for each cell). Every run
# measures the clients in another order (the machine drifts: interleaving keeps the ratios
# honest). On one server, the last column is the commands the server processed per read
# syscall it made: how well each client batches.
#
#   bash benches/peers/run.sh > /tmp/table.md
#   RUNS=5 SECONDS_PER=5 CONCURRENCY="50 500" SIZES=64 RUNTIMES=current bash benches/peers/run.sh
#   WORKLOAD=get SIZES=64 bash benches/peers/run.sh           # GET only (pipeline: 16 GETs each)
#   COUNT_READS=1 RUNS=1 SIZES=16384 bash benches/peers/run.sh # client socket reads per
#       command, counted with perf (which slows every client: read only that column)
#   TLS=1 bash benches/peers/run.sh     # over TLS: a CA and a localhost certificate made with
#                                       # openssl, the server on a TLS port only
#   SERVER=valkey-server SERVER_CPUS=0-7 SERVER_ARGS="--io-threads 8" CLIENT_CPUS=8-15 \
#     WORKERS=4 [KERMES_SHARED=1] RUNTIMES=multi bash benches/peers/run.sh
#                                       # clients on several cores, the server on others:
#                                       # how throughput grows with worker threads
#   WORKLOAD=cached CONCURRENCY="1 50" \
#     CLIENTS="kermes kermes-cached redis-rs redis-rs-cached rustis rustis-cached" \
#     bash benches/peers/run.sh         # client-side caches: 90% GET / 10% SET of 1,000
#                                       # hot keys ("-cached" rows compared with each other)
#   CLUSTER=1 WORKLOAD="get mget" bash benches/peers/run.sh
#                                       # a cluster of three primaries (all on core 0),
#                                       # every client's cluster client; mget: 100 keys
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUNS=${RUNS:-3}
SECONDS_PER=${SECONDS_PER:-3}
CONCURRENCY=${CONCURRENCY:-"1 50 500"}
SIZES=${SIZES:-"64 16384"}
RUNTIMES=${RUNTIMES:-"current multi"}
WORKLOAD=${WORKLOAD:-"get set pipeline"}
SERVER=${SERVER:-redis-server}
TLS=${TLS:-}
CLUSTER=${CLUSTER:-}
CLIENTS=${CLIENTS:-"kermes redis-rs fred rustis"}
CLIENT_CPUS=${CLIENT_CPUS:-1}
SERVER_CPUS=${SERVER_CPUS:-0}
read -r -a extra_server_args <<< "${SERVER_ARGS:-}"
workers=()
[ -n "${WORKERS:-}" ] && workers=(--workers "$WORKERS")
[ -n "${KERMES_SHARED:-}" ] && workers+=(--kermes-shared "$KERMES_SHARED")
count_reads=()
[ -n "${COUNT_READS:-}" ] && count_reads=(--count-reads)
MGET_KEYS=${MGET_KEYS:-100}

(cd "$root" && cargo build --quiet --release -p kermes-peers)
peers="$root/target/release/peers"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="redis://127.0.0.1:$port"
server_args=(--port "$port")
client_tls=()
bench_tls=()
cli_tls=()
if [ -n "$TLS" ]; then
  certs="$(mktemp -d)"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=bench CA" -keyout "$certs/ca.key" -out "$certs/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
    -keyout "$certs/server.key" -out "$certs/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$certs/ext"
  openssl x509 -req -in "$certs/server.csr" -CA "$certs/ca.pem" -CAkey "$certs/ca.key" \
    -CAcreateserial -days 2 -extfile "$certs/ext" -out "$certs/server.pem" 2>/dev/null
  url="rediss://localhost:$port"
  server_args=(--port 0 --tls-port "$port" --tls-cert-file "$certs/server.pem"
    --tls-key-file "$certs/server.key" --tls-ca-cert-file "$certs/ca.pem" --tls-auth-clients no)
  client_tls=(--tls-ca "$certs/ca.pem")
  bench_tls=(--tls --cacert "$certs/ca.pem")
  cli_tls=(--tls --cacert "$certs/ca.pem")
fi
client_mode=()
bench_mode=()
if [ -n "$CLUSTER" ]; then
  dir="$(mktemp -d)"
  pids=()
  seeds=()
  for i in 0 1 2; do
    # A cluster node also listens on its port + 10000 (the bus): both must be free, and the
    # bus port must exist, so a random port above 55535 would never start.
    p=$(python3 -c '
import random, socket
while True:
    p = random.randrange(20000, 50000)
    try:
        for q in (p, p + 10000):
            s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
        print(p); break
    except OSError:
        pass')
    (cd "$dir" && mkdir -p "$i" && cd "$i" && exec taskset -c "$SERVER_CPUS" "$SERVER" --port "$p" --cluster-enabled yes \
      --save "" --appendonly no --daemonize no --logfile /dev/null) &
    pids+=($!)
    seeds+=("127.0.0.1:$p")
    until redis-cli -p "$p" ping >/dev/null 2>&1; do sleep 0.05; done
  done
  trap 'kill ${pids[*]} 2>/dev/null' EXIT
  redis-cli --cluster create "${seeds[@]}" --cluster-yes >/dev/null
  until redis-cli -p "${seeds[0]#*:}" cluster info | grep -q cluster_state:ok; do sleep 0.1; done
  url=$(IFS=,; echo "${seeds[*]}")
  port="${seeds[0]#*:}"
  client_mode=(--cluster --mget-keys "$MGET_KEYS")
  bench_mode=(--cluster)
else
  taskset -c "$SERVER_CPUS" "$SERVER" "${server_args[@]}" "${extra_server_args[@]}" --save "" --appendonly no --daemonize no --logfile /dev/null &
  server_pid=$!
  client_mode=(--server-pid "$server_pid")
  trap 'kill $server_pid 2>/dev/null' EXIT
  until redis-cli -p "$port" "${cli_tls[@]}" ping >/dev/null 2>&1; do sleep 0.05; done
fi

echo "Workload: $WORKLOAD over 10,000 keys${TLS:+, over TLS}${CLUSTER:+, on a cluster of three primaries}; server \`$SERVER\` ($("$SERVER" --version | grep -o 'v=[^ ]*')) pinned to cores $SERVER_CPUS${SERVER_ARGS:+ ($SERVER_ARGS)}, clients to cores $CLIENT_CPUS${WORKERS:+ ($WORKERS worker threads)}; median of $RUNS runs of ${SECONDS_PER}s after 1s warm-up."
echo
echo "| workload | runtime | value | conc. | client | ops/s | vs best peer | allocs/op | client CPU ns/op | heap B per in-flight cmd | cmds per server read | client reads per cmd |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
read -r -a clients <<< "$CLIENTS"
for wl in $WORKLOAD; do
for rt in $RUNTIMES; do
  for size in $SIZES; do
    for c in $CONCURRENCY; do
      lines=""
      for run in $(seq "$RUNS"); do
        n=${#clients[@]}
        order=$(for i in $(seq 0 $((n - 1))); do printf '%s,' "${clients[$(( (i + run) % n ))]}"; done)
        lines+=$(taskset -c "$CLIENT_CPUS" "$peers" --url "$url" --clients "${order%,}" "${client_tls[@]}" "${client_mode[@]}" "${count_reads[@]}" "${workers[@]}" --concurrency "$c" \
          --value-size "$size" --workload "$wl" --seconds "$SECONDS_PER" --runtime "$rt" --markdown)$'\n'
      done
      bench() {
        taskset -c "$CLIENT_CPUS" redis-benchmark -p "$port" "${bench_tls[@]}" "${bench_mode[@]}" -c "$c" -n $((c < 50 ? 50000 : 400000)) -d "$size" -t "$wl" -r 10000 "$@" -q 2>/dev/null \
          | tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1 | cut -d' ' -f1
      }
      # redis-benchmark has no MGET of random keys.
      rb=""; rb16=""
      case "$wl" in
        get|set) rb=$(bench); rb16=$(bench -P 16) ;;
      esac
      LINES="$lines" WL="$wl" RT="$rt" SIZE="$size" C="$c" RB="$rb" RB16="$rb16" python3 - <<'PY'
import os, statistics
rows, unsupported = {}, {}
for line in os.environ["LINES"].strip().splitlines():
    cells = [x.strip() for x in line.strip("|").split("|")]
    if cells[1].startswith("unsupported"):
        unsupported[cells[0]] = cells[1]
        continue
    rows.setdefault(cells[0], []).append([float(x) for x in cells[1:]])
med = {}
for name, runs in rows.items():
    runs.sort(key=lambda r: r[0])
    med[name] = runs[len(runs) // 2]
head = f"| {os.environ['WL']} | {os.environ['RT']} | {os.environ['SIZE']} B | {os.environ['C']}"
# A client-side cache ("-cached") is compared with the peers' caches, the rest with the
# peers' plain clients.
cached = lambda n: n.endswith("-cached")
best = {g: max([v[0] for k, v in med.items() if not k.startswith("kermes") and cached(k) == g], default=0)
        for g in (False, True)}
order = ["kermes", "redis-rs", "fred", "rustis", "kermes-cached", "redis-rs-cached", "rustis-cached"]
for name in sorted(med, key=lambda n: order.index(n) if n in order else len(order)):
    ops, allocs, cpu, mem, per_read, client_reads = med[name]
    best_peer = best[cached(name)]
    ratio = f"{ops / best_peer:.2f}x" if best_peer else ""
    reads = f"{per_read:.1f}" if per_read else ""
    print(f"{head} | {name} | {ops:,.0f} | {ratio} | {allocs:.2f} | {cpu:,.0f} | {mem:,.0f} | {reads} | {client_reads:.2f} |")
for name, why in unsupported.items():
    print(f"{head} | {name} | {why} | | | | | | |")
for label, key in (("redis-benchmark", "RB"), ("redis-benchmark -P 16", "RB16")):
    v = os.environ.get(key)
    if v:
        print(f"{head} | {label} | {float(v):,.0f} | | | | | | |")
PY
    done
  done
done
done
