#!/bin/bash
# Full disks, for real: writes through the library and the tool that run
# out of space must fail with a clear error, leave no corrupt image and no
# stray file behind, and lose nothing that was flushed.
#
#  1. RLIMIT_FSIZE (any user): past the limit write() fails with EFBIG
#     (SIGXFSZ is ignored).  The library's synchronous and asynchronous
#     APIs (fulldisk write), then vdi convert, create, resize.
#  2. A real full file system: the script runs itself again in a private
#     mount namespace (unshare -m as root; unshare -r -m, a user namespace,
#     for other users where the kernel allows it) and mounts an 8 MiB
#     tmpfs there, so nothing stays mounted whatever happens; the same
#     writes then fail with ENOSPC.  Also vdi compact and resize on the
#     full file system, and one fio job when the fio engine was built.
#     Skipped when neither namespace can be made.
#
# After each library run: vdi check finds no corruption (leaks are
# allowed), qemu-img check agrees, `fulldisk verify` finds every flushed
# record and nothing foreign, and `vdi check -r leaks` leaves a clean image
# (or only leaks in the middle of the file, which it cannot cut).
#
# Usage: fulldisk.sh VDI FULLDISK.  Prints TAP.  Environment (optional):
# QEMU_IMG, FIO and VDI_FIO_ENGINE (VDI_FIO_PRELOAD, VDI_FIO_SKIP as in
# tests/fio), LIBVDI_SEED (the writer's workload).
FULLDISK=${2:?usage: fulldisk.sh VDI FULLDISK}

# Go on in a mount namespace of our own; the tmpfs dies with it.
if [ "${FULLDISK_IN_NS:-}" = "" ]; then
	FULLDISK_IN_NS=no
	ns=(-m --propagation private)
	[ "$(id -u)" = 0 ] || ns=(-r "${ns[@]}")
	if command -v unshare >/dev/null && unshare "${ns[@]}" true 2>/dev/null; then
		FULLDISK_IN_NS=yes exec unshare "${ns[@]}" "$0" "$@"
	fi
	export FULLDISK_IN_NS
fi

. "$(dirname "$0")/../cli/lib.sh"
M=$T/mnt
trap 'umount -l "$M" 2>/dev/null; rm -rf "$T"' EXIT
command -v timeout >/dev/null && TIMEOUT="timeout 120" || TIMEOUT=
LIMIT=$(((16 << 20) + 65536)) # 16 MiB and a bit: one block is cut in two

# ok, then, when it passed, the lines of its output that start with '#'
# (ok shows all of it when it failed).
okd() {
	local failed=$_tap_failed
	ok "$@"
	[ "$failed" != "$_tap_failed" ] || grep '^#' "$T/last.out"
}

# check_image LABEL IMAGE LOG: the image after a writer ran out of space.
check_image() {
	local label=$1 img=$2 log=$3 rc
	"$VDI" check "$img" >"$T/c.out" 2>&1
	rc=$?
	[ $rc = 0 ] || [ $rc = 3 ]
	_result $? "$label: vdi check finds no corruption (exit $rc; 3: leaks)"
	[ $rc = 0 ] || [ $rc = 3 ] || sed 's/^/# /' "$T/c.out" | head -5
	if have_qemu_img "$label: qemu-img check"; then
		"$QEMU_IMG" check "$img" >"$T/q.out" 2>&1
		rc=$?
		[ $rc = 0 ] || [ $rc = 3 ]
		_result $? "$label: qemu-img check finds no corruption (exit $rc)"
		[ $rc = 0 ] || [ $rc = 3 ] || sed 's/^/# /' "$T/q.out" | head -5
	fi
	okd "$label: every flushed record reads back, nothing foreign" \
		"$FULLDISK" verify "$img" "$log"
	"$VDI" check -r leaks "$img" >"$T/r.out" 2>&1
	"$VDI" check "$img" >"$T/c.out" 2>&1
	rc=$?
	if [ $rc = 3 ] && grep -q 'not repaired: .* leaked in the middle' "$T/r.out"; then
		_result 0 "$label: vdi check -r leaks cut what it can (leaks in the middle stay)"
		echo "# $(grep -c 'not repaired' "$T/r.out") leaked block(s) in the middle"
	else
		is "$label: vdi check after vdi check -r leaks" "$rc" 0
	fi
	ok "$label: after the repair too" "$FULLDISK" verify "$img" "$log"
}

# writer_case LABEL MODE EXPECT [--fsize=N]: a library run on a fresh image
# in the current directory of images, $D.
writer_case() {
	local label=$1 mode=$2 expect=$3
	shift 3
	rm -f "$D/$mode.vdi"
	# A case that cannot start is a failure, not a case left out.
	ok "$label: $mode API: create the image" "$VDI" create -q "$D/$mode.vdi" 256M
	[ -f "$D/$mode.vdi" ] || return
	okd "$label: $mode API: writes fail with $expect only, nothing hangs" \
		$TIMEOUT "$FULLDISK" write "$mode" "$D/$mode.vdi" "$T/$mode.log" \
		--expect="$expect" "$@"
	check_image "$label: $mode API" "$D/$mode.vdi" "$T/$mode.log"
}

# tool_fails LABEL PATTERN DIR COMMAND...: the command exits 1 with one
# line "vdi: ...PATTERN..." on stderr and leaves DIR as it was.
tool_fails() {
	local label=$1 pat=$2 dir=$3 before
	shift 3
	before=$(ls -A "$dir")
	exits "$label" 1 "$@"
	grep -q "^vdi: .*$pat" "$T/last.err" && [ "$(err_lines)" = 1 ]
	_result $? "$label: one line 'vdi: ...$pat...'"
	sed 's/^/# stderr: /' "$T/last.err" | head -3
	is "$label: no file left behind" "$(ls -A "$dir")" "$before"
}

# Run a command with a file size limit of $LIMIT, SIGXFSZ ignored.
limited() { (trap '' XFSZ; ulimit -f $((LIMIT / 1024)); exec "$@"); }

# ---- 1. RLIMIT_FSIZE --------------------------------------------------------

D=$T/img
mkdir -p "$D" "$T/out"
for mode in sync async; do
	writer_case "EFBIG" $mode EFBIG --fsize=$LIMIT
done

# One allocation fails (the block lies past the limit): the flush after it
# must still succeed, since all it covers was stored, and so must later
# flushes and vdi_close; the blocks written since must not be lost.  (The
# file used to be extended over the failed block at every flush.)
"$VDI" create -q "$D/one.vdi" 64M
ok "EFBIG: the flush after one failed write covers the others" \
	"$FULLDISK" one-failed "$D/one.vdi"

head -c $((24 << 20)) /dev/urandom >"$T/src.raw"
tool_fails "EFBIG: convert raw to VDI" "File too large" "$T/out" \
	limited "$VDI" convert -O vdi "$T/src.raw" "$T/out/dst.vdi"
tool_fails "EFBIG: convert raw to raw" "File too large" "$T/out" \
	limited "$VDI" convert -O raw "$T/src.raw" "$T/out/dst.raw"
"$VDI" create -q "$T/out/old.vdi" 1M
cp "$T/out/old.vdi" "$T/old.copy"
tool_fails "EFBIG: convert over an existing image" "File too large" "$T/out" \
	limited "$VDI" convert --force -O vdi "$T/src.raw" "$T/out/old.vdi"
ok "EFBIG: the existing image is unchanged" cmp "$T/out/old.vdi" "$T/old.copy"
tool_fails "EFBIG: create a static image" "cannot preallocate.*File too large" \
	"$T/out" limited "$VDI" create -q -o static=on "$T/out/static.vdi" 32M
tool_fails "EFBIG: create with a block map past the limit" "cannot write the block map.*File too large" \
	"$T/out" limited "$VDI" create -q -o block_size=128K "$T/out/big.vdi" 8T
"$VDI" create -q -o static=on "$T/out/grow.vdi" 8M
cp "$T/out/grow.vdi" "$T/grow.copy"
tool_fails "EFBIG: resize a static image past the limit" "File too large" \
	"$T/out" limited "$VDI" resize "$T/out/grow.vdi" 64M
ok "EFBIG: the static image is unchanged" cmp "$T/out/grow.vdi" "$T/grow.copy"

# A plain ulimit -f, SIGXFSZ at its default (kill): the tool must not die
# of it (it did, from the ftruncate of vdi_close on the error path).
rm -f "$T/out/"*
{ (ulimit -f $((LIMIT / 1024)); exec "$VDI" convert -q -O vdi "$T/src.raw" \
	"$T/out/dst.vdi"); } >/dev/null 2>&1
rc=$?
left=$(ls -A "$T/out")
# The tool ignores SIGXFSZ: the write fails with EFBIG, reported as such.
is "EFBIG: convert under ulimit -f exits 1, not by SIGXFSZ" "$rc" 1
is "EFBIG: and leaves no temporary file" "$left" ""

# ---- 2. A full tmpfs ----------------------------------------------------------

# A fresh 8 MiB tmpfs at $M: the old one (maybe still held by a ring being
# torn down) is detached, not waited for.
fresh_fs() {
	umount -l "$M" 2>/dev/null
	mkdir -p "$M" && mount -t tmpfs -o size=8m vdi-fulldisk "$M"
}

# KiB used on $M, and wait until that is at most $1.  A deleted file's
# space comes back once nothing holds the file: the kernel tears down an
# exiting process's rings (and drops their files) a moment later, on a
# work queue.  30 s at most; a wait of more than a second is shown.
used_kib() { df -k "$M" | awk 'NR == 2 { print $3 }'; }
wait_used() {
	local i
	for i in $(seq 300); do
		if [ "$(used_kib)" -le "$1" ]; then
			[ "$i" -le 10 ] || echo "# the space came back after $((i / 10)) s"
			return 0
		fi
		sleep 0.1
	done
	return 1
}

if [ "$FULLDISK_IN_NS" != yes ]; then
	_tap_n=$((_tap_n + 1))
	echo "ok $_tap_n # SKIP a full file system: unshare -m (or -r -m) does not work here"
	done_testing
	exit
fi
if ! fresh_fs; then
	_tap_n=$((_tap_n + 1))
	echo "ok $_tap_n # SKIP a full file system: cannot mount a tmpfs"
	done_testing
	exit
fi

D=$M
for mode in sync async; do
	fresh_fs
	writer_case "ENOSPC" $mode ENOSPC
	df -k "$M" | awk 'NR == 2 { print "# tmpfs: " $3 " KiB used of " $2 }'
	# Compacting moves blocks into the holes of unused ones, which takes
	# space again: on a full file system it may fail, but never corrupt.
	"$VDI" compact -q "$M/$mode.vdi" >"$T/last.out" 2>"$T/last.err"
	echo "# vdi compact on the full tmpfs: exit $? $(head -1 "$T/last.err")"
	"$VDI" check -q "$M/$mode.vdi"
	rc=$?
	[ $rc = 0 ] || [ $rc = 3 ]
	_result $? "ENOSPC: $mode API: no corruption after vdi compact (exit $rc)"
	ok "ENOSPC: $mode API: every record after vdi compact" \
		"$FULLDISK" verify "$M/$mode.vdi" "$T/$mode.log"
done

fresh_fs
tool_fails "ENOSPC: convert raw to VDI" "No space left on device" "$M" \
	"$VDI" convert -O vdi "$T/src.raw" "$M/dst.vdi"
wait_used 64
_result $? "ENOSPC: the space of the failed convert is given back ($(used_kib) KiB used)"
tool_fails "ENOSPC: convert raw to raw" "No space left on device" "$M" \
	"$VDI" convert -O raw "$T/src.raw" "$M/dst.raw"
wait_used 64
_result $? "ENOSPC: ... and of the raw one ($(used_kib) KiB used)"
tool_fails "ENOSPC: create a static image" "cannot preallocate.*No space left" \
	"$M" "$VDI" create -q -o static=on "$M/static.vdi" 32M

# Growing the block map of an image on a full file system.
head -c 4M "$T/src.raw" >"$T/part.raw"
"$VDI" convert -q -O vdi "$T/part.raw" "$M/grow.vdi"
head -c 16M /dev/zero >"$M/filler" 2>/dev/null
"$VDI" resize "$M/grow.vdi" 1T >"$T/last.out" 2>"$T/last.err"
rc=$?
echo "# vdi resize to 1T on the full tmpfs: exit $rc $(head -1 "$T/last.err")"
[ $rc = 0 ] || grep -q '^vdi: .*No space left' "$T/last.err"
_result $? "ENOSPC: resize either works or says the disk is full"
exits "ENOSPC: no corruption after the resize" 0 "$VDI" check "$M/grow.vdi"
ok "ENOSPC: the data is still there after the resize" \
	"$VDI" convert -q "$M/grow.vdi" "$T/grow.raw"
cmp -n $((4 << 20)) "$T/grow.raw" "$T/part.raw" >/dev/null
_result $? "ENOSPC: ... and reads as before"

# fio onto the full file system, when the engine was built.
if [ -z "${FIO:-}" ] || [ -z "${VDI_FIO_ENGINE:-}" ] || [ -n "${VDI_FIO_SKIP:-}" ]; then
	_tap_n=$((_tap_n + 1))
	echo "ok $_tap_n # SKIP fio onto a full file system: ${VDI_FIO_SKIP:-no fio engine built}"
else
	fresh_fs
	# As in tests/fio: sanitizer runtimes first, no leak check of fio.
	LD_PRELOAD=${VDI_FIO_PRELOAD:-} \
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		$TIMEOUT "$FIO" --name=full --ioengine=external:"$VDI_FIO_ENGINE" \
		--filename="$M/fio.vdi" --size=32M --rw=randwrite --bs=64k --iodepth=8 \
		--end_fsync=1 >"$T/fio.out" 2>&1
	rc=$?
	[ $rc != 0 ] && [ $rc != 124 ] && grep -q 'No space left' "$T/fio.out"
	_result $? "ENOSPC: fio fails with 'No space left on device' (exit $rc)"
	[ $rc != 0 ] && grep -q 'No space left' "$T/fio.out" ||
		sed 's/^/# fio: /' "$T/fio.out" | head -10
	"$VDI" check "$M/fio.vdi" >"$T/c.out" 2>&1
	rc=$?
	[ $rc = 0 ] || [ $rc = 3 ]
	_result $? "ENOSPC: fio's image has no corruption (exit $rc)"
fi

done_testing
