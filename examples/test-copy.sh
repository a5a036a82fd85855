#!/bin/sh
# Round trips through the copy example: raw -> VDI -> raw must give back
# the same bytes, zero chunks must stay unallocated, and errors must fail
# with a message.  qemu-img, when installed, is a second opinion.
#   test-copy.sh PATH-TO-copy PATH-TO-vdi
set -u
COPY=${1:?usage: $0 COPY VDI}
VDI=${2:?usage: $0 COPY VDI}
QEMU_IMG=${QEMU_IMG-}

T=$(mktemp -d "${TMPDIR:-/tmp}/example-copy.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
failed=0
fail() { echo "FAIL: $*" >&2; failed=1; }
pass() { echo "ok: $*"; }

# 6 MiB + 192 KiB, 7 chunks of 1 MiB: random data in chunks 0, 1 (first
# half), 3, 4, 5 and the partial chunk 6; chunk 2 (and the second half of
# chunk 1) is zeros.
M=1048576
head -c $((6 * M + 196608)) /dev/zero >"$T/in.raw"
for spec in 0:$M $M:$((M / 2)) $((3 * M)):$((3 * M)) $((6 * M)):196608; do
	off=${spec%%:*} len=${spec#*:}
	head -c "$len" /dev/urandom |
		dd of="$T/in.raw" bs=65536 seek="$off" oflag=seek_bytes conv=notrunc status=none
done

if "$COPY" "$T/in.raw" "$T/img.vdi"; then pass "raw to VDI"; else fail "raw to VDI"; fi
if "$VDI" check -q "$T/img.vdi"; then pass "the new image checks clean"; else fail "vdi check"; fi
mapped=$("$VDI" info --output=json "$T/img.vdi" | sed -n 's/.*"blocks-mapped": \([0-9]*\).*/\1/p')
if [ "$mapped" = 6 ]; then pass "6 blocks mapped, the zero chunk unallocated"
else fail "blocks mapped: '$mapped', expected 6"; fi
if [ -z "$QEMU_IMG" ] && [ "${LIBVDI_REQUIRE_QEMU:-0}" = 1 ]; then
	fail "qemu-img not found, and LIBVDI_REQUIRE_QEMU=1 (scripts/test) needs it"
elif [ -z "$QEMU_IMG" ]; then
	echo "skip: qemu-img not found: its two cross-checks do not run"
fi
if [ -n "$QEMU_IMG" ]; then
	if "$QEMU_IMG" compare -q -f raw -F vdi "$T/in.raw" "$T/img.vdi"; then
		pass "qemu-img compare: same disk"
	else
		fail "qemu-img compare raw and VDI"
	fi
fi

if "$COPY" "$T/img.vdi" "$T/back.raw"; then pass "VDI to raw"; else fail "VDI to raw"; fi
if cmp "$T/in.raw" "$T/back.raw"; then pass "round trip is byte-exact"; else fail "round trip differs"; fi

# An image written by QEMU reads back the same.
if [ -n "$QEMU_IMG" ]; then
	"$QEMU_IMG" convert -f raw -O vdi "$T/in.raw" "$T/qemu.vdi" &&
	"$COPY" "$T/qemu.vdi" "$T/qemu.raw" &&
	cmp "$T/in.raw" "$T/qemu.raw" && pass "QEMU's image reads back the same" ||
		fail "copy of QEMU's image"
fi

# Failures: exit status 1 and one line naming the problem.
expect_fail() { # pattern command...
	pat=$1
	shift
	if "$@" 2>"$T/err"; then
		fail "$* succeeded"
	elif grep -q "$pat" "$T/err"; then
		pass "$* fails: $(cat "$T/err")"
	else
		fail "$*: message '$(cat "$T/err")' lacks '$pat'"
	fi
}
expect_fail 'file exists' "$COPY" "$T/in.raw" "$T/img.vdi"
expect_fail 'File exists' "$COPY" "$T/img.vdi" "$T/back.raw"
cp "$T/in.raw" "$T/fake.vdi"
expect_fail 'not a VDI image' "$COPY" "$T/fake.vdi" "$T/out.raw"
[ ! -e "$T/out.raw" ] || fail "a failed copy left its output"
expect_fail 'No such file' "$COPY" "$T/missing.vdi" "$T/out.raw"
expect_fail 'usage' "$COPY" "$T/a.raw" "$T/b.raw"

exit $failed
