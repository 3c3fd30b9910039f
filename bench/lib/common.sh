# Shell functions shared by bench/proxy-vs-nginx/run and bench/cache-vs-nginx/run: logging,
# the register of started processes and the cleanup on exit, installing missing tools with
# apt-get, building voltfleet-proxy, rendering templates, starting NGINX, and reading a
# process's CPU time and peak RSS from /proc.
#
# Source it after setting HERE (the script's directory) and REPO (the repository root):
#
#   source "$REPO/bench/lib/common.sh"
#
# Variables it uses or sets: PIDS (processes to stop), WORK (temporary directory, removed on a
# clean exit unless KEEP=1), POLICY_RC_CREATED, STARTED_PID, VF_BIN, TARGET_DIR.
# shellcheck shell=bash
# Variables set here are read by the scripts that source this file:
# shellcheck disable=SC2034

die() {
    echo "run: error: $*" >&2
    exit 1
}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# --------------------------------------------------------------------------------------------
# Cleanup: every process a script starts is recorded in PIDS and stopped on any exit.
# --------------------------------------------------------------------------------------------
PIDS=()
WORK=""
KEEP=${KEEP:-0}
POLICY_RC_CREATED=0

children_of() { # PIDs whose parent is $1
    local parent=$1 stat rest
    for stat in /proc/[0-9]*/stat; do
        { read -r rest <"$stat"; } 2>/dev/null || continue
        rest=${rest##*) }
        # shellcheck disable=SC2086
        set -- $rest
        [[ ${2:-} == "$parent" ]] && { local p=${stat#/proc/}; echo "${p%/stat}"; }
    done
    return 0
}

stop_pid() { # stop_pid PID [SIGNAL]: signal, wait up to 3 s, then SIGKILL (with its children)
    local pid=$1 sig=${2:-TERM} kids i
    kill -0 "$pid" 2>/dev/null || return 0
    kids=$(children_of "$pid")
    kill -"$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    for k in $kids; do kill -KILL "$k" 2>/dev/null || true; done
    wait "$pid" 2>/dev/null || true
}

forget_pid() {
    local keep=() p
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]+"${keep[@]}"}")
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local p
    for p in "${PIDS[@]+"${PIDS[@]}"}"; do stop_pid "$p"; done
    if [[ $POLICY_RC_CREATED == 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ $KEEP == 1 || ($rc -ne 0 && $rc -ne 130 && $rc -ne 143) ]]; then
            echo "run: temporary files (configs, logs, raw output) kept in $WORK" >&2
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}

install_traps() {
    trap cleanup EXIT
    trap 'echo; echo "run: interrupted, stopping everything" >&2; exit 130' INT
    trap 'echo "run: terminated, stopping everything" >&2; exit 143' TERM
}

# --------------------------------------------------------------------------------------------
# Tools: install only what is missing.
# --------------------------------------------------------------------------------------------
declare -A PACKAGE_OF=([nginx]=nginx [wrk]=wrk [h2load]=nghttp2-client [openssl]=openssl [python3]=python3
                      [valgrind]=valgrind [callgrind_control]=valgrind)

find_tool() { # nginx lives in /usr/sbin, which a non-login root shell may not have on PATH
    command -v "$1" 2>/dev/null || { [[ -x /usr/sbin/$1 ]] && echo "/usr/sbin/$1"; } || true
}

# install_missing TOOL...: apt-get installs the packages of the tools not found, and only those.
install_missing() {
    local missing=() tool sudo="" apt_log
    for tool in "$@"; do
        [[ -n $(find_tool "$tool") ]] || missing+=("${PACKAGE_OF[$tool]:-$tool}")
    done
    mapfile -t missing < <(printf '%s\n' "${missing[@]+"${missing[@]}"}" | sort -u | grep -v '^$' || true)
    [[ ${#missing[@]} -gt 0 ]] || return 0
    if [[ $EUID -ne 0 ]]; then
        command -v sudo >/dev/null || die "missing ${missing[*]} and not root (no sudo): install them with apt-get"
        sudo=sudo
    fi
    log "installing ${missing[*]} with apt-get"
    apt_log=$(mktemp /tmp/vf-bench-apt.XXXXXX.log)
    # Keep the package's own nginx service from starting on port 80 (the Docker convention):
    # the scripts run their own NGINX instances.
    if [[ ! -e /usr/sbin/policy-rc.d && $EUID -eq 0 ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        POLICY_RC_CREATED=1
    fi
    if ! { $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
           $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
               -o DPkg::Lock::Timeout=120 "${missing[@]}"; } >"$apt_log" 2>&1; then
        tail -n 25 "$apt_log" >&2
        die "apt-get could not install ${missing[*]} (full log: $apt_log)"
    fi
    if [[ $POLICY_RC_CREATED == 1 ]]; then rm -f /usr/sbin/policy-rc.d; POLICY_RC_CREATED=0; fi
    rm -f "$apt_log"
}

# require_tool TOOL: prints the tool's path, or stops (`NGINX=$(require_tool nginx)`).
require_tool() {
    local path
    path=$(find_tool "$1")
    [[ -n $path ]] || die "$1 is still missing after apt-get; install it and run again"
    echo "$path"
}

# --------------------------------------------------------------------------------------------
# voltfleet-proxy: build in release mode if the binary is missing.
# --------------------------------------------------------------------------------------------
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR="$REPO/$TARGET_DIR"

# shellcheck disable=SC2120 # the scripts pass ARGS (--example ...)
# cargo_release ARGS...: `cargo build --release -p voltfleet-proxy ARGS...`, its errors shown on failure.
cargo_release() {
    command -v cargo >/dev/null || [[ -x $HOME/.cargo/bin/cargo ]] || die "cargo not found: install a Rust toolchain (rustup) to build voltfleet-proxy"
    local cargo command build_log
    cargo=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
    command="cargo build --release -p voltfleet-proxy${*:+ $*}"
    log "building: $command (a first build takes several minutes)"
    build_log=$(mktemp /tmp/vf-bench-build.XXXXXX.log)
    if ! (cd "$REPO" && "$cargo" build --release -p voltfleet-proxy "$@") >"$build_log" 2>&1; then
        grep -E -A6 '^error' "$build_log" | head -n 40 >&2 || tail -n 40 "$build_log" >&2
        die "$command failed (full log: $build_log)"
    fi
    rm -f "$build_log"
}

# ensure_voltfleet_proxy REBUILD: sets VF_BIN ($VOLTFLEET_PROXY or the release binary, built
# when missing or when REBUILD is 1) and warns when it is older than the proxy's sources.
ensure_voltfleet_proxy() {
    local rebuild=$1
    VF_BIN=${VOLTFLEET_PROXY:-$TARGET_DIR/release/voltfleet-proxy}
    if [[ $rebuild == 1 || ! -x $VF_BIN ]]; then
        [[ -z ${VOLTFLEET_PROXY:-} ]] || [[ $rebuild == 1 ]] || die "VOLTFLEET_PROXY=$VF_BIN is not an executable file"
        # shellcheck disable=SC2119 # the binary itself: no extra arguments
        cargo_release
        [[ -x $VF_BIN ]] || die "the build succeeded but $VF_BIN does not exist (CARGO_TARGET_DIR?)"
    fi
    if [[ -z ${VOLTFLEET_PROXY:-} ]] &&
       [[ -n $(find "$REPO/proxy" "$REPO/Cargo.toml" "$REPO/Cargo.lock" -newer "$VF_BIN" -type f -print -quit 2>/dev/null) ]]; then
        echo "run: warning: $VF_BIN is older than the proxy's sources; pass --rebuild to measure the current code" >&2
    fi
}

# --------------------------------------------------------------------------------------------
# Configurations and processes.
# --------------------------------------------------------------------------------------------
render() { # render TEMPLATE OUT KEY=VALUE...: TEMPLATE is under $HERE/templates
    local template=$1 out=$2 text kv
    shift 2
    text=$(<"$HERE/templates/$template")
    for kv in "$@"; do text=${text//@${kv%%=*}@/${kv#*=}}; done
    [[ $text != *@[A-Z_]*@* ]] || die "unfilled placeholder in $template: $(grep -o '@[A-Z_]*@' <<<"$text" | head -n 1)"
    printf '%s\n' "$text" >"$out"
}

# nginx_h2_syntax VERSION: sets H2_LISTEN / H2_DIRECTIVE (`http2 on;` exists from NGINX 1.25.1;
# before it, http2 is a parameter of `listen`).
nginx_h2_syntax() {
    if printf '%s\n1.25.1\n' "$1" | sort -V -C; then
        H2_LISTEN="http2"; H2_DIRECTIVE=""
    else
        H2_LISTEN=""; H2_DIRECTIVE="http2 on;"
    fi
}

show_tail() { # show_tail LABEL FILE
    echo "---- last lines of $1 ($2) ----" >&2
    tail -n 20 "$2" >&2 2>/dev/null || echo "(empty)" >&2
    echo "----" >&2
}

start_nginx() { # start_nginx DIR LABEL [PIN...] -> sets STARTED_PID; needs NGINX
    local dir=$1 label=$2
    shift 2
    if ! "$NGINX" -t -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/check.log" 2>&1; then
        show_tail "nginx -t ($label)" "$dir/check.log"
        die "the $label NGINX configuration is invalid"
    fi
    "$@" "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;' \
        >"$dir/stdout.log" 2>"$dir/stderr.log" </dev/null &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

# check_voltfleet_config FILE LOG: `voltfleet-proxy -t -c FILE`, stopping with its report.
check_voltfleet_config() {
    if ! "$VF_BIN" -t -c "$1" >"$2" 2>&1; then
        show_tail "voltfleet-proxy -t" "$2"
        die "voltfleet-proxy rejected its configuration ($1)"
    fi
}

# CPU ticks (utime + stime) of a process and its children (NGINX master + workers).
cpu_ticks() {
    local total=0 p stat rest
    for p in "$1" $(children_of "$1"); do
        { read -r stat <"/proc/$p/stat"; } 2>/dev/null || continue
        rest=${stat##*) }
        # shellcheck disable=SC2086
        set -- $rest
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

# Peak resident set (VmHWM, kB) summed over a process and its children.
peak_rss_kb() {
    local total=0 p kb
    for p in "$1" $(children_of "$1"); do
        kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null) || continue
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

CLK_TCK=$(getconf CLK_TCK)

# report_load: prints the load average (sets LOAD) and warns when the machine is busy.
report_load() {
    LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
    log "load average before the runs: $LOAD"
    if awk -v l="${LOAD%% *}" 'BEGIN { exit !(l > 0.5) }'; then
        log "warning: other work is using the CPUs (1-minute load ${LOAD%% *}); figures will be noisy, compare ratios"
    fi
}
