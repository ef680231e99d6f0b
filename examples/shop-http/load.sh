#!/usr/bin/env bash
# Load test of the shop: the same fixed mix (86% product reads on a Zipf distribution, 8% user
# reads, 2% price updates, 3% cart reads and 1% cart adds) against the server in each cache mode, and once more on Redis with
# redis-server killed a third of the way through the run and restarted 3 s later (that run
# must have no errors). Prints a Markdown table of requests/s, latency and database queries/s.
#
#   examples/shop-http/load.sh                    # 10 s per run, 32 connections
#   RUN_SECONDS=5 CONNECTIONS=64 examples/shop-http/load.sh
#
# Two more runs in memory mode: product reads of the HTML pages that the response-cache layer
# keeps (`memory-pages`), and, when Varnish and vmod_xkey are installed (Debian: `varnish`,
# `varnish-modules`), the load sent through a Varnish in front of the shop, which purges it
# by xkey (`memory-varnish`, with varnish/shop.vcl).
#
# After the memory, redis and tiered runs it prints the shop's `GET /caches`: every cache's
# figures and verdict ("is this cache right?"; the carts' cache, which an add does not
# invalidate, is flagged).
#
# Loopback only. The Redis runs need `redis-server` on PATH: this script starts its own on a
# free loopback port (no persistence) and stops it at the end; without it, only the `none`
# and `memory` runs happen. It stops only the processes it started.
set -euo pipefail

RUN_SECONDS=${RUN_SECONDS:-10}      # whole seconds of load per run (each run stays under 20 s)
RUNS=${RUNS:-all}                   # or some of: none memory memory-pages memory-varnish redis tiered redis-killed-mid-run
REQUESTS=${REQUESTS:-5000000}       # the other bound of each run
CONNECTIONS=${CONNECTIONS:-32}

if ! [[ $RUN_SECONDS =~ ^[0-9]+$ ]] || ((RUN_SECONDS < 3 || RUN_SECONDS > 15)); then
    echo "RUN_SECONDS must be a whole number from 3 to 15" >&2
    exit 2
fi

cd "$(dirname "$0")/../.."   # the workspace root
TARGET_DIR=${CARGO_TARGET_DIR:-target}

HAVE_REDIS=0
if command -v redis-server >/dev/null 2>&1; then
    HAVE_REDIS=1
    cargo build --release -p shop-http --features redis
else
    echo "note: redis-server is not on PATH: running the none and memory modes only" >&2
    cargo build --release -p shop-http
fi
SERVER_BIN=$TARGET_DIR/release/shop-http
LOAD_BIN=$TARGET_DIR/release/shop-load

WORK=$(mktemp -d "${TMPDIR:-/tmp}/shop-http-load.XXXXXX")
export SHOP_DB=$WORK/shop.db   # made by the first server, shared by every run
SERVER_PID=
VARNISH_PID=
REDIS_PID=
REDIS_PORT=
FAILED=0

cleanup() {
    local pid
    for pid in "$SERVER_PID" "$VARNISH_PID" "$REDIS_PID"; do
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# Whether something accepts connections on the loopback port $1.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
    local port _
    for _ in $(seq 1 200); do
        port=$((20000 + RANDOM % 12000))   # below the ephemeral ports (32768 and up)
        if ! port_in_use "$port"; then
            echo "$port"
            return 0
        fi
    done
    echo "no free loopback port found" >&2
    return 1
}

# The first line of the answer to the raw request $2 on the loopback port $1.
first_line() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf '%b' "$2" >&3
        IFS= read -r -t 2 line <&3 || exit 1
        printf '%s' "$line"
    ) 2>/dev/null
}

redis_ping() {
    local reply
    reply=$(first_line "$1" 'PING\r\n') || return 1
    [[ $reply == +PONG* ]]
}

start_redis() {
    redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
        >>"$WORK/redis.log" 2>&1 &
    REDIS_PID=$!
    local _
    for _ in $(seq 1 100); do
        if redis_ping "$1"; then
            return 0
        fi
        sleep 0.05
    done
    echo "redis-server did not start on port $1:" >&2
    cat "$WORK/redis.log" >&2
    return 1
}

stop() {   # stops the process $1 (one this script started) and waits for it
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

wait_healthy() {   # $1: port, $2: the server's pid, $3: its log
    local status _
    for _ in $(seq 1 1200); do   # up to 120 s: the first start builds the database
        if ! kill -0 "$2" 2>/dev/null; then
            echo "the server exited:" >&2
            cat "$3" >&2
            return 1
        fi
        status=$(first_line "$1" 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n') || true
        if [[ $status == "HTTP/1.1 200"* ]]; then
            return 0
        fi
        sleep 0.1
    done
    echo "the server did not answer /healthz on port $1" >&2
    return 1
}

HAVE_VARNISH=0
if [[ -x /usr/sbin/varnishd ]] && ls /usr/lib/*/varnish/vmods/libvmod_xkey.so >/dev/null 2>&1; then
    HAVE_VARNISH=1
else
    echo "note: varnishd or vmod_xkey is not installed: no run through Varnish" >&2
fi

# Starts Varnish on port $1 in front of the shop on port $2 (varnish/shop.vcl).
start_varnish() {
    # varnishd started as root reads its VCL as the `varnish` user.
    chmod 755 "$WORK"
    sed "s/\.port = \"8080\";/.port = \"$2\";/" examples/shop-http/varnish/shop.vcl >"$WORK/shop.vcl"
    chmod 644 "$WORK/shop.vcl"
    /usr/sbin/varnishd -F -a "127.0.0.1:$1" -f "$WORK/shop.vcl" -n "$WORK/varnish" \
        -s malloc,256m >>"$WORK/varnish.log" 2>&1 &
    VARNISH_PID=$!
    wait_healthy "$1" "$VARNISH_PID" "$WORK/varnish.log"
}

# One run: $1 the label, $2 the cache mode, $3 (optional) `kill-redis`, `pages` (product reads
# of the cached HTML pages) or `varnish` (the load through Varnish, which the shop purges).
run() {
    local label=$1 mode=$2 chaos=${3:-} port target out log load_pid varnish_port=
    if [[ $RUNS != all && " $RUNS " != *" $label "* ]]; then
        return 0
    fi
    local -a extra=()
    port=$(free_port)
    target=$port
    log=$WORK/server-$label.log
    out=$WORK/load-$label.out
    if [[ $chaos == varnish ]]; then
        varnish_port=$(free_port)
        target=$varnish_port
    fi
    if [[ $chaos == pages ]]; then
        extra=(--product-path '/pages/products/{id}')
    fi
    PORT=$port SHOP_CACHE=$mode CACHE_KEY_PREFIX="shop-load-$label:" RUST_LOG=warn \
        SHOP_VARNISH=${varnish_port:+http://127.0.0.1:$varnish_port} \
        "$SERVER_BIN" >"$log" 2>&1 &
    SERVER_PID=$!
    wait_healthy "$port" "$SERVER_PID" "$log"
    if [[ -n $varnish_port ]]; then
        start_varnish "$varnish_port" "$port"
    fi

    if [[ $label == memory || $label == redis || $label == tiered ]]; then
        extra+=(--report)
    fi
    "$LOAD_BIN" --addr "127.0.0.1:$target" --seconds "$RUN_SECONDS" --requests "$REQUESTS" \
        --connections "$CONNECTIONS" --label "$label" "${extra[@]}" >"$out" &
    load_pid=$!
    if [[ $chaos == kill-redis ]]; then
        sleep $((RUN_SECONDS / 3))
        echo "  $label: killing redis-server (pid $REDIS_PID) mid-run" >&2
        kill -9 "$REDIS_PID"
        wait "$REDIS_PID" 2>/dev/null || true
        sleep 3
        start_redis "$REDIS_PORT"
        echo "  $label: redis-server restarted on port $REDIS_PORT" >&2
    fi
    if ! wait "$load_pid"; then
        echo "shop-load failed in run $label" >&2
        cat "$out" >&2
        exit 1
    fi
    stop "$SERVER_PID"
    SERVER_PID=
    if [[ -n $VARNISH_PID ]]; then
        stop "$VARNISH_PID"
        VARNISH_PID=
    fi

    grep '^|' "$out" >>"$WORK/table.md"
    grep '^{' "$out" >>"$WORK/results.jsonl"
    if grep -q '^caches: ' "$out"; then
        { echo "GET /caches after the $label run:"; sed -n 's/^caches: //p' "$out"; echo; } \
            >>"$WORK/caches.txt"
    fi
    if ! grep -q '"errors":0[,}]' "$out"; then
        echo "run $label had errors (see its JSON below)" >&2
        FAILED=1
    fi
}

if ((HAVE_REDIS)); then
    REDIS_PORT=$(free_port)
    start_redis "$REDIS_PORT"
    export CACHE_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
fi

{
    echo "| run | requests | req/s | p50 ms | p99 ms | p99.9 ms | errors | db queries/s |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
} >"$WORK/table.md"

echo "shop-http load test: ${RUN_SECONDS} s per run, ${CONNECTIONS} connections, $(nproc 2>/dev/null || echo '?') CPUs" >&2
run none none
run memory memory
run memory-pages memory pages
if ((HAVE_VARNISH)); then
    run memory-varnish memory varnish
fi
if ((HAVE_REDIS)); then
    run redis redis
    run tiered tiered
    run redis-killed-mid-run redis kill-redis
fi

echo
cat "$WORK/table.md"
echo
cat "$WORK/results.jsonl"
if [[ -f $WORK/caches.txt ]]; then
    echo
    cat "$WORK/caches.txt"
fi
if ((FAILED)); then
    echo "FAILED: a run had errors" >&2
    exit 1
fi
