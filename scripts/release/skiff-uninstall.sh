#!/usr/bin/env bash
# Uninstalls skiff (docs/install.md): stops the service or the supervised process, stops containers and
# containerd (skiff killall), unmounts, removes the network devices, nftables tables, iptables chains
# and routes skiff made, the units, the program, the config and the data. install.sh writes a copy of
# this script with SKIFF_INSTALL_ENV set, naming the paths that install used.
#   skiff-uninstall.sh [--keep-data]   (--keep-data keeps <data-dir>/server: the datastore, PKI, token)
set -uo pipefail
keep_data=0
for a in "$@"; do
  case "$a" in
    --keep-data) keep_data=1 ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "skiff-uninstall.sh: unknown argument $a (expected --keep-data)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "skiff-uninstall.sh: run as root" >&2; exit 1; }
info() { echo "[INFO]  $*" >&2; }

PREFIX=/usr/local BIN_DIR="" LIB_DIR="" SYSTEMD_DIR=/etc/systemd/system OPENRC_DIR=/etc/init.d
CONFIG_DIR=/etc/skiff DATA_DIR=/var/lib/skiff RUN_DIR=/run/skiff LOG_DIR=/var/log INIT="" CREATED_DIRS=""
# shellcheck disable=SC1090
if [ -n "${SKIFF_INSTALL_ENV:-}" ] && [ -f "$SKIFF_INSTALL_ENV" ]; then . "$SKIFF_INSTALL_ENV"; fi
BIN_DIR="${BIN_DIR:-$PREFIX/bin}"; LIB_DIR="${LIB_DIR:-$PREFIX/lib/skiff}"

# Settings the services ran with (bridge name, pod network) from their env files.
bridge=skiff0 cluster_cidr=10.42.0.0/16
for svc in skiff skiff-agent; do
  f="$CONFIG_DIR/$svc.env"; [ -f "$f" ] || continue
  v="$(sed -n 's/^SKIFF_BRIDGE_NAME=//p' "$f" | tail -n1)"; [ -z "$v" ] || bridge="$v"
  v="$(sed -n 's/^SKIFF_CLUSTER_CIDR=//p' "$f" | tail -n1)"; [ -z "$v" ] || cluster_cidr="$v"
done

# --- stop the services ---
for svc in skiff skiff-agent; do
  if [ -f "$SYSTEMD_DIR/$svc.service" ]; then
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
      info "stopping $svc.service"; systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
    rm -f "$SYSTEMD_DIR/$svc.service"
    [ -d /run/systemd/system ] && command -v systemctl >/dev/null && { systemctl daemon-reload; systemctl reset-failed "$svc" 2>/dev/null; }
  fi
  if [ -f "$OPENRC_DIR/$svc" ]; then
    if command -v rc-service >/dev/null; then info "stopping $svc"; rc-service "$svc" stop >/dev/null 2>&1; rc-update del "$svc" >/dev/null 2>&1; fi
    rm -f "$OPENRC_DIR/$svc"
  fi
  pidfile="$RUN_DIR/$svc.pid"
  if [ -f "$pidfile" ]; then
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      info "stopping the supervised $svc (pid $pid)"
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$pidfile"
  fi
  child="$RUN_DIR/$svc.child.pid"
  if [ -f "$child" ]; then kill -KILL "$(cat "$child")" 2>/dev/null; rm -f "$child"; fi
done

# Any other server or agent of this install (started by hand from it); containers are killall's job.
# One grep over every cmdline (NUL-separated argv): `<lib>/main.js` followed by `server` or `agent`.
ours() { grep -laP "\\Q$LIB_DIR/lib/skiff/main.js\\E\\x00(server|agent)\\x00" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3; }
pids="$(ours)"
if [ -n "$pids" ]; then
  info "stopping skiff processes $(echo $pids)"
  # shellcheck disable=SC2086
  kill -TERM $pids 2>/dev/null; sleep 1
  # shellcheck disable=SC2086
  kill -KILL $(ours) 2>/dev/null
fi

# --- containers, containerd and the mounts of the data dir ---
if [ -x "$BIN_DIR/skiff" ] && [ -d "$DATA_DIR" ]; then
  info "stopping containers of $DATA_DIR"
  "$BIN_DIR/skiff" killall --data-dir "$DATA_DIR" --bridge-name "$bridge" >/dev/null 2>&1 || true
fi
# Whatever killall left mounted under the data dir, deepest first.
awk -v d="$DATA_DIR" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
  umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
done

# --- network: devices, nftables tables, iptables chains, routes ---
if command -v ip >/dev/null; then
  for l in $(ip -o link show master "$bridge" 2>/dev/null | awk -F': ' '{ print $2 }' | cut -d@ -f1); do ip link del "$l" 2>/dev/null; done
  for dev in flannel.1 "$bridge"; do ip link del "$dev" 2>/dev/null && info "removed network device $dev"; done
  ip route show root "$cluster_cidr" 2>/dev/null | while read -r dst _; do ip route del "$dst" 2>/dev/null; done
fi
if command -v nft >/dev/null; then
  nft list tables 2>/dev/null | awk '$1 == "table" && $3 ~ /^skiff/ { print $2, $3 }' | while read -r family name; do
    nft delete table "$family" "$name" && info "removed nftables table $family $name"
  done
fi
for ipt in iptables ip6tables; do
  command -v "$ipt-save" >/dev/null || continue
  if "$ipt-save" 2>/dev/null | grep -q 'SKIFF-'; then
    "$ipt-save" | grep -v 'SKIFF-' | "$ipt-restore" && info "removed skiff's $ipt chains"
  fi
done

# --- files ---
for svc in skiff skiff-agent; do rm -f "$CONFIG_DIR/$svc.env" "$LOG_DIR/$svc.log"; done
if [ "$keep_data" -eq 1 ]; then
  info "keeping the datastore in $DATA_DIR/server"
  find "$DATA_DIR" -mindepth 1 -maxdepth 1 ! -name server -exec rm -rf {} + 2>/dev/null
else
  rm -rf "$DATA_DIR"
fi
rm -rf "$CONFIG_DIR"
rmdir "$RUN_DIR" 2>/dev/null
rm -f "$BIN_DIR/skiff" "$BIN_DIR/skiff-uninstall.sh"
rm -rf "$LIB_DIR"
# What rolling upgrades leave beside it (src/agent/upgrade-executor.ts): the previous release kept for
# rollback, a rolled-back one, an interrupted unpack; and a health gate that still waits.
for p in $(grep -laF "skiff-upgrade-guard" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
  if tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -qF " $LIB_DIR "; then kill -TERM "$p" 2>/dev/null; fi
done
rm -rf "$LIB_DIR.prev" "$LIB_DIR.failed" "$LIB_DIR.next" "$LIB_DIR.upgrade"
# Directories the install created, now empty (deepest first).
for d in $(printf '%s\n' $CREATED_DIRS | sort -r); do rmdir "$d" 2>/dev/null; done
rmdir "$PREFIX" 2>/dev/null
info "skiff uninstalled"
exit 0
