#!/usr/bin/env bash
# Install, start and stop the real object-store servers the integration tests use, on
# 127.0.0.1 only (docs/design.md, "Object-store servers the tests run", says why these):
#
#   scripts/servers.sh install [moto|azurite|webdav|all]   (default: all)
#   scripts/servers.sh start KIND STATE_DIR                 KIND = moto|azurite|webdav
#   scripts/servers.sh stop STATE_DIR
#   scripts/servers.sh azure-request METHOD URL [BODY_FILE] [NAME:VALUE ...]
#
# install: moto (S3) into .tools/venv, Azurite (Azure Blob) into .tools/node, rclone (WebDAV)
#   from Debian. Idempotent: prints one line per tool it installs, nothing when all present.
#   Concurrent callers are serialised with flock on .tools/install.lock.
# start: installs KIND when missing (messages on stderr), starts it on a free port in the
#   background (log: STATE_DIR/KIND.log), waits until it answers, creates the bucket or
#   container, then writes STATE_DIR/KIND.env and prints the same KEY=VALUE lines on stdout:
#     moto:    PID PORT ENDPOINT BUCKET ACCESS_KEY_ID SECRET_ACCESS_KEY REGION
#     azurite: PID PORT ENDPOINT ACCOUNT ACCESS_KEY CONTAINER
#     webdav:  PID PORT URL ROOT
#   PID is the server process itself: `kill PID` stops it.
# stop: TERM (then KILL after 3 s) every server recorded in STATE_DIR/*.env.
# azure-request: one SharedKey-signed request against Azurite's dev account (a test helper);
#   body to stdout, exit 0 on 2xx, otherwise the status and body on stderr and exit 1.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS="$ROOT/.tools"
VENV="$TOOLS/venv"
NODE_PREFIX="$TOOLS/node"

MOTO_VERSION=5.2.5
AZURITE_VERSION=3.35.0
MOTO_MARKER="$VENV/.snapdrill-moto-$MOTO_VERSION"
AZURITE_MARKER="$NODE_PREFIX/.snapdrill-azurite-$AZURITE_VERSION"
MOTO_BIN="$VENV/bin/moto_server"
AZURITE_BIN="$NODE_PREFIX/node_modules/.bin/azurite-blob"

BUCKET=snapdrill-test
S3_KEY=testing
S3_SECRET=testing-secret
S3_REGION=us-east-1
AZ_ACCOUNT=devstoreaccount1
# Azurite's well-known development account key (public, in Microsoft's documentation).
AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

START_TIMEOUT=120
START_ATTEMPTS=5

die() { echo "servers.sh: $*" >&2; exit 1; }
usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

# The real interpreter behind python3 (pyenv's shim costs a fork of bash per call).
PY=""
py() {
  if [ -z "$PY" ]; then
    PY=$(python3 -c 'import sys; print(sys.executable)') || die "python3 is required"
  fi
  "$PY" - "$@" <<'PYEOF'
import base64, hashlib, hmac, http.client, os, socket, sys, time, urllib.parse
from email.utils import formatdate

def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    print(port)

def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False

def owns_listen(pid, port):
    """True when process pid holds a socket listening on 127.0.0.1:port (IPv4)."""
    want = "0100007F:%04X" % port
    inodes = set()
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[1] == want and parts[3] == "0A":
                    inodes.add("socket:[%s]" % parts[9])
    except OSError:
        return False
    if not inodes:
        return False
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return True
            except OSError:
                pass
    except OSError:
        return False
    return False

def answers(port, path):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", path)
        c.getresponse().read()
        c.close()
        return True
    except (OSError, http.client.HTTPException):
        return False

def wait_ready(pid, port, path, timeout):
    """Exit 0 once pid listens on port and answers HTTP; 2 if it died; 3 on timeout."""
    pid, port, deadline = int(pid), int(port), time.monotonic() + float(timeout)
    while True:
        if not alive(pid):
            sys.exit(2)
        if owns_listen(pid, port) and answers(port, path):
            sys.exit(0)
        if time.monotonic() > deadline:
            sys.exit(3)
        time.sleep(0.1)

def azure(method, url, body=b"", headers=None):
    """One SharedKey-signed request to Azurite; returns (status, body bytes)."""
    account = os.environ["AZ_ACCOUNT"]
    key = base64.b64decode(os.environ["AZ_KEY"])
    u = urllib.parse.urlsplit(url)
    path = u.path or "/"
    h = {k.lower(): v for k, v in (headers or {}).items()}
    h["x-ms-date"] = formatdate(usegmt=True)
    h.setdefault("x-ms-version", "2021-08-06")
    h["content-length"] = str(len(body))
    canon_headers = "".join(
        f"{k}:{h[k].strip()}\n" for k in sorted(k for k in h if k.startswith("x-ms-")))
    # Emulator-style path (/account/container/...): the resource still starts with /account.
    canon_res = f"/{account}{path}"
    q = {}
    for k, v in urllib.parse.parse_qsl(u.query, keep_blank_values=True):
        q.setdefault(k.lower(), []).append(v)
    for k in sorted(q):
        canon_res += f"\n{k}:{','.join(sorted(q[k]))}"
    string_to_sign = "\n".join([
        method,
        h.get("content-encoding", ""),
        h.get("content-language", ""),
        "" if len(body) == 0 else str(len(body)),
        h.get("content-md5", ""),
        h.get("content-type", ""),
        "",  # Date: x-ms-date is used instead
        h.get("if-modified-since", ""),
        h.get("if-match", ""),
        h.get("if-none-match", ""),
        h.get("if-unmodified-since", ""),
        h.get("range", ""),
        canon_headers + canon_res,
    ])
    sig = base64.b64encode(
        hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).digest()).decode()
    h["authorization"] = f"SharedKey {account}:{sig}"
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30)
    c.request(method, path + ("?" + u.query if u.query else ""), body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data

def azure_request(method, url, body_file="", *hdrs):
    body = b""
    if body_file:
        with open(body_file, "rb") as f:
            body = f.read()
    headers = {}
    for hv in hdrs:
        k, _, v = hv.partition(":")
        headers[k.strip()] = v.strip()
    path = urllib.parse.urlsplit(url).path
    if method == "PUT" and path.count("/") >= 3 and "x-ms-blob-type" not in {
            k.lower() for k in headers}:
        headers["x-ms-blob-type"] = "BlockBlob"
    status, data = azure(method, url, body, headers)
    if 200 <= status < 300:
        sys.stdout.buffer.write(data)
        return
    sys.stderr.write(f"HTTP {status}\n{data.decode('utf-8', 'replace')}\n")
    sys.exit(1)

def azure_mkcontainer(endpoint, container):
    url = f"{endpoint}/{container}?restype=container"
    status, data = azure("PUT", url)
    if status not in (201, 409):  # 409: exists already (a reused STATE_DIR)
        sys.exit(f"create container: HTTP {status}\n{data.decode('utf-8', 'replace')}")
    status, data = azure("GET", url)
    if status != 200:
        sys.exit(f"container check: HTTP {status}\n{data.decode('utf-8', 'replace')}")

cmd, args = sys.argv[1], sys.argv[2:]
{"free-port": free_port, "wait-ready": wait_ready, "azure-request": azure_request,
 "azure-mkcontainer": azure_mkcontainer}[cmd](*args)
PYEOF
}

# --- install ---------------------------------------------------------------------------

moto_installed() { [ -e "$MOTO_MARKER" ] && [ -x "$MOTO_BIN" ] && [ -x "$VENV/bin/python" ]; }
azurite_installed() { [ -e "$AZURITE_MARKER" ] && [ -x "$AZURITE_BIN" ]; }
webdav_installed() { command -v rclone >/dev/null 2>&1; }

# Run a noisy install step with its output in a log; on failure show the log's tail.
quietly() {
  local log=$1; shift
  if ! "$@" >>"$log" 2>&1; then
    echo "servers.sh: failed: $* (log: $log)" >&2
    tail -n 30 "$log" >&2
    return 1
  fi
}

install_moto() {
  moto_installed && return 0
  local t0=$SECONDS log="$TOOLS/install-moto.log"
  : >"$log"
  rm -rf "$VENV"
  quietly "$log" python3 -m venv "$VENV"
  quietly "$log" "$VENV/bin/python" -m pip install --disable-pip-version-check -q \
    "moto[server]==$MOTO_VERSION"
  [ -x "$MOTO_BIN" ] || die "moto_server missing after install (log: $log)"
  touch "$MOTO_MARKER"
  echo "installed moto $MOTO_VERSION into .tools/venv ($((SECONDS - t0)) s)"
}

install_azurite() {
  azurite_installed && return 0
  local t0=$SECONDS log="$TOOLS/install-azurite.log"
  : >"$log"
  rm -rf "$NODE_PREFIX"
  mkdir -p "$NODE_PREFIX"
  quietly "$log" npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --loglevel=error \
    "azurite@$AZURITE_VERSION"
  [ -x "$AZURITE_BIN" ] || die "azurite-blob missing after install (log: $log)"
  touch "$AZURITE_MARKER"
  echo "installed azurite $AZURITE_VERSION into .tools/node ($((SECONDS - t0)) s)"
}

install_webdav() {
  webdav_installed && return 0
  local t0=$SECONDS log="$TOOLS/install-rclone.log" apt=()
  : >"$log"
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to apt-get install rclone"
    apt=(sudo -n)  # -n: fail rather than hang on a password prompt
  fi
  apt+=(env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300)
  # Refresh the package index only when the install fails without it (it is slow).
  if ! "${apt[@]}" install -y rclone >>"$log" 2>&1; then
    quietly "$log" "${apt[@]}" update
    quietly "$log" "${apt[@]}" install -y rclone
  fi
  webdav_installed || die "rclone missing after install (log: $log)"
  echo "installed rclone $(rclone version 2>/dev/null | sed -n '1s/^rclone //p') from Debian ($((SECONDS - t0)) s)"
}

do_install() {
  local kinds=() k missing=()
  case "${1:-all}" in
    all) kinds=(moto azurite webdav) ;;
    moto|azurite|webdav) kinds=("$1") ;;
    *) die "install: unknown kind '$1' (moto|azurite|webdav|all)" ;;
  esac
  for k in "${kinds[@]}"; do "${k}_installed" || missing+=("$k"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  mkdir -p "$TOOLS"
  # A subshell holds the lock, so the descriptor is closed before any server starts (a
  # server inheriting it would keep the lock held for its whole life).
  # While waiting, return as soon as another process has finished what we need (each
  # install marks completion last), rather than waiting for its installs of other kinds.
  (
    until flock -n 9; do
      done_all=1
      for k in "${missing[@]}"; do "${k}_installed" || done_all=0; done
      [ $done_all -eq 1 ] && exit 0
      sleep 0.5
    done
    for k in "${missing[@]}"; do "install_$k"; done
  ) 9>"$TOOLS/install.lock"
}

# --- start -----------------------------------------------------------------------------

write_env() {
  local env_file=$1; shift
  printf '%s\n' "$@" >"$env_file.tmp"
  mv "$env_file.tmp" "$env_file"
  printf '%s\n' "$@"
}

do_start() {
  [ $# -eq 2 ] || usage
  local kind=$1 state=$2
  case "$kind" in moto|azurite|webdav) ;; *) die "start: unknown kind '$kind'" ;; esac
  do_install "$kind" >&2
  mkdir -p "$state"
  state=$(cd "$state" && pwd)
  local log="$state/$kind.log" probe="/" port pid rc attempt cmd
  : >"$log"
  case "$kind" in
    azurite) mkdir -p "$state/azurite"; probe="/$AZ_ACCOUNT?comp=list" ;;
    webdav) mkdir -p "$state/webdav-root" ;;
  esac

  for attempt in $(seq 1 "$START_ATTEMPTS"); do
    port=$(py free-port)
    case "$kind" in
      moto) cmd=("$MOTO_BIN" -H 127.0.0.1 -p "$port") ;;
      azurite) cmd=("$AZURITE_BIN" --blobHost 127.0.0.1 --blobPort "$port"
                    --location "$state/azurite" --silent --skipApiVersionCheck
                    --disableTelemetry) ;;
      webdav) cmd=(rclone serve webdav --addr "127.0.0.1:$port" "$state/webdav-root") ;;
    esac
    echo "== attempt $attempt: ${cmd[*]}" >>"$log"
    # The background process is the server itself ($! is its PID); it holds none of our
    # descriptors, so a caller reading our stdout sees EOF when this script exits.
    "${cmd[@]}" </dev/null >>"$log" 2>&1 &
    pid=$!
    rc=0
    py wait-ready "$pid" "$port" "$probe" "$START_TIMEOUT" || rc=$?
    [ "$rc" -eq 0 ] && break
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ "$rc" -eq 2 ] && [ "$attempt" -lt "$START_ATTEMPTS" ]; then
      continue  # it exited early: most likely the port was taken meanwhile; try another
    fi
    echo "servers.sh: $kind did not answer on 127.0.0.1:$port" \
      "($([ "$rc" -eq 3 ] && echo "timeout after ${START_TIMEOUT}s" || echo "it exited")); log tail:" >&2
    tail -n 30 "$log" >&2
    exit 1
  done

  local fail=""
  case "$kind" in
    moto)
      local endpoint="http://127.0.0.1:$port"
      local s3=(curl -sS --max-time 10 --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_KEY:$S3_SECRET")
      if ! "${s3[@]}" -f -o /dev/null -X PUT "$endpoint/$BUCKET" 2>>"$log" ||
         ! "${s3[@]}" -f -o /dev/null -I "$endpoint/$BUCKET" 2>>"$log"; then
        fail="could not create bucket $BUCKET"
      fi
      [ -n "$fail" ] || write_env "$state/moto.env" "PID=$pid" "PORT=$port" \
        "ENDPOINT=$endpoint" "BUCKET=$BUCKET" "ACCESS_KEY_ID=$S3_KEY" \
        "SECRET_ACCESS_KEY=$S3_SECRET" "REGION=$S3_REGION"
      ;;
    azurite)
      local endpoint="http://127.0.0.1:$port/$AZ_ACCOUNT"
      if ! AZ_ACCOUNT=$AZ_ACCOUNT AZ_KEY=$AZ_KEY py azure-mkcontainer "$endpoint" "$BUCKET" 2>>"$log"; then
        fail="could not create container $BUCKET"
      fi
      [ -n "$fail" ] || write_env "$state/azurite.env" "PID=$pid" "PORT=$port" \
        "ENDPOINT=$endpoint" "ACCOUNT=$AZ_ACCOUNT" "ACCESS_KEY=$AZ_KEY" "CONTAINER=$BUCKET"
      ;;
    webdav)
      write_env "$state/webdav.env" "PID=$pid" "PORT=$port" \
        "URL=http://127.0.0.1:$port/" "ROOT=$state/webdav-root"
      ;;
  esac
  if [ -n "$fail" ]; then
    kill "$pid" 2>/dev/null || true
    echo "servers.sh: $kind: $fail; log tail:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
}

# --- stop ------------------------------------------------------------------------------

# True when pid is alive and still the server a KIND.env recorded (guards against a
# recycled PID when stop runs twice).
is_server() {
  local pid=$1 kind=$2 cmdline state
  [ -r "/proc/$pid/cmdline" ] || return 1
  state=$(sed 's/^.*) //; s/ .*//' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  case "$kind" in
    moto) [[ $cmdline == *moto_server* ]] ;;
    azurite) [[ $cmdline == *azurite-blob* ]] ;;
    webdav) [[ $cmdline == *rclone*serve* ]] ;;
    *) return 0 ;;
  esac
}

do_stop() {
  [ $# -eq 1 ] || usage
  local state=$1 f kind pid pids=() kinds=() i
  [ -d "$state" ] || return 0
  for f in "$state"/*.env; do
    [ -e "$f" ] || continue
    kind=$(basename "$f" .env)
    pid=$(sed -n 's/^PID=\([0-9][0-9]*\)$/\1/p' "$f" | head -n 1)
    [ -n "$pid" ] || continue
    if is_server "$pid" "$kind"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid"); kinds+=("$kind")
    fi
  done
  [ ${#pids[@]} -eq 0 ] && return 0
  local left
  for _ in $(seq 30); do  # up to 3 s
    left=0
    for i in "${!pids[@]}"; do is_server "${pids[$i]}" "${kinds[$i]}" && left=1; done
    [ $left -eq 0 ] && return 0
    sleep 0.1
  done
  for i in "${!pids[@]}"; do
    is_server "${pids[$i]}" "${kinds[$i]}" && kill -KILL "${pids[$i]}" 2>/dev/null || true
  done
  return 0
}

# --- main ------------------------------------------------------------------------------

[ $# -ge 1 ] || usage
case "$1" in
  install) shift; [ $# -le 1 ] || usage; do_install "${1:-all}" ;;
  start) shift; do_start "$@" ;;
  stop) shift; do_stop "$@" ;;
  azure-request)
    shift; [ $# -ge 2 ] || usage
    AZ_ACCOUNT=$AZ_ACCOUNT AZ_KEY=$AZ_KEY py azure-request "$@" ;;
  -h|--help|help) usage 0 ;;
  *) usage ;;
esac
