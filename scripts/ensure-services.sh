#!/usr/bin/env bash
# Make sure the local services the tests talk to are up, starting them with this machine's own
# commands when they are down, and that an empty test database exists.
set -euo pipefail

wait_for() { # name, check command
  for _ in $(seq 1 60); do
    if eval "$2" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  echo "error: $1 did not come up" >&2
  return 1
}

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  wait_for PostgreSQL "pg_isready -q -h 127.0.0.1 -p 5432"
fi
if ! psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='opsdesk_test'" postgres | grep -q 1; then
  psql -q -h 127.0.0.1 -U postgres -c "create database opsdesk_test" postgres
fi

if command -v redis-server >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  echo "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis "redis-cli -h 127.0.0.1 ping"
fi
