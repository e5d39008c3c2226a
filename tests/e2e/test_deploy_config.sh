#!/usr/bin/env bash
# The deployment files stay in step with the code and with this engine's
# limits, without Docker: every setting of common/config.c reaches the
# containers and is documented in deploy/.env.example; the compose file is in
# the Compose-spec form both Compose versions accept; the Dockerfile builds with
# the classic builder; and the image's health probe (deploy/txagg-health)
# answers 0 only for a 200 from /health.
. "$TXAGG_ROOT/tests/lib/tap.sh"
. "$TXAGG_ROOT/scripts/lib/common.sh"
cd "$TXAGG_ROOT" || exit 1

vars=$(sed -n 's/^ *{"\([A-Z_]*\)", .*/\1/p' common/config.c)
check "config.c lists the variables (found $(echo $vars | wc -w))" [ "$(echo $vars | wc -w)" -ge 20 ]
missing=
for v in $vars; do grep -qw "$v" deploy/.env.example || missing+=" $v"; done
is "${missing:-none}" none "deploy/.env.example lists every variable of common/config.c"
# Fixed inside the stack (listeners) or deliberately absent (CONSUMER_NAME):
# everything else is passed through from .env.
missing=
for v in $vars; do
    case $v in CONSUMER_NAME) continue ;; esac
    grep -Eq "^ +$v: " deploy/docker-compose.yml || missing+=" $v"
done
is "${missing:-none}" none "deploy/docker-compose.yml passes every variable to the services"
is "$(grep -c 'CONSUMER_NAME:' deploy/docker-compose.yml)" 0 \
    "the compose file never sets CONSUMER_NAME (one name for several replicas would defeat the ownership check)"
is "$(grep -Ec '^(version|name):' deploy/docker-compose.yml)" 0 "the compose file has no top-level version: or name: key"
is "$(grep -v '^ *#' deploy/docker-compose.yml | grep -c 'start_interval')" 0 "no healthcheck start_interval (Engine 20.10 refuses it)"
like "$(grep -A2 'redis-server' deploy/docker-compose.yml)" '--appendonly yes' "the compose file's redis runs with AOF on"
is "$(grep -Eic '^# *syntax=|--mount=' deploy/Dockerfile)" 0 "the Dockerfile uses no BuildKit-only syntax"
like "$(grep -E '^FROM' deploy/Dockerfile | tr '\n' ' ')" '^FROM debian:bookworm AS build FROM debian:bookworm-slim $' \
    "the Dockerfile builds on debian:bookworm and runs on debian:bookworm-slim"
like "$(grep -E '^USER' deploy/Dockerfile)" '^USER [1-9][0-9]*' "the image runs as a numeric non-root user"
like "$(grep -E '^HEALTHCHECK' deploy/Dockerfile)" 'txagg-health' "the image has a health check"

# The cluster override: every node in cluster mode with AOF on, and every
# txagg service pointed at the cluster, started only once it is made.
cl=deploy/docker-compose.cluster.yml
like "$(grep -A4 'redis-server' "$cl")" '--cluster-enabled yes' "the cluster override's nodes run in cluster mode"
like "$(grep -A4 'redis-server' "$cl")" '--appendonly yes' "and with AOF on"
is "$(grep -Ec '^  redis(-[1-5])?:' "$cl")" 6 "the cluster override has 6 nodes (redis, redis-1 … redis-5)"
like "$(grep -A1 -- '--cluster create' "$cl")" '--cluster-replicas 1' "redis-cluster-init gives each primary a replica"
for s in aggregator persistor api importer; do
    like "$(sed -n "/^  $s:/,/^  [a-z]/p" "$cl" | tr "\n" " ")" 'environment: \*cluster-client-env.*depends_on: \*cluster-made' \
        "the cluster override gives $s REDIS_CLUSTER and starts it after redis-cluster-init"
done

# Validation by the Compose implementations installed here, when there are any.
export TXAGG_TEST_DATA=/tmp
if docker compose version >/dev/null 2>&1; then
    check "docker compose (v2) accepts the compose file and the test override" \
        docker compose -f deploy/docker-compose.yml -f deploy/docker-compose.test.yml config -q
    check "docker compose (v2) accepts the cluster override over them" \
        docker compose -f deploy/docker-compose.yml -f deploy/docker-compose.test.yml -f "$cl" config -q
fi
if command -v docker-compose >/dev/null 2>&1; then
    check "docker-compose (v1) accepts the compose file and the test override" \
        docker-compose -f deploy/docker-compose.yml -f deploy/docker-compose.test.yml config -q
    check "docker-compose (v1) accepts the cluster override over them" \
        docker-compose -f deploy/docker-compose.yml -f deploy/docker-compose.test.yml -f "$cl" config -q
fi

# The health probe against a real HTTP server answering what we choose.
port=$(txagg_free_port)
python3 - "$port" <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = {"/health": 200, "/ready": 503}.get(self.path, 404)
        self.send_response(code); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"{}")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
srv=$!
trap 'kill $srv 2>/dev/null' EXIT
txagg_wait_tcp 127.0.0.1 "$port" 10
deploy/txagg-health "$port" 2>/dev/null
is "$?" 0 "txagg-health exits 0 when /health answers 200"
deploy/txagg-health "$port" /ready 2>/dev/null
is "$?" 1 "txagg-health exits 1 when the path answers 503"
kill $srv; wait $srv 2>/dev/null
deploy/txagg-health "$port" 2>/dev/null
is "$?" 1 "txagg-health exits 1 when nothing listens"
out=$(cd / && env -i PATH="$PATH" bash "$TXAGG_ROOT/deploy/txagg-health" 2>&1)
is "$?" 1 "txagg-health without a port exits 1 where no txagg service runs"

done_testing
