#!/bin/bash
# Crash consistency under SIGKILL.  kill_writer writes self-describing
# records through the async API with flushes at random points; it is killed
# at a random moment, many times; after each kill the image must open, have
# no corruption (a header count that lags the map is the one thing allowed,
# and with leaks `vdi check -r leaks` must clean it), satisfy qemu-img check,
# and hold every record flushed before the kill and nothing foreign.
#
# Usage: kill-test.sh VDI KILL_WRITER [ITERATIONS]
# LIBVDI_LONG=1 runs 400 iterations instead of 40.  Prints TAP.
set -u
VDI=${1:?usage}
WRITER=${2:?usage}
N=${3:-40}
[ "${LIBVDI_LONG:-0}" = 1 ] && N=${LIBVDI_KILL_ITERATIONS:-400}
QEMU_IMG=${QEMU_IMG-$(command -v qemu-img || true)}
T=$(mktemp -d "${TMPDIR:-/tmp}/kill-test-XXXXXX")
trap 'rm -rf "$T"' EXIT
IMG=$T/disk.vdi
LOG=$T/flushed.log
SEED=${LIBVDI_SEED:-$(date +%s)}
RANDOM=$SEED

n=0 failed=0 mismatch=0 qmismatch=0 leaky=0 midleaks=0
echo "# seed $SEED, $N iterations"
echo "1..$N"
for i in $(seq 1 "$N"); do
	msg=
	if [ $((i % 10)) = 1 ]; then
		rm -f "$IMG" "$LOG"
		"$VDI" create -q "$IMG" 96M || msg="create failed"
	fi
	"$WRITER" write "$IMG" "$LOG" "$i" "$((SEED * 1000 + i))" 2>"$T/w.err" &
	pid=$!
	sleep "0.$(printf %03d $((RANDOM % 400 + 20)))"
	kill -KILL $pid 2>/dev/null
	wait $pid 2>/dev/null
	if [ -s "$T/w.err" ]; then
		msg="writer failed before the kill: $(head -1 "$T/w.err")"
	fi
	# vdi check: 0 clean, 3 leaks; 2 only for a lagging header count.
	"$VDI" check "$IMG" >"$T/c.out" 2>&1
	rc=$?
	if [ $rc = 2 ]; then
		if grep -v '^header says .* blocks are allocated' "$T/c.out" |
			grep -q -e 'maps to' -e 'is used by'; then
			msg="${msg:-vdi check: corruption: $(head -3 "$T/c.out" | tr '\n' ' ')}"
		else
			mismatch=$((mismatch + 1))
		fi
	elif [ $rc != 0 ] && [ $rc != 3 ]; then
		msg="${msg:-vdi check exit $rc: $(head -2 "$T/c.out" | tr '\n' ' ')}"
	fi
	[ $rc = 3 ] && leaky=$((leaky + 1))
	if [ -n "$QEMU_IMG" ]; then
		"$QEMU_IMG" check "$IMG" >"$T/q.out" 2>&1
		qrc=$?
		if [ $qrc != 0 ]; then
			if grep -q 'ERROR' "$T/q.out" &&
			   ! grep 'ERROR' "$T/q.out" | grep -qv 'allocated blocks mismatch'; then
				qmismatch=$((qmismatch + 1))
			else
				msg="${msg:-qemu-img check exit $qrc: $(head -2 "$T/q.out" | tr '\n' ' ')}"
			fi
		fi
	fi
	if [ $rc != 0 ]; then
		"$VDI" check -r leaks "$IMG" >"$T/r.out" 2>&1
		"$VDI" check "$IMG" >"$T/c2.out" 2>&1
		rc2=$?
		if [ $rc2 = 3 ] && grep -q 'not repaired: .* leaked in the middle' "$T/r.out"; then
			midleaks=$((midleaks + 1))
		elif [ $rc2 != 0 ]; then
			msg="${msg:-after vdi check -r leaks, vdi check exit $rc2: $(head -2 "$T/c2.out" | tr '\n' ' ')}"
		fi
		if [ -n "$QEMU_IMG" ] && ! "$QEMU_IMG" check -q "$IMG" >/dev/null 2>&1; then
			msg="${msg:-qemu-img check fails after the repair}"
		fi
	fi
	"$WRITER" verify "$IMG" "$LOG" >"$T/v.out" 2>&1 ||
		msg="${msg:-verify: $(grep -v '^verify: [0-9]* flush' "$T/v.out" | head -2 | tr '\n' ' ')}"
	if [ -z "$msg" ]; then
		echo "ok $i - kill $i: $(tail -1 "$T/v.out")"
	else
		echo "not ok $i - kill $i: $msg"
		failed=$((failed + 1))
		cp "$IMG" "${TMPDIR:-/tmp}/kill-test-failed-$i.vdi" 2>/dev/null
		cp "$LOG" "${TMPDIR:-/tmp}/kill-test-failed-$i.log" 2>/dev/null
	fi
done
echo "# $N kills, $failed failed; vdi check saw a lagging header count $mismatch" \
	"times, qemu-img check 'allocated blocks mismatch' $qmismatch times," \
	"leaks $leaky times, leaks left in the middle after repair $midleaks times"
exit 0
