#!/usr/bin/env bash
# Installs a skiff release as a service (docs/install.md). Run it beside the release tarball (and its
# SHA256SUMS), or from inside an unpacked release. Nothing is downloaded: air-gapped by design.
#
# Options are environment variables, named as k3s's installer names them:
#   INSTALL_SKIFF_TARBALL       the release tarball (default: the skiff-*-linux-<arch>.tar.gz beside this script)
#   INSTALL_SKIFF_EXEC          command and flags: "server ...", "agent ..." or flags for the server
#                               (default: "server", or "agent" when SKIFF_URL is set)
#   SKIFF_URL, SKIFF_TOKEN      the server to join and the join token (an agent); every SKIFF_* variable
#                               set here is written to the service's environment file
#   INSTALL_SKIFF_PREFIX        install prefix (default /usr/local)
#   INSTALL_SKIFF_BIN_DIR       where the `skiff` command goes (default $PREFIX/bin)
#   INSTALL_SKIFF_LIB_DIR       where the program goes (default $PREFIX/lib/skiff)
#   INSTALL_SKIFF_SYSTEMD_DIR   where systemd units go (default /etc/systemd/system)
#   INSTALL_SKIFF_OPENRC_DIR    where OpenRC scripts go (default /etc/init.d)
#   INSTALL_SKIFF_CONFIG_DIR    config dir: the env file, the admin kubeconfig (default /etc/skiff)
#   INSTALL_SKIFF_DATA_DIR      data dir (default /var/lib/skiff)
#   INSTALL_SKIFF_RUN_DIR       pid files of the supervised mode (default /run/skiff)
#   INSTALL_SKIFF_LOG_DIR       logs of the supervised mode (default /var/log)
#   INSTALL_SKIFF_INIT          systemd | openrc | none (default: detected)
#   INSTALL_SKIFF_SKIP_ENABLE   true: do not enable the service at boot
#   INSTALL_SKIFF_SKIP_START    true: do not start it
#   INSTALL_SKIFF_FORCE         true: replace an installed different version
#   INSTALL_SKIFF_READY_TIMEOUT seconds to wait for readiness (default 120)
set -euo pipefail

info() { echo "[INFO]  $*" >&2; }
warn() { echo "[WARN]  $*" >&2; }
fatal() { echo "[ERROR] $*" >&2; exit 1; }
truthy() { case "${1:-}" in true|1|yes) return 0 ;; *) return 1 ;; esac; }

here="$(cd "$(dirname "$(readlink -f "$0")")" && pwd)"
case "$(uname -m)" in x86_64|amd64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;; armv7*|arm*) arch=arm ;; *) arch="$(uname -m)" ;; esac

PREFIX="${INSTALL_SKIFF_PREFIX:-/usr/local}"
BIN_DIR="${INSTALL_SKIFF_BIN_DIR:-$PREFIX/bin}"
LIB_DIR="${INSTALL_SKIFF_LIB_DIR:-$PREFIX/lib/skiff}"
SYSTEMD_DIR="${INSTALL_SKIFF_SYSTEMD_DIR:-/etc/systemd/system}"
OPENRC_DIR="${INSTALL_SKIFF_OPENRC_DIR:-/etc/init.d}"
CONFIG_DIR="${INSTALL_SKIFF_CONFIG_DIR:-/etc/skiff}"
DATA_DIR="${INSTALL_SKIFF_DATA_DIR:-/var/lib/skiff}"
RUN_DIR="${INSTALL_SKIFF_RUN_DIR:-/run/skiff}"
LOG_DIR="${INSTALL_SKIFF_LOG_DIR:-/var/log}"
READY_TIMEOUT="${INSTALL_SKIFF_READY_TIMEOUT:-120}"

# --- what to run: k3s's rules (flags alone mean the server; SKIFF_URL means an agent) ---
cmd_exec="${INSTALL_SKIFF_EXEC:-}"
if [ -z "$cmd_exec" ]; then if [ -n "${SKIFF_URL:-}" ]; then cmd_exec=agent; else cmd_exec=server; fi; fi
case "$cmd_exec" in
  server|server\ *|agent|agent\ *) ;;
  -*) cmd_exec="server $cmd_exec" ;;
  *) fatal "INSTALL_SKIFF_EXEC must start with 'server', 'agent' or a flag (got: $cmd_exec)" ;;
esac
role="${cmd_exec%% *}"
if [ "$role" = agent ]; then
  SERVICE=skiff-agent
  [ -n "${SKIFF_URL:-}" ] || [[ "$cmd_exec" == *--server* || "$cmd_exec" == *" -s "* ]] || fatal "an agent needs SKIFF_URL (or --server in INSTALL_SKIFF_EXEC)"
  [ -n "${SKIFF_TOKEN:-}" ] || [[ "$cmd_exec" == *--token* || "$cmd_exec" == *" -t "* ]] || fatal "an agent needs SKIFF_TOKEN (or --token in INSTALL_SKIFF_EXEC)"
else
  SERVICE=skiff
fi

# --- prerequisites: checked, never fetched ---
[ "$(id -u)" -eq 0 ] || fatal "run install.sh as root (it installs a service, containers and network devices)"
node_bin="${SKIFF_NODE:-$(command -v node || true)}"
[ -n "$node_bin" ] || fatal "Node.js >= 20 is needed and 'node' is not on PATH (or set SKIFF_NODE)"
node_major="$("$node_bin" -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || fatal "Node.js >= 20 is needed (found $("$node_bin" --version))"
node_bin="$(readlink -f "$node_bin")"

# --- the release: verified before anything is written to the prefix ---
staging=""
cleanup() { if [ -n "$staging" ]; then rm -rf "$staging"; fi; }
trap cleanup EXIT
if [ -f "$here/lib/skiff/main.js" ] && [ -z "${INSTALL_SKIFF_TARBALL:-}" ]; then
  src="$here"   # run from inside an unpacked release
else
  tarball="${INSTALL_SKIFF_TARBALL:-}"
  if [ -z "$tarball" ]; then
    shopt -s nullglob; found=("$here"/skiff-*-linux-"$arch".tar.gz); shopt -u nullglob
    [ "${#found[@]}" -eq 1 ] || fatal "found ${#found[@]} skiff-*-linux-$arch.tar.gz beside $0: name one with INSTALL_SKIFF_TARBALL"
    tarball="${found[0]}"
  fi
  [ -f "$tarball" ] || fatal "no release tarball at $tarball"
  sums="$(dirname "$tarball")/SHA256SUMS"
  [ -f "$sums" ] || fatal "no SHA256SUMS beside $tarball: cannot verify the release"
  want="$(awk -v f="$(basename "$tarball")" '$2 == f { print $1 }' "$sums")"
  [ -n "$want" ] || fatal "$sums lists no checksum for $(basename "$tarball")"
  got="$(sha256sum "$tarball" | awk '{ print $1 }')"
  [ "$want" = "$got" ] || fatal "checksum mismatch for $tarball: expected $want, got $got (a damaged or tampered download); nothing was installed"
  staging="$(mktemp -d "${TMPDIR:-/tmp}/skiff-install.XXXXXX")"
  tar -xzf "$tarball" -C "$staging" --no-same-owner
  src="$(echo "$staging"/skiff-*)"
fi
[ -f "$src/SHA256SUMS" ] || fatal "the release has no SHA256SUMS inside"
(cd "$src" && sha256sum --quiet --strict -c SHA256SUMS) >&2 || fatal "files of the release do not match its SHA256SUMS; nothing was installed"
version="$(cat "$src/VERSION")"

missing=()
while read -r pkg _; do
  case "$pkg" in ''|\#*) continue ;; esac
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done < "$src/debian-packages.txt"
if [ "${#missing[@]}" -gt 0 ]; then
  if command -v dpkg-query >/dev/null; then warn "Debian packages skiff uses are missing: ${missing[*]} (apt-get install them; see skiff check-config)"; fi
fi

# --- an installed different version is replaced only when asked ---
if [ -f "$LIB_DIR/VERSION" ]; then
  installed="$(cat "$LIB_DIR/VERSION")"
  if [ "$installed" != "$version" ] && ! truthy "${INSTALL_SKIFF_FORCE:-}"; then
    fatal "skiff $installed is installed in $LIB_DIR; refusing to install $version over it (set INSTALL_SKIFF_FORCE=true to replace it, or run skiff-uninstall.sh first)"
  fi
fi

# --- init system ---
init="${INSTALL_SKIFF_INIT:-}"
if [ -z "$init" ]; then
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then init=systemd
  elif command -v openrc-run >/dev/null && [ -d /run/openrc ]; then init=openrc
  else init=none; fi
fi
case "$init" in systemd|openrc|none) ;; *) fatal "INSTALL_SKIFF_INIT must be systemd, openrc or none (got: $init)" ;; esac

# --- the program: copied next to its final place, then swapped in (no half-installed tree) ---
info "installing skiff $version ($role) into $LIB_DIR"
# Directories this install creates (and its uninstaller removes when empty), kept across re-installs.
created=()
if [ -f "$LIB_DIR/install.env" ]; then read -r -a created <<< "$(sed -n "s/^CREATED_DIRS='\(.*\)'$/\1/p" "$LIB_DIR/install.env")"; fi
mkd() { for d in "$@"; do if [ ! -d "$d" ]; then mkdir -p "$d"; created+=("$d"); fi; done; }
mkd "$BIN_DIR" "$(dirname "$LIB_DIR")" "$CONFIG_DIR" "$DATA_DIR"
next="$LIB_DIR.new.$$"
rm -rf "$next"; cp -a "$src" "$next"
echo "$node_bin" > "$next/NODE"   # the launcher prefers the Node.js found at install time (services have a bare PATH)
if [ -d "$LIB_DIR" ]; then rm -rf "$LIB_DIR.old.$$"; mv "$LIB_DIR" "$LIB_DIR.old.$$"; fi
mv "$next" "$LIB_DIR"
rm -rf "$LIB_DIR.old.$$"
ln -sfn "$LIB_DIR/bin/skiff" "$BIN_DIR/skiff"

# What the uninstaller needs to know: every path chosen here.
cat > "$LIB_DIR/install.env" <<EOF
PREFIX='$PREFIX'
BIN_DIR='$BIN_DIR'
LIB_DIR='$LIB_DIR'
SYSTEMD_DIR='$SYSTEMD_DIR'
OPENRC_DIR='$OPENRC_DIR'
CONFIG_DIR='$CONFIG_DIR'
DATA_DIR='$DATA_DIR'
RUN_DIR='$RUN_DIR'
LOG_DIR='$LOG_DIR'
INIT='$init'
CREATED_DIRS=''
EOF
{ echo '#!/usr/bin/env bash'; echo "# Generated by install.sh for the install in $LIB_DIR."; echo "SKIFF_INSTALL_ENV='$LIB_DIR/install.env'"; tail -n +2 "$src/skiff-uninstall.sh"; } > "$LIB_DIR/skiff-uninstall.sh.gen"
mv "$LIB_DIR/skiff-uninstall.sh.gen" "$LIB_DIR/skiff-uninstall.sh"; chmod 755 "$LIB_DIR/skiff-uninstall.sh"
ln -sfn "$LIB_DIR/skiff-uninstall.sh" "$BIN_DIR/skiff-uninstall.sh"

# The config file (k3s's config.yaml): skiff reads it when present; an empty one to fill in.
if [ ! -f "$CONFIG_DIR/config.yaml" ]; then
  printf '# skiff configuration: flag names as keys (e.g. "node-label: [a=b]"); see skiff server --help.\n' > "$CONFIG_DIR/config.yaml"
fi

# --- the environment file: SKIFF_* of the installer's environment, and the chosen dirs ---
envfile="$CONFIG_DIR/$SERVICE.env"
{
  echo "# Environment of the $SERVICE service (written by install.sh; flags' SKIFF_* twins, see skiff $role --help)."
  echo "SKIFF_DATA_DIR=$DATA_DIR"
  if [ "$role" = server ]; then echo "SKIFF_WRITE_KUBECONFIG=${SKIFF_WRITE_KUBECONFIG:-$CONFIG_DIR/skiff.yaml}"; fi
  echo "SKIFF_CONFIG_FILE=${SKIFF_CONFIG_FILE:-$CONFIG_DIR/config.yaml}"
  env | grep -E '^SKIFF_[A-Z0-9_]+=' | grep -vE '^SKIFF_(DATA_DIR|WRITE_KUBECONFIG|CONFIG_FILE|NODE)=' | sort || true
} > "$envfile.tmp"
chmod 600 "$envfile.tmp"; mv "$envfile.tmp" "$envfile"
kubeconfig="$(sed -n 's/^SKIFF_WRITE_KUBECONFIG=//p' "$envfile")"

# The command line of the service (quoted for the unit; words split as the shell splits them).
read -r -a exec_words <<< "$cmd_exec"
exec_line="$BIN_DIR/skiff"; for w in "${exec_words[@]}"; do exec_line+=" $w"; done
wait_line="$BIN_DIR/skiff wait-ready --role $role --data-dir $DATA_DIR --timeout $READY_TIMEOUT"
if [ "$role" = server ]; then wait_line+=" --kubeconfig $kubeconfig"; fi

case "$init" in
systemd)
  mkd "$SYSTEMD_DIR"
  # As k3s's unit, except readiness: Node.js has no unix datagram socket for sd_notify, and
  # `systemd-notify` from a child races its own exit (systemd may not attribute the message), so the
  # unit is Type=exec and ExecStartPost waits until the node answers: `systemctl start` returns when
  # skiff is ready, as with Type=notify.
  cat > "$SYSTEMD_DIR/$SERVICE.service" <<EOF
[Unit]
Description=skiff: lightweight Kubernetes ($role)
Documentation=file://$LIB_DIR/README.md
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=exec
EnvironmentFile=-$envfile
KillMode=process
Delegate=yes
# Having non-zero Limit*s causes performance problems due to accounting overhead in the kernel.
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStartPre=-/sbin/modprobe vxlan
ExecStart=$exec_line
ExecStartPost=$wait_line
EOF
  if ! truthy "${INSTALL_SKIFF_SKIP_ENABLE:-}"; then systemctl daemon-reload; systemctl enable "$SERVICE" >/dev/null 2>&1; fi
  if ! truthy "${INSTALL_SKIFF_SKIP_START:-}"; then info "starting $SERVICE.service"; systemctl daemon-reload; systemctl restart "$SERVICE"; fi
  ;;
openrc)
  mkd "$OPENRC_DIR"
  cat > "$OPENRC_DIR/$SERVICE" <<EOF
#!/sbin/openrc-run
# skiff ($role), written by install.sh.
depend() { after network-online; want cgroups; }
# The SKIFF_* environment, exported to supervise-daemon and so to skiff.
set -o allexport
[ -f $envfile ] && . $envfile
set +o allexport
supervisor=supervise-daemon
name=$SERVICE
command="$BIN_DIR/skiff"
command_args="${exec_words[*]}"
output_log=$LOG_DIR/$SERVICE.log
error_log=$LOG_DIR/$SERVICE.log
pidfile="/var/run/$SERVICE.pid"
respawn_delay=5
respawn_max=0
rc_ulimit="-n 1048576 -u unlimited"
start_post() { $wait_line; }
EOF
  chmod 755 "$OPENRC_DIR/$SERVICE"
  if ! truthy "${INSTALL_SKIFF_SKIP_ENABLE:-}"; then rc-update add "$SERVICE" default >/dev/null; fi
  if ! truthy "${INSTALL_SKIFF_SKIP_START:-}"; then info "starting $SERVICE"; rc-service "$SERVICE" restart; fi
  ;;
none)
  warn "no init system found (no systemd, no OpenRC: a container or CI?): running $SERVICE as a supervised background process (it is not started at boot)"
  mkd "$RUN_DIR" "$LOG_DIR"
  pidfile="$RUN_DIR/$SERVICE.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    info "stopping the running supervisor (pid $(cat "$pidfile"))"
    kill "$(cat "$pidfile")" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$(cat "$pidfile" 2>/dev/null || echo 0)" 2>/dev/null || break; sleep 0.1; done
  fi
  if ! truthy "${INSTALL_SKIFF_SKIP_START:-}"; then
    info "starting $SERVICE (log: $LOG_DIR/$SERVICE.log, supervisor pid file: $pidfile)"
    setsid nohup "$LIB_DIR/bin/skiff-supervise" "$pidfile" "$envfile" "$BIN_DIR/skiff" "${exec_words[@]}" >>"$LOG_DIR/$SERVICE.log" 2>&1 < /dev/null &
    for _ in $(seq 1 50); do [ -f "$pidfile" ] && break; sleep 0.1; done
  fi
  ;;
esac

sed -i "s|^CREATED_DIRS=.*|CREATED_DIRS='${created[*]}'|" "$LIB_DIR/install.env"

if ! truthy "${INSTALL_SKIFF_SKIP_START:-}" && [ "$init" = none ]; then
  info "waiting for $SERVICE to be ready"
  if ! $wait_line; then
    warn "$SERVICE did not become ready; last log lines:"; tail -n 20 "$LOG_DIR/$SERVICE.log" >&2 || true
    exit 1
  fi
fi

info "skiff $version installed ($init). Uninstall: $BIN_DIR/skiff-uninstall.sh"
if [ "$role" = server ]; then
  info "kubeconfig: $kubeconfig   (kubectl --kubeconfig $kubeconfig get nodes)"
  if [ -f "$DATA_DIR/server/node-token" ]; then info "join token: $(cat "$DATA_DIR/server/node-token")"
  else info "join token: in $DATA_DIR/server/node-token once the server has started"; fi
fi
echo "KUBECONFIG=${kubeconfig:-}"
