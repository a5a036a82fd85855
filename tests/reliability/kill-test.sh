#!/bin/bash
# Crash consistency under SIGKILL.  kill_writer writes self-describing
# records through the async API with flushes at random points; it is killed
# at a random moment, many times; after each kill the image must open, have
# no corruption (a header count that lags the map is the one thing allowed,
# and with leaks `vdi check -r leaks` must clean it), satisfy qemu-img check,
# and hold every record flushed before the kill and nothing foreign.
#
# Each kill comes after the writer has completed at least one more flush
# group (the log grew), so no kill tests an empty log; the writer must die
# of the SIGKILL, never exit by itself, and write nothing on stderr.
#
# Usage: kill-test.sh VDI KILL_WRITER [ITERATIONS] [qemu-layout|direct]
# LIBVDI_LONG=1 runs 400 iterations instead of 40.  With qemu-layout the
# images are made by qemu-img (data area not on a 4 KiB boundary) and
# written with O_DIRECT, so writes into new slots are widened to whole
# file-system blocks with zeros.  With direct, libvdi's images are written with O_DIRECT:
# on ext4 the file's size runs ahead of the allocator and new slots are
# reserved 16 at a time, so kills leave that space past the last slot.
# Prints TAP.  Without
# qemu-img its cross-check is one TAP skip (a failure under
# LIBVDI_REQUIRE_QEMU=1, as in scripts/test).
set -u
VDI=${1:?usage}
WRITER=${2:?usage}
N=${3:-40}
LAYOUT=${4:-libvdi}
[ "${LIBVDI_LONG:-0}" = 1 ] && N=${LIBVDI_KILL_ITERATIONS:-400}
QEMU_IMG=${QEMU_IMG-$(command -v qemu-img || true)}
T=$(mktemp -d "${TMPDIR:-/tmp}/kill-test-XXXXXX")
trap 'rm -rf "$T"' EXIT
IMG=$T/disk.vdi
LOG=$T/flushed.log
SEED=${LIBVDI_SEED:-$(date +%s)}
RANDOM=$SEED

n=0 failed=0 mismatch=0 qmismatch=0 leaky=0 midleaks=0
# Flush groups in the log: one terminator pair (16 bytes of 0xff, then the
# count) ends each.
groups() {
	[ -f "$LOG" ] || { echo 0; return; }
	od -An -v -tx8 -w16 "$LOG" | grep -c '^ ffffffffffffffff '
}

if [ "$LAYOUT" = qemu-layout ]; then
	if [ -z "$QEMU_IMG" ]; then
		[ "${LIBVDI_REQUIRE_QEMU:-0}" = 1 ] &&
			{ echo "1..1"; echo "not ok 1 - qemu-img not found, and LIBVDI_REQUIRE_QEMU=1 needs it"; exit 1; }
		echo "1..0 # SKIP qemu-img not found"
		exit 0
	fi
	export LIBVDI_KILL_DIRECT=1
fi
[ "$LAYOUT" = direct ] && export LIBVDI_KILL_DIRECT=1
echo "# seed $SEED, $N iterations, $LAYOUT layout"
echo "1..$((N + 1))"
if [ -n "$QEMU_IMG" ]; then
	echo "ok 1 - qemu-img $QEMU_IMG cross-checks every kill"
elif [ "${LIBVDI_REQUIRE_QEMU:-0}" = 1 ]; then
	echo "not ok 1 - qemu-img not found, and LIBVDI_REQUIRE_QEMU=1 needs it"
	failed=1
else
	echo "ok 1 - qemu-img cross-check of every kill # SKIP qemu-img not found"
fi
for i in $(seq 1 "$N"); do
	msg=
	if [ $((i % 10)) = 1 ]; then
		rm -f "$IMG" "$LOG"
		if [ "$LAYOUT" = qemu-layout ]; then
			"$QEMU_IMG" create -q -f vdi "$IMG" 96M >/dev/null || msg="qemu-img create failed"
		else
			"$VDI" create -q "$IMG" 96M || msg="create failed"
		fi
	fi
	before=$(groups)
	size=$(stat -c %s "$LOG" 2>/dev/null || echo 0)
	"$WRITER" write "$IMG" "$LOG" "$i" "$((SEED * 1000 + i))" 2>"$T/w.err" &
	pid=$!
	# Until the writer started logging a flush group (10 s at most), then a
	# random time more; that the group was completed is checked below.
	end=$((SECONDS + 10))
	while [ $SECONDS -lt $end ]; do
		[ "$(stat -c %s "$LOG" 2>/dev/null || echo 0)" -gt "$size" ] && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.01
	done
	sleep "0.$(printf %03d $((RANDOM % 400 + 20)))"
	kill -KILL $pid 2>/dev/null
	wait $pid 2>/dev/null
	wrc=$?
	after=$(groups)
	if [ -s "$T/w.err" ]; then
		msg="writer failed before the kill: $(head -1 "$T/w.err")"
	elif [ $wrc != 137 ]; then
		msg="the writer exited with status $wrc before the kill"
	elif [ "$after" -le "$before" ]; then
		msg="the writer completed no flush group before the kill ($before groups before, $after after)"
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
		echo "ok $((i + 1)) - kill $i: $((after - before)) new flush groups; $(tail -1 "$T/v.out")"
	else
		echo "not ok $((i + 1)) - kill $i: $msg"
		failed=$((failed + 1))
		cp "$IMG" "${TMPDIR:-/tmp}/kill-test-failed-$i.vdi" 2>/dev/null
		cp "$LOG" "${TMPDIR:-/tmp}/kill-test-failed-$i.log" 2>/dev/null
	fi
done
echo "# $N kills, $failed failed; vdi check saw a lagging header count $mismatch" \
	"times, qemu-img check 'allocated blocks mismatch' $qmismatch times," \
	"leaks $leaky times, leaks left in the middle after repair $midleaks times"
exit 0
