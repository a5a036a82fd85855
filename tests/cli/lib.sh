# Helpers for the vdi command-line tests: TAP output, a scratch directory,
# the oracles (qemu-img, qemu-io, python3).  Sourced by every *.sh here.
#
# The tests get the vdi executable as $1 and, from meson, QEMU_IMG, QEMU_IO
# (empty when not installed) and FIXTURES_DIR in the environment.

set -u

VDI=${1:?usage: $0 PATH-TO-vdi}
QEMU_IMG=${QEMU_IMG-$(command -v qemu-img || true)}
QEMU_IO=${QEMU_IO-$(command -v qemu-io || true)}

_tap_n=0
_tap_failed=0

# Skip the whole file (TAP "1..0 # SKIP").
skip_all() {
	echo "1..0 # SKIP $*"
	exit 0
}

# QEMU is the oracle.  scripts/test sets LIBVDI_REQUIRE_QEMU=1 (bootstrap
# installs QEMU): there a missing qemu-img or qemu-io is a failure.
# Elsewhere the checks that need it show as TAP skips.
_qemu_missing() { # what
	if [ "${LIBVDI_REQUIRE_QEMU:-0}" = 1 ]; then
		echo "1..1"
		echo "not ok 1 - $1 not found, and LIBVDI_REQUIRE_QEMU=1 needs it"
		exit 1
	fi
	skip_all "$1 not found"
}

need_qemu() {
	[ -n "$QEMU_IMG" ] && [ -x "$QEMU_IMG" ] || _qemu_missing qemu-img
	[ -n "$QEMU_IO" ] && [ -x "$QEMU_IO" ] || _qemu_missing qemu-io
}

# have_qemu_img DESCRIPTION: true when qemu-img is there.  Otherwise the
# cross-check DESCRIPTION is one TAP skip, or a failure under
# LIBVDI_REQUIRE_QEMU=1.
have_qemu_img() {
	[ -n "$QEMU_IMG" ] && [ -x "$QEMU_IMG" ] && return 0
	if [ "${LIBVDI_REQUIRE_QEMU:-0}" = 1 ]; then
		_result 1 "$1: qemu-img not found, and LIBVDI_REQUIRE_QEMU=1 needs it"
	else
		_tap_n=$((_tap_n + 1))
		echo "ok $_tap_n - $1 # SKIP qemu-img not found"
	fi
	return 1
}

need_python() {
	command -v python3 >/dev/null || skip_all "python3 not found"
}

# Call the interpreter itself rather than a wrapper script (pyenv's shims
# cost a tenth of a second per call, and the tests make hundreds).
if _py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) && [ -x "$_py" ]; then
	python3() { "$_py" "$@"; }
fi

_result() { # status description
	_tap_n=$((_tap_n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $_tap_n - $2"
	else
		echo "not ok $_tap_n - $2"
		_tap_failed=$((_tap_failed + 1))
	fi
}

# ok DESCRIPTION COMMAND...: passes when the command exits 0.  The
# command's output goes to $T/last.out and $T/last.err, shown on failure.
ok() {
	local desc=$1 rc
	shift
	"$@" >"$T/last.out" 2>"$T/last.err"
	rc=$?
	_result $rc "$desc"
	[ $rc -eq 0 ] || {
		echo "# command: $*"
		echo "# exit status $rc"
		sed 's/^/# out: /' "$T/last.out" | head -20
		sed 's/^/# err: /' "$T/last.err" | head -20
	}
	return 0
}

# is DESCRIPTION GOT EXPECTED
is() {
	if [ "$2" = "$3" ]; then
		_result 0 "$1"
	else
		_result 1 "$1"
		echo "# got:      '$2'"
		echo "# expected: '$3'"
	fi
}

# exits DESCRIPTION STATUS COMMAND...: passes when the command exits with
# STATUS.  Output in $T/last.out and $T/last.err.
exits() {
	local desc=$1 want=$2 rc
	shift 2
	"$@" >"$T/last.out" 2>"$T/last.err"
	rc=$?
	is "$desc (exit $want)" "$rc" "$want"
	[ "$rc" = "$want" ] || sed 's/^/# err: /' "$T/last.err" | head -20
	return 0
}

# Lines on stderr of the last ok/exits command.
err_lines() { wc -l <"$T/last.err" | tr -d ' '; }

# json_get FILE PYTHON-EXPRESSION: evaluate an expression on the parsed
# JSON document `j`, print the result.  On failure it prints a line naming
# the file, so two failures never compare equal.
json_get() {
	python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2" 2>/dev/null ||
		echo "<json_get $2 failed on $1>"
}

# json_same A B: both files hold equal JSON documents.
json_same() {
	python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])) != json.load(open(sys.argv[2])))' "$1" "$2" 2>/dev/null
}

# A file of SIZE bytes with random data at the given offsets (LEN bytes
# each) and holes elsewhere: make_sparse FILE SIZE LEN OFFSET...
make_sparse() {
	python3 - "$@" <<'PY'
import os, sys
path, size, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "wb") as f:
    f.truncate(size)
    for off in sys.argv[4:]:
        off = int(off)
        f.seek(off)
        f.write(os.urandom(min(length, size - off)))
PY
}

T=$(mktemp -d "${TMPDIR:-/tmp}/vdi-cli-test.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT

# End of a test file: the plan, and the exit status.
done_testing() {
	echo "1..$_tap_n"
	[ $_tap_failed -eq 0 ]
}
