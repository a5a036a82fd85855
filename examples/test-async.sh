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
failed=0
fail() { echo "FAIL: $*" >&2; failed=1; }
pass() { echo "ok: $*"; }

# 40 MiB + 64 KiB: the last request is short and ends in a partial block.
if "$ASYNC" "$T/img.vdi" 41024K; then pass "write and verify"; else fail "write and verify"; fi
if "$VDI" check -q "$T/img.vdi"; then pass "the image checks clean"; else fail "vdi check"; fi
if "$ASYNC" -v "$T/img.vdi" >/dev/null; then pass "verify again"; else fail "verify again"; fi

if [ -n "$QEMU_IMG" ]; then
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

# The verification must be able to fail.
"$VDI" create -q "$T/blank.vdi" 41024K
if "$ASYNC" -v "$T/blank.vdi" 2>/dev/null; then fail "a blank image verified"
else pass "a blank image does not verify"; fi

data=$("$VDI" info --output=json "$T/img.vdi" | sed -n 's/.*"offset-data": \([0-9]*\).*/\1/p')
printf 'XXXXXXXX' | dd of="$T/img.vdi" bs=1 seek=$((data + 12345)) conv=notrunc status=none
if "$ASYNC" -v "$T/img.vdi" 2>"$T/err"; then fail "a damaged image verified"
elif grep -q mismatch "$T/err"; then pass "a damaged image does not verify: $(head -1 "$T/err")"
else fail "damaged image: unexpected message '$(cat "$T/err")'"; fi

if "$ASYNC" "$T/img.vdi" 1M 2>"$T/err"; then fail "async replaced an existing image"
else pass "an existing image is not replaced: $(cat "$T/err")"; fi

exit $failed
