#!/usr/bin/env bash
# Every binary answers --help (listing each variable it reads) and --version,
# and a bad setting stops it with exit 2 naming the variable.
. "$TXAGG_ROOT/tests/lib/tap.sh"

for b in importer aggregator persistor api; do
    out=$("$TXAGG_BIN/$b" --help 2>&1); rc=$?
    is "$rc" 0 "$b --help exits 0"
    like "$out" "^Usage: $b" "$b --help starts with its usage line"
    like "$out" "REDIS_PORT +6379" "$b --help lists REDIS_PORT with its default"
    like "$out" "LOG_LEVEL +INFO" "$b --help lists LOG_LEVEL with its default"
    like "$out" "REDIS_CLUSTER +\(unset\)" "$b --help lists REDIS_CLUSTER (unset: one Redis)"
    like "$out" "REDIS_PARTITIONS +1 \(cluster: 16\)" "$b --help lists REDIS_PARTITIONS with both defaults"
    out=$("$TXAGG_BIN/$b" --version 2>/dev/null); rc=$?
    is "$rc" 0 "$b --version exits 0"
    is "$out" "$b (txagg) $(cat "$TXAGG_ROOT/VERSION")" "$b --version prints name and version"
    out=$(REDIS_PORT=notaport "$TXAGG_BIN/$b" 2>&1 </dev/null); rc=$?
    is "$rc" 2 "$b with REDIS_PORT=notaport exits 2"
    like "$out" "REDIS_PORT" "$b names REDIS_PORT in its error"
    out=$(REDIS_CLUSTER=redis-0:7000,redis-1 "$TXAGG_BIN/$b" 2>&1 </dev/null); rc=$?
    is "$rc" 2 "$b with a seed lacking its port in REDIS_CLUSTER exits 2"
    like "$out" "REDIS_CLUSTER.*redis-1" "$b names REDIS_CLUSTER and the bad seed in its error"
    out=$(REDIS_PARTITIONS=0 "$TXAGG_BIN/$b" 2>&1 </dev/null); rc=$?
    is "$rc" 2 "$b with REDIS_PARTITIONS=0 exits 2"
    like "$out" "REDIS_PARTITIONS.*1\.\.1024" "$b names REDIS_PARTITIONS and its bounds"
    out=$("$TXAGG_BIN/$b" --no-such-flag 2>&1 </dev/null); rc=$?
    is "$rc" 2 "$b rejects an unknown flag with exit 2"
done

# The switch-over reads the Python service's data, which lives on one Redis
# under today's names: no partitioned target.
out=$(REDIS_PARTITIONS=4 "$TXAGG_BIN/persistor" migrate --check 2>&1 </dev/null); rc=$?
is "$rc" 2 "persistor migrate refuses REDIS_PARTITIONS=4 (exit 2)"
like "$out" "REDIS_PARTITIONS: .* not available" "persistor migrate names REDIS_PARTITIONS"

out=$("$TXAGG_BIN/importer" --help)
for v in CSV_PATH BATCH_SIZE IMPORT_SPEED MAX_BACKLOG MAX_FUTURE_DAYS METRICS_PORT; do
    like "$out" "$v" "importer --help lists $v"
done
like "$out" "--force" "importer --help documents --force"
out=$("$TXAGG_BIN/aggregator" --help)
for v in CONSUMER_NAME CLAIM_IDLE_MS BATCH_SIZE METRICS_PORT; do like "$out" "$v" "aggregator --help lists $v"; done
out=$("$TXAGG_BIN/persistor" --help)
for v in RETENTION_DAYS PERSIST_INTERVAL_MS MONGODB_URI MONGODB_DATABASE MONGODB_COLLECTION; do
    like "$out" "$v" "persistor --help lists $v"
done
out=$("$TXAGG_BIN/api" --help)
for v in API_HOST API_PORT API_PROBE_PORT API_THREADS API_HEAD_TIMEOUT_S API_TOKEN MAX_RANGE_DAYS MONGODB_URI; do
    like "$out" "$v" "api --help lists $v"
done

# Listen addresses are refused with the configuration: this civetweb has no
# IPv6, and a listener that cannot start must not become a warning.
out=$(API_HOST=:: "$TXAGG_BIN/api" 2>&1 </dev/null); rc=$?
is "$rc" 2 "api with API_HOST=:: exits 2"
like "$out" "API_HOST: invalid value '::' \(IPv6 is not available" "api names API_HOST and says IPv6 is not available"
for b in importer aggregator persistor; do
    args=()
    [ "$b" = importer ] && args=(x.csv)
    out=$(METRICS_HOST=:: timeout 30 "$TXAGG_BIN/$b" "${args[@]}" 2>&1 </dev/null); rc=$?
    is "$rc" 2 "$b with METRICS_HOST=:: exits 2"
    like "$out" "METRICS_HOST: invalid value '::' \(IPv6 is not available" "$b names METRICS_HOST"
done
out=$(METRICS_HOST=10.0.0.1,9999 timeout 30 "$TXAGG_BIN/aggregator" 2>&1 </dev/null); rc=$?
is "$rc" 2 "aggregator with METRICS_HOST=10.0.0.1,9999 exits 2 (no second port smuggled in)"
like "$out" "METRICS_HOST: invalid value '10.0.0.1,9999'" "… naming METRICS_HOST"

out=$(RETENTION_DAYS=-1 "$TXAGG_BIN/persistor" 2>&1); rc=$?
is "$rc" 2 "persistor with RETENTION_DAYS=-1 exits 2"
like "$out" "RETENTION_DAYS" "persistor names RETENTION_DAYS"
out=$(API_PORT=http "$TXAGG_BIN/api" 2>&1); rc=$?
is "$rc" 2 "api with API_PORT=http exits 2"
out=$(IMPORT_SPEED=fast "$TXAGG_BIN/importer" x.csv 2>&1); rc=$?
is "$rc" 2 "importer with IMPORT_SPEED=fast exits 2"
like "$out" "IMPORT_SPEED" "importer names IMPORT_SPEED"

done_testing
