#!/bin/sh
# The async example writes and verifies a pattern itself; here we also
# check that the image is clean, that QEMU reads the same disk, and that
# the verification does fail on a blank and on a damaged image.
#   test-async.sh PATH-TO-async PATH-TO-vdi
set -u
ASYNC=${1:?usage: $0 ASYNC VDI}
VDI=${2:?usage: $0 ASYNC VDI}
QEMU_IMG=${QEMU_IMG-}

T=$(mktemp -d "${TMPDIR:-/tmp}/example-async.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
# TAP: a failed check is "not ok", a missing QEMU a visible skip (or,
# under LIBVDI_REQUIRE_QEMU=1 as in scripts/test, a failure).
n=0 failed=0
fail() { n=$((n + 1)); echo "not ok $n - $*"; failed=1; }
pass() { n=$((n + 1)); echo "ok $n - $*"; }

# 40 MiB + 64 KiB: the last request is short and ends in a partial block.
if "$ASYNC" "$T/img.vdi" 41024K >"$T/out"; then pass "write and verify"; else fail "write and verify"; fi
sed 's/^/# /' "$T/out"
if "$VDI" check -q "$T/img.vdi"; then pass "the image checks clean"; else fail "vdi check"; fi
if "$ASYNC" -v "$T/img.vdi" >/dev/null; then pass "verify again"; else fail "verify again"; fi

if [ -z "$QEMU_IMG" ] && [ "${LIBVDI_REQUIRE_QEMU:-0}" = 1 ]; then
	fail "QEMU reads the same disk: qemu-img not found, and LIBVDI_REQUIRE_QEMU=1 needs it"
elif [ -z "$QEMU_IMG" ]; then
	n=$((n + 1)); echo "ok $n - QEMU reads the same disk # SKIP qemu-img not found"
else
	# QEMU's reading of the image must verify too: convert it to raw and
	# back to a VDI of QEMU's making, and verify that.
	if "$QEMU_IMG" convert -f vdi -O raw "$T/img.vdi" "$T/img.raw" &&
	   "$QEMU_IMG" convert -f raw -O vdi "$T/img.raw" "$T/qemu.vdi" &&
	   "$ASYNC" -v "$T/qemu.vdi" >/dev/null; then
		pass "QEMU reads the same disk"
	else
		fail "QEMU's copy does not verify"
	fi
fi

# The verification must be able to fail, and for the reason expected: the
# exit status 1 and the message, not any failure.
# refused DESCRIPTION PATTERN COMMAND...: exit 1, PATTERN on stderr.
refused() {
	local desc=$1 pat=$2 rc
	shift 2
	"$@" >/dev/null 2>"$T/err"
	rc=$?
	if [ $rc = 1 ] && grep -q -- "$pat" "$T/err"; then
		pass "$desc: $(tail -1 "$T/err")"
	else
		fail "$desc: exit $rc (expected 1), stderr '$(head -2 "$T/err")'"
	fi
}
if "$VDI" create -q "$T/blank.vdi" 41024K; then pass "create a blank image"
else fail "create a blank image"; fi
refused "a blank image does not verify" "bytes differ from the pattern" \
	"$ASYNC" -v "$T/blank.vdi"

data=$("$VDI" info --output=json "$T/img.vdi" | sed -n 's/.*"offset-data": \([0-9]*\).*/\1/p')
if [ -n "$data" ] && [ "$data" -gt 0 ]; then pass "the data offset is $data"
else fail "no data offset from vdi info"; data=1048576; fi
printf 'XXXXXXXX' | dd of="$T/img.vdi" bs=1 seek=$((data + 12345)) conv=notrunc status=none
refused "a damaged image does not verify" "mismatch at offset 12344" \
	"$ASYNC" -v "$T/img.vdi"

sum=$(cksum <"$T/img.vdi")
refused "async does not replace an existing image" "exists" \
	"$ASYNC" "$T/img.vdi" 1M
if [ "$(cksum <"$T/img.vdi")" = "$sum" ]; then pass "the existing image is unchanged"
else fail "async changed the existing image"; fi

echo "1..$n"
exit $failed
