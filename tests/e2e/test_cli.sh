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
    out=$("$TXAGG_BIN/$b" --version 2>/dev/null); rc=$?
    is "$rc" 0 "$b --version exits 0"
    is "$out" "$b (txagg) $(cat "$TXAGG_ROOT/VERSION")" "$b --version prints name and version"
    out=$(REDIS_PORT=notaport "$TXAGG_BIN/$b" 2>&1 </dev/null); rc=$?
    is "$rc" 2 "$b with REDIS_PORT=notaport exits 2"
    like "$out" "REDIS_PORT" "$b names REDIS_PORT in its error"
    out=$("$TXAGG_BIN/$b" --no-such-flag 2>&1 </dev/null); rc=$?
    is "$rc" 2 "$b rejects an unknown flag with exit 2"
done

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
for v in API_HOST API_PORT API_THREADS API_TOKEN MAX_RANGE_DAYS MONGODB_URI; do like "$out" "$v" "api --help lists $v"; done

out=$(RETENTION_DAYS=-1 "$TXAGG_BIN/persistor" 2>&1); rc=$?
is "$rc" 2 "persistor with RETENTION_DAYS=-1 exits 2"
like "$out" "RETENTION_DAYS" "persistor names RETENTION_DAYS"
out=$(API_PORT=http "$TXAGG_BIN/api" 2>&1); rc=$?
is "$rc" 2 "api with API_PORT=http exits 2"
out=$(IMPORT_SPEED=fast "$TXAGG_BIN/importer" x.csv 2>&1); rc=$?
is "$rc" 2 "importer with IMPORT_SPEED=fast exits 2"
like "$out" "IMPORT_SPEED" "importer names IMPORT_SPEED"

done_testing
