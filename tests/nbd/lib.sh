# Helpers for the NBD tests: start nbdkit with the VDI plugin on a Unix
# socket in the scratch directory, stop or kill it, and compare maps.
# Builds on the vdi tool's test helpers (TAP, $T, the QEMU oracles).
#
# From meson: $1 is the vdi executable; NBDKIT_VDI_PLUGIN the plugin,
# NBDKIT, NBDINFO, NBDCOPY, FIO the clients (empty when not installed),
# NBDKIT_PRELOAD sanitizer runtimes nbdkit needs to load a sanitized
# plugin, NBD_SKIP a reason to skip everything.

. "$(dirname "$0")/../cli/lib.sh"

PLUGIN=${NBDKIT_VDI_PLUGIN:-}
NBDKIT=${NBDKIT-$(command -v nbdkit || true)}
NBDINFO=${NBDINFO-$(command -v nbdinfo || true)}
NBDCOPY=${NBDCOPY-$(command -v nbdcopy || true)}
FIO=${FIO-$(command -v fio || true)}

_pidfiles=""
_cleanup() {
	for p in $_pidfiles; do
		[ -s "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null
	done
	rm -rf "$T"
}
trap _cleanup EXIT

need_nbdkit() {
	[ -z "${NBD_SKIP:-}" ] || skip_all "$NBD_SKIP"
	[ -n "$NBDKIT" ] && [ -x "$NBDKIT" ] ||
		skip_all "nbdkit not found (Debian: nbdkit)"
	[ -n "$PLUGIN" ] && [ -f "$PLUGIN" ] ||
		skip_all "nbdkit-vdi-plugin.so not built (needs nbdkit-plugin-dev)"
}

need_nbdinfo() {
	[ -n "$NBDINFO" ] && [ -x "$NBDINFO" ] ||
		skip_all "nbdinfo not found (Debian: libnbd-bin)"
}

need_nbdcopy() {
	[ -n "$NBDCOPY" ] && [ -x "$NBDCOPY" ] ||
		skip_all "nbdcopy not found (Debian: libnbd-bin)"
}

# nbdkit ARGS...: nbdkit, with the sanitizer runtimes a sanitized plugin
# needs.
nbdkit_run() {
	if [ -n "${NBDKIT_PRELOAD:-}" ]; then
		LD_PRELOAD=$NBDKIT_PRELOAD \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
			"$NBDKIT" "$@"
	else
		"$NBDKIT" "$@"
	fi
}

# serve NAME PARAMS...: nbdkit in the background serving the plugin with
# PARAMS on $T/NAME.sock, its pid in $T/NAME.pid, its log in $T/NAME.log;
# the URI in $URI.  Fails (with the log on stderr) if nbdkit does.
# $SERVE_OPTS: more options for nbdkit (-v, say).
serve() {
	local name=$1 i
	shift
	rm -f "$T/$name.sock" "$T/$name.pid"
	_pidfiles="$_pidfiles $T/$name.pid"
	# shellcheck disable=SC2086
	nbdkit_run ${SERVE_OPTS:-} --log=stderr -U "$T/$name.sock" -P "$T/$name.pid" \
		"$PLUGIN" "$@" 2>"$T/$name.log" || {
		cat "$T/$name.log" >&2
		return 1
	}
	# The pid file appears once nbdkit listens.
	for i in $(seq 100); do
		[ -s "$T/$name.pid" ] && [ -S "$T/$name.sock" ] && break
		sleep 0.05
	done
	URI="nbd+unix:///?socket=$T/$name.sock"
}

_wait_gone() {
	local pid=$1 i
	for i in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	echo "# nbdkit $pid did not exit" >&2
	return 1
}

# wait_log NAME TEXT: wait (10 s at most) until nbdkit's log has TEXT.
wait_log() {
	local i
	for i in $(seq 200); do
		grep -q "$2" "$T/$1.log" && return 0
		sleep 0.05
	done
	echo "# '$2' never appeared in $T/$1.log" >&2
	return 1
}

# stop NAME [SIGNAL]: end that nbdkit (TERM: it closes the image) and wait
# until it has gone and released the image.
stop() {
	local pid
	pid=$(cat "$T/$1.pid" 2>/dev/null) || return 1
	kill -"${2:-TERM}" "$pid" 2>/dev/null
	_wait_gone "$pid"
}

# norm_map nbdinfo|qemu FILE: a JSON map (nbdinfo --map --json, or
# qemu-img/vdi map --output=json) as lines "start length zero data",
# neighbours with the same flags merged.
norm_map() {
	python3 - "$@" <<'PY'
import json, sys
kind, path = sys.argv[1], sys.argv[2]
runs = []
for e in json.load(open(path)):
    if kind == "nbdinfo":
        s, n, t = e["offset"], e["length"], e["type"]
        z, d = bool(t & 2), not (t & 1)
    else:
        s, n, z, d = e["start"], e["length"], e["zero"], e["data"]
    if runs and runs[-1][2:] == [z, d] and runs[-1][0] + runs[-1][1] == s:
        runs[-1][1] += n
    else:
        runs.append([s, n, z, d])
for r in runs:
    print(*r)
PY
}
