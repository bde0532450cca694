#!/bin/sh
# A local Redis Cluster for running the production deployment and its tests against: three
# `redis-server` processes in cluster mode on 127.0.0.1 (ports BASE, BASE+1, BASE+2; BASE is
# $FANGXIN_CLUSTER_PORT or 7000), no replicas, nothing kept on disk but their nodes.conf in a
# folder of their own. Starting a cluster that already runs changes nothing; stop kills it.
#
#   eval "$(scripts/redis-cluster.sh start)"
#   FANGXIN_TEST_DEPLOYMENT=production .venv/bin/pytest tests/http -m "not browser"
#   scripts/redis-cluster.sh stop
#
# With FANGXIN_CLUSTER_PASSWORD set the nodes require it (as production's Redis does), and the
# URL printed carries it. `start` prints the variables to export: FANGXIN_TEST_REDIS_URL and
# FANGXIN_TEST_REDIS_CLUSTER=1.
set -eu

base=${FANGXIN_CLUSTER_PORT:-7000}
ports="$base $((base + 1)) $((base + 2))"
folder="${TMPDIR:-/tmp}/fangxin-cluster-$base"
password=${FANGXIN_CLUSTER_PASSWORD:-}
if [ -n "$password" ]; then export REDISCLI_AUTH="$password"; fi

answers() { redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null | grep -q PONG; }
state_ok() { redis-cli -h 127.0.0.1 -p "$base" cluster info 2>/dev/null | grep -q 'cluster_state:ok'; }

start() {
  mkdir -p "$folder"
  for port in $ports; do
    answers "$port" && continue
    set -- --bind 127.0.0.1 --port "$port" --cluster-enabled yes \
      --cluster-config-file "$folder/nodes-$port.conf" --dir "$folder" \
      --save '' --appendonly no --daemonize yes \
      --pidfile "$folder/redis-$port.pid" --logfile "$folder/redis-$port.log"
    if [ -n "$password" ]; then set -- "$@" --requirepass "$password" --masterauth "$password"; fi
    redis-server "$@" >&2
  done
  for port in $ports; do
    tries=0
    until answers "$port"; do
      tries=$((tries + 1))
      if [ "$tries" -gt 200 ]; then
        echo "redis-server did not start on port $port; see $folder/redis-$port.log" >&2
        exit 1
      fi
      sleep 0.05
    done
  done
  # A cluster made before (its nodes.conf kept) comes back by itself; a new one is made once.
  if ! redis-cli -h 127.0.0.1 -p "$base" cluster info | grep -q 'cluster_slots_assigned:16384'; then
    nodes=""
    for port in $ports; do nodes="$nodes 127.0.0.1:$port"; done
    # shellcheck disable=SC2086
    redis-cli --cluster create $nodes --cluster-replicas 0 --cluster-yes >&2
  fi
  tries=0
  until state_ok; do
    tries=$((tries + 1))
    if [ "$tries" -gt 300 ]; then
      echo "the cluster on $ports never reached cluster_state:ok" >&2
      exit 1
    fi
    sleep 0.1
  done
  auth=""
  if [ -n "$password" ]; then auth=":$password@"; fi
  echo "export FANGXIN_TEST_REDIS_URL=redis://${auth}127.0.0.1:$base/0"
  echo "export FANGXIN_TEST_REDIS_CLUSTER=1"
}

stop() {
  for port in $ports; do
    pidfile="$folder/redis-$port.pid"
    if [ -s "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
    fi
  done
  for port in $ports; do
    tries=0
    while answers "$port" && [ "$tries" -lt 100 ]; do tries=$((tries + 1)); sleep 0.05; done
  done
  rm -rf "$folder"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
