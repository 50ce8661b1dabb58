#!/usr/bin/env bash
# Quick start: installs what is missing, builds skiff and starts a single-node server in the
# background (data in /var/lib/skiff, admin kubeconfig in /etc/skiff/skiff.yaml, log in
# /var/log/skiff.log). Running it again restarts the server on the same data.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
bash scripts/setup.sh

pidfile=/run/skiff-server.pid
if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
  echo "==> stopping the running skiff server (pid $(cat "$pidfile"))" >&2
  kill "$(cat "$pidfile")" && sleep 1
fi
echo "==> starting skiff server (log: /var/log/skiff.log)" >&2
setsid nohup ./bin/skiff server "$@" >>/var/log/skiff.log 2>&1 < /dev/null &
echo $! > "$pidfile"
for _ in $(seq 1 100); do
  if curl -ksf https://127.0.0.1:${SKIFF_HTTPS_LISTEN_PORT:-6443}/readyz >/dev/null 2>&1; then
    cat >&2 <<MSG
==> skiff is ready.
    kubectl --kubeconfig /etc/skiff/skiff.yaml get namespaces
    join token: $(cat /var/lib/skiff/server/node-token 2>/dev/null || echo "(see /var/lib/skiff/server/node-token)")
    stop:       kill \$(cat $pidfile) && bin/skiff killall   (containers outlive the server until killall)
MSG
    exit 0
  fi
  if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo "skiff server exited; last log lines:" >&2; tail -n 30 /var/log/skiff.log >&2; exit 1; fi
  sleep 0.1
done
echo "skiff server did not become ready in 10 s; see /var/log/skiff.log" >&2
exit 1
