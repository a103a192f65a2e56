#!/bin/sh
# Smoke test of the reference deployment on a machine with a Docker daemon (not part of make test
# or CI, which have none): build the image, start compose.yaml as a throwaway project, wait until
# /health/ready/?strict=1 answers ok (database, Redis, a heartbeat from every queue's worker,
# beat's last run), print the figures, tear everything down (its volumes too).
#
#   deploy/smoke.sh                       # compose.yaml as is: official images, bundled PostgreSQL/Redis
#   PYTHON_IMAGE=local/python:3.11-bookworm SMOKE_HOSTNET=1 \
#   HOST_DATABASE_URL=postgres://app:pw@127.0.0.1:5432/scratch HOST_REDIS_URL=redis://127.0.0.1:6379/7 \
#   deploy/smoke.sh                       # no Docker Hub: the host's network, PostgreSQL and Redis
#
# SMOKE_HOSTNET points the app at a database it migrates: give it an empty scratch database owned
# by a non-superuser role. deploy/.env is used when present, else a throwaway one is written.
set -eu
cd "$(dirname "$0")/.."

project=${SMOKE_PROJECT:-backoffice-smoke}
timeout=${SMOKE_TIMEOUT:-420}
export APP_DB_PASSWORD="${APP_DB_PASSWORD:-smoke-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')}"
export POSTGRES_PASSWORD="${POSTGRES_PASSWORD:-smoke-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')}"
files="-f compose.yaml"
port=8000
if [ "${SMOKE_HOSTNET:-}" = 1 ]; then
    : "${HOST_DATABASE_URL:?SMOKE_HOSTNET=1 needs HOST_DATABASE_URL (a scratch database)}"
    : "${HOST_REDIS_URL:?SMOKE_HOSTNET=1 needs HOST_REDIS_URL}"
    files="$files -f deploy/compose.hostnet.yaml"
    port=${HOST_WEB_PORT:-8000}
fi
compose="docker compose -p $project $files"

wrote_env=""
if [ ! -f deploy/.env ]; then
    key=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_')
    cat > deploy/.env <<ENV
DJANGO_SECRET_KEY=smoke-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
FIELD_ENCRYPTION_KEYS=$key
DJANGO_ALLOWED_HOSTS=office.example.com
SITE_URL=https://office.example.com
ENV
    wrote_env=1
fi

cleanup() {
    status=$?
    if [ "$status" != 0 ]; then
        echo "smoke: FAILED; last lines of each service:" >&2
        $compose ps -a >&2 || true
        $compose logs --tail 20 >&2 || true
    fi
    $compose down -v --remove-orphans >/dev/null 2>&1 || true
    [ -n "$wrote_env" ] && rm -f deploy/.env
    exit "$status"
}
trap cleanup EXIT INT TERM

$compose config -q
started=$(date +%s)
docker build ${SMOKE_BUILD_NETWORK:+--network "$SMOKE_BUILD_NETWORK"} \
    ${PYTHON_IMAGE:+--build-arg PYTHON_IMAGE="$PYTHON_IMAGE"} -t backoffice:latest .
built=$(date +%s)
echo "smoke: built in $((built - started)) s, image $(docker image inspect backoffice:latest --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}')"

$compose up -d --no-build
up=$(date +%s)
body=""
while :; do
    body=$(curl -s "http://127.0.0.1:$port/health/ready/?strict=1" || true)
    case "$body" in '{"status": "ok"'*) break ;; esac
    if [ $(($(date +%s) - up)) -ge "$timeout" ]; then
        echo "smoke: not ready after $timeout s: $body" >&2
        exit 1
    fi
    sleep 2
done
echo "smoke: ready (strict) $(($(date +%s) - up)) s after compose up"
curl -fsS "http://127.0.0.1:$port/health/live/" >/dev/null
docker stats --no-stream --format '{{.Name}}\t{{.MemUsage}}' $($compose ps -q)
echo "smoke: ok"
