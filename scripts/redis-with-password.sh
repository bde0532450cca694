#!/bin/sh
# A throwaway Redis that requires a password, as production's does (docker-compose.yml), for
# running the production tests against: it listens on 127.0.0.1 on a free port (or $1), keeps
# nothing on disk, and leaves the machine's own Redis alone.
#
#   eval "$(scripts/redis-with-password.sh)"
#   FANGXIN_TEST_DEPLOYMENT=production .venv/bin/pytest tests/http tests/integration -m "not browser"
#   kill "$(cat "$FANGXIN_TEST_REDIS_PIDFILE")"
#
# Prints the two variables to export: FANGXIN_TEST_REDIS_URL (with the password) and
# FANGXIN_TEST_REDIS_PIDFILE (to stop it).
set -eu

port=${1:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
password=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
folder=$(mktemp -d "${TMPDIR:-/tmp}/fangxin-redis.XXXXXX")

redis-server --bind 127.0.0.1 --port "$port" --requirepass "$password" \
  --save '' --appendonly no --dir "$folder" \
  --daemonize yes --pidfile "$folder/redis.pid" --logfile "$folder/redis.log" >&2

tries=0
until REDISCLI_AUTH="$password" redis-cli -p "$port" ping >/dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -gt 100 ]; then
    echo "redis-server did not start on port $port; see $folder/redis.log" >&2
    exit 1
  fi
  sleep 0.05
done
# The pid file appears once the server has started.
until [ -s "$folder/redis.pid" ]; do sleep 0.05; done

echo "export FANGXIN_TEST_REDIS_URL=redis://:$password@127.0.0.1:$port/0"
echo "export FANGXIN_TEST_REDIS_PIDFILE=$folder/redis.pid"
