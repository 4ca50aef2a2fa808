#!/usr/bin/env bash
# The split topology without Docker: one front process (gate + verify +
# status) and two chat nodes on this machine, on a local PostgreSQL and
# Redis. Ctrl-C stops all three (each drains gracefully).
#
#   IMSRV_DATABASE_URL=postgres://postgres@127.0.0.1:5432/imsrv?sslmode=disable \
#   IMSRV_REDIS_URL=redis://127.0.0.1:6379/0 deploy/split-local.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${IMSRV_DATABASE_URL:?set IMSRV_DATABASE_URL to a postgres:// URL}"
: "${IMSRV_REDIS_URL:?set IMSRV_REDIS_URL to a redis:// URL}"
export IMSRV_DATABASE_URL IMSRV_REDIS_URL
go build -o ./imsrv .
./imsrv migrate

pids=()
trap 'kill -TERM "${pids[@]}" 2>/dev/null; wait' INT TERM EXIT

IMSRV_NODE_NAME=front IMSRV_GATE_LISTEN=:8080 IMSRV_VERIFY_LISTEN=127.0.0.1:50051 \
IMSRV_STATUS_LISTEN=127.0.0.1:50052 ./imsrv serve --roles=gate,verify,status &
pids+=($!)
sleep 1
for n in 1 2; do
	IMSRV_NODE_NAME=chat$n IMSRV_PEERS_STATUS=127.0.0.1:50052 IMSRV_CHAT_LISTEN=:809$n \
	IMSRV_CHAT_RPCLISTEN=127.0.0.1:5005$((4 + n)) ./imsrv serve --roles=chat &
	pids+=($!)
done
wait
