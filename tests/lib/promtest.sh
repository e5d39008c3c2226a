# tests/lib/promtest.sh — helpers for the tests that read the services'
# /metrics the way Prometheus does (tests/e2e/test_metrics_exposition.sh,
# test_prometheus_alerts.sh).  Source after tests/lib/tap.sh and system.sh
# (and call its sys_setup); it defines functions only.
#
#   promcheck ARGS…                 tests/lib/promcheck.py under Debian's python3
#                                   (prometheus_client, yaml)
#   prom_need_tools                 bail out unless promtool, prometheus and the
#                                   Python modules are installed (scripts/deps.sh)
#   prom_paced_csv FILE ROWS SECS [txgen flags…]
#                                   a txgen file and the IMPORT_SPEED that replays
#                                   it in about SECS seconds (printed)
#   prom_services_start             an aggregator per slot in PROM_AGG_SLOTS (default
#                                   "1"), a persistor and the api, each /metrics on a
#                                   free port; sets PROM_PORT[aggregator1…], PROM_PORT
#                                   [persistor], PROM_PORT[api] and waits until each
#                                   answers /health
#   prom_importer_start FILE SPEED  the importer on FILE at IMPORT_SPEED, /metrics on
#                                   PROM_PORT[importer] (SYS_IMP is its pid); waits
#                                   for its /health
#   prom_url NAME                   http://127.0.0.1:PORT of NAME's /metrics listener
#   prom_server_start CONFIG        Debian's prometheus on a free loopback port with
#                                   its own storage directory; sets PROM_URL, waits
#                                   until it is ready; its pid is registered for cleanup
#
# Processes go through system.sh's registry, so its sys_cleanup (the EXIT
# trap) stops them all.

declare -A PROM_PORT

promcheck() { /usr/bin/python3 "$TXAGG_ROOT/tests/lib/promcheck.py" "$@"; }

prom_need_tools() {
    command -v promtool >/dev/null && command -v prometheus >/dev/null ||
        bail_out "promtool/prometheus missing (scripts/deps.sh installs Debian's prometheus)"
    /usr/bin/python3 -c 'import prometheus_client, yaml' 2>/dev/null ||
        bail_out "python3-prometheus-client or python3-yaml missing (scripts/deps.sh installs them)"
}

prom_paced_csv() {
    local file=$1 rows=$2 secs=$3 total
    shift 3
    "$TXAGG_BIN/txgen" --rows "$rows" "$@" >"$file" || bail_out "txgen failed"
    # sleep_ms is the last column; the importer paces by the valid ones only
    # (digits, at most 60000: an invalid row of txgen's carries e.g. 60001).
    total=$(awk -F, 'NR > 1 { v = $NF; sub(/\r$/, "", v) } NR > 1 && v ~ /^[0-9]+$/ && v + 0 <= 60000 { s += v } END { print s + 0 }' "$file")
    python3 -c "print(max(0.001, round($total / ($secs * 1000.0), 3)))"
}

prom_url() { echo "http://127.0.0.1:${PROM_PORT[$1]}"; }

prom_services_start() {
    local s n
    for s in ${PROM_AGG_SLOTS:-1}; do
        PROM_PORT[aggregator$s]=$(txagg_free_port)
        sys_agg_start "$s" METRICS_PORT="${PROM_PORT[aggregator$s]}"
    done
    PROM_PORT[persistor]=$(txagg_free_port)
    sys_pst_start persistor METRICS_PORT="${PROM_PORT[persistor]}" PERSIST_INTERVAL_MS=500
    PROM_PORT[api]=$(txagg_free_port)
    env LOG_LEVEL=INFO API_PORT="${PROM_PORT[api]}" API_THREADS=8 "$TXAGG_BIN/api" 2>>api.log &
    sys_register $!
    for n in "${!PROM_PORT[@]}"; do
        txagg_wait_http "$(prom_url "$n")/health" 30 || bail_out "$n does not answer /health"
    done
}

prom_importer_start() {
    PROM_PORT[importer]=$(txagg_free_port)
    sys_imp_start "$1" IMPORT_SPEED="$2" METRICS_PORT="${PROM_PORT[importer]}"
    txagg_wait_http "$(prom_url importer)/health" 30 || bail_out "the importer does not answer /health"
}

prom_server_start() {
    local port
    port=$(txagg_free_port)
    mkdir -p prometheus-data
    prometheus --config.file="$1" --storage.tsdb.path=prometheus-data \
        --web.listen-address="127.0.0.1:$port" --log.level=warn >>prometheus.log 2>&1 &
    sys_register $!
    PROM_URL="http://127.0.0.1:$port"
    txagg_wait_http "$PROM_URL/-/ready" 60 || bail_out "prometheus did not become ready: $(tail -5 prometheus.log)"
}
