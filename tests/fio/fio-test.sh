#!/bin/sh
# tests/fio/fio-test.sh CASE: one short fio job (or a few) through the vdi
# engine, checking its result.  Exit 0 pass, 1 fail, 77 skip.
#
# Environment (set by tests/fio/meson.build):
#   FIO             the fio binary the engine was built for
#   VDI_FIO_ENGINE  path of vdi.so
#   QEMU_IMG        qemu-img, or empty when it is not installed
#   FIO_TEST_DIR    scratch directory (a subdirectory per run is made)
#   VDI_FIO_PRELOAD sanitizer runtimes to preload into fio when the engine
#                   was built with -Db_sanitize (fio itself is not)
#   VDI_FIO_SKIP    a reason to skip every case

set -u

case=${1:?usage: fio-test.sh CASE}
FIO=${FIO:-fio}
ENGINE=${VDI_FIO_ENGINE:?VDI_FIO_ENGINE is not set}
QEMU_IMG=${QEMU_IMG:-}

pass() { echo "PASS: $case${1:+: $1}"; exit 0; }
skip() { echo "SKIP: $case: $*"; exit 77; }
fail() { echo "FAIL: $case: $*"; exit 1; }

[ -z "${VDI_FIO_SKIP:-}" ] || skip "$VDI_FIO_SKIP"
[ -x "$(command -v "$FIO")" ] || skip "fio not found"
[ -f "$ENGINE" ] || fail "no engine at $ENGINE"
if [ "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)" = 2 ]; then
	skip "io_uring is disabled (kernel.io_uring_disabled=2)"
fi
command -v python3 >/dev/null 2>&1 || skip "python3 (for reading fio's JSON) not found"

base=${FIO_TEST_DIR:-${TMPDIR:-/tmp}}
mkdir -p "$base" || fail "cannot create $base"
work=$(mktemp -d "$base/$case.XXXXXX") || fail "mktemp failed"
keep=0
cleanup() { [ "$keep" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT
cd "$work" || fail "cd $work"

# efio ARGS...: fio as it must run to load the engine: a sanitizer build of
# the engine needs the sanitizer runtimes loaded first.  No leak check:
# fio itself does not free everything at exit, and a suppression matching
# fio's frames would hide the engine's leaks too (fio is on every stack).
efio() {
	if [ -n "${VDI_FIO_PRELOAD:-}" ]; then
		LD_PRELOAD=$VDI_FIO_PRELOAD \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
			"$FIO" "$@"
	else
		"$FIO" "$@"
	fi
}

# vfio NAME ARGS...: run fio through the engine, JSON to NAME.json and
# stderr to NAME.err; returns fio's exit status.
vfio() {
	name=$1
	shift
	efio --output-format=json --output="$name.json" \
		--ioengine=external:"$ENGINE" "$@" 2>"$name.err"
}

# pfio NAME ARGS...: the same with fio's own psync engine (raw files).
pfio() {
	name=$1
	shift
	"$FIO" --output-format=json --output="$name.json" \
		--ioengine=psync "$@" 2>"$name.err"
}

# show NAME: print what a run left, for the log of a failing test.
show() {
	for f in "$1.err" "$1.json"; do
		[ -s "$f" ] && { echo "--- $f"; head -c 6000 "$f"; echo; }
	done
	keep=1
	echo "(scratch files kept in $work)"
}

must() {
	name=$1
	shift
	vfio "$name" "$@" || { show "$name"; fail "fio run '$name' failed"; }
	jobs_ok "$name" || { show "$name"; fail "fio run '$name' reported a job error"; }
}

# jobs_ok NAME: every job in NAME.json has error 0.
jobs_ok() {
	python3 - "$1.json" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
# fio may print notes before the JSON object
d = json.loads(text[text.index('{'):])
bad = [j['jobname'] for j in d['jobs'] if j.get('error')]
sys.exit(1 if bad or not d['jobs'] else 0)
EOF
}

# jget NAME EXPR: evaluate EXPR over the JSON of run NAME (j = first job,
# jobs = all jobs) and print it.
jget() {
	python3 - "$1.json" "$2" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
d = json.loads(text[text.index('{'):])
jobs = d['jobs']
j = jobs[0]
print(eval(sys.argv[2]))
EOF
}

# qimg ARGS...: qemu-img, retried for a while if it cannot take its
# lock, so that a fio process that is still exiting does not fail a test.
qimg() {
	i=0
	while :; do
		out=$("$QEMU_IMG" "$@" 2>&1)
		rc=$?
		case $out in
		*"Failed to get "*"lock"*|*"Failed to lock byte"*) ;;
		*) break ;;
		esac
		i=$((i + 1))
		[ $i -lt 100 ] || break
		sleep 0.05
	done
	printf '%s\n' "$out"
	return $rc
}

# A skip without qemu-img; a failure under LIBVDI_REQUIRE_QEMU=1 (set by
# scripts/test, whose bootstrap installs QEMU).
need_qemu() {
	[ -n "$QEMU_IMG" ] && [ -x "$QEMU_IMG" ] && return 0
	[ "${LIBVDI_REQUIRE_QEMU:-0}" != 1 ] || fail "qemu-img not installed, and LIBVDI_REQUIRE_QEMU=1 needs it"
	skip "qemu-img not installed"
}

qcheck() {
	need_qemu
	qimg check "$1" >check.out || { cat check.out; keep=1; fail "qemu-img check $1 is not clean"; }
}

hdr_u32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }

common="--direct=1 --randrepeat=1 --group_reporting"

case $case in

load)
	# fio can load the module and sees its options; only `ioengine` is
	# exported.
	efio --enghelp="$ENGINE" >help.out 2>&1 || { cat help.out; fail "fio --enghelp failed"; }
	for o in vdi_recreate vdi_static vdi_block_size vdi_sqpoll vdi_iopoll vdi_fixedbufs; do
		grep -q "^$o " help.out || { cat help.out; fail "option $o not listed"; }
	done
	if command -v nm >/dev/null 2>&1; then
		# (ASan adds __odr_asan.* markers of its own)
		syms=$(nm -D --defined-only "$ENGINE" | awk '$3 !~ /^__odr_asan/ {print $3}' | tr '\n' ' ')
		[ "$syms" = "ioengine " ] || fail "vdi.so exports '$syms', expected only ioengine"
	fi
	pass
	;;

randwrite-verify)
	# A fresh image, random 4k writes at QD16, each block verified.
	must w --name=rw --filename=img.vdi --size=128m --rw=randwrite --bs=4k \
		--iodepth=16 --verify=crc32c $common
	grep -q "created img.vdi" w.err || { show w; fail "no creation note"; }
	[ "$(jget w "j['write']['io_bytes']")" = $((128 << 20)) ] || { show w; fail "wrote too little"; }
	[ "$(jget w "j['read']['io_bytes']")" = $((128 << 20)) ] || { show w; fail "verified too little"; }
	pass
	;;

verify-later)
	# Write in one fio process, verify in another (verify_only); then a
	# verify of a fresh image must fail, proving the check is real.
	args="--name=vl --filename=img.vdi --size=96m --rw=randwrite --bs=8k --iodepth=16 --verify=crc32c $common"
	must w $args --do_verify=0 --vdi_recreate=1
	must v $args --verify_only=1
	[ "$(jget v "j['read']['io_bytes']")" = $((96 << 20)) ] || { show v; fail "verified too little"; }
	vfio bad $args --verify_only=1 --vdi_recreate=1 && { show bad; fail "verify of a blank image passed"; }
	pass
	;;

qemu-interop)
	need_qemu
	# fio -> QEMU: QEMU finds the image clean and reads the same data.
	args="--name=q --size=64m --rw=randwrite --bsrange=4k-256k --iodepth=16 --verify=crc32c --do_verify=0 $common"
	must w $args --filename=img.vdi --vdi_recreate=1
	qcheck img.vdi
	qimg convert -f vdi -O raw img.vdi img.raw >conv.out || { cat conv.out; fail "qemu-img convert failed"; }
	pfio r $args --filename=img.raw --verify_only=1 || { show r; fail "the raw copy does not verify"; }
	jobs_ok r || { show r; fail "the raw copy does not verify"; }
	# QEMU -> fio: fio's own engine writes a raw file, QEMU makes a VDI of
	# it, and the vdi engine verifies it.
	args2="--name=q2 --size=64m --rw=write --bs=48k --iodepth=4 --verify=md5 --do_verify=0 $common"
	pfio w2 $args2 --filename=src.raw || { show w2; fail "psync write failed"; }
	qimg convert -f raw -O vdi src.raw qemu.vdi >conv2.out || { cat conv2.out; fail "qemu-img convert to vdi failed"; }
	must v2 $args2 --filename=qemu.vdi --verify_only=1
	pass
	;;

block-crossing)
	# Requests that straddle VDI blocks: 768k never divides 1 MiB; two
	# threads write neighbouring ranges of one image.
	must a --name=x --filename=img.vdi --vdi_recreate=1 --size=96m --rw=randwrite \
		--bs=768k --iodepth=8 --numjobs=2 --thread=1 --offset_increment=96m \
		--verify=crc32c $common
	[ "$(jget a "sum(j['write']['io_bytes'] for j in jobs)")" = $((192 << 20)) ] ||
		{ show a; fail "wrote too little"; }
	qcheck img.vdi
	# 96k requests on 128k blocks (an image QEMU cannot open: only verify).
	must b --name=y --filename=small.vdi --vdi_recreate=1 --vdi_block_size=128k --size=48m \
		--rw=write --bs=96k --offset=40k --iodepth=4 --verify=crc32c $common
	[ "$(hdr_u32 small.vdi $((0x178)))" = 131072 ] || fail "block size in the header is not 128k"
	pass
	;;

qemu-layout)
	# An image made by qemu-img: its data area is not on a 4 KiB boundary,
	# so with O_DIRECT libvdi widens writes into new slots to whole file-
	# system blocks, with zeros where no write reached yet.  Four threads
	# share the handle and write random sizes into neighbouring blocks, so
	# that writes sharing file-system blocks run at the same time; every
	# block is verified, and QEMU finds the image clean and reads the same
	# data.
	need_qemu
	qimg create -f vdi img.vdi 64M >/dev/null || fail "qemu-img create failed"
	[ $(($(hdr_u32 img.vdi $((0x158))) % 4096)) != 0 ] || fail "qemu-img made an aligned data area"
	args="--name=ql --size=16m --offset_increment=16m --numjobs=4 --thread=1 --rw=randwrite --bsrange=512-64k --iodepth=16 --verify=crc32c $common"
	must w $args --filename=img.vdi
	[ "$(jget w "sum(j['write']['io_bytes'] for j in jobs)")" = $((64 << 20)) ] ||
		{ show w; fail "the four threads wrote too little"; }
	qcheck img.vdi
	qimg convert -f vdi -O raw img.vdi img.raw >conv.out || { cat conv.out; fail "qemu-img convert failed"; }
	pfio r $args --filename=img.raw --verify_only=1 || { show r; fail "QEMU's copy does not verify"; }
	jobs_ok r || { show r; fail "QEMU's copy does not verify"; }
	# Whole blocks, sequential: each new slot's write is widened over the
	# file-system blocks it shares with its neighbours, or waits for them.
	qimg create -f vdi seq.vdi 64M >/dev/null || fail "qemu-img create failed"
	args="--name=qs --size=64m --rw=write --bs=1m --iodepth=8 --verify=crc32c $common"
	must s $args --filename=seq.vdi
	qcheck seq.vdi
	qimg convert -f vdi -O raw seq.vdi seq.raw >conv.out || { cat conv.out; fail "qemu-img convert failed"; }
	pfio sr $args --filename=seq.raw --verify_only=1 || { show sr; fail "QEMU's copy does not verify"; }
	jobs_ok sr || { show sr; fail "QEMU's copy does not verify"; }
	pass
	;;

buffered-randrw)
	# Small buffered requests, reads and writes mixed, odd sizes.
	must a --name=b --filename=img.vdi --vdi_recreate=1 --size=32m --rw=randrw \
		--bsrange=512-12k --iodepth=8 --direct=0 --verify=crc32c --randrepeat=1
	must b --name=b2 --filename=img.vdi --size=32m --rw=randrw --rwmixread=70 \
		--bs=2k --iodepth=4 --direct=0 --runtime=3 --time_based --randrepeat=1
	qcheck img.vdi
	pass
	;;

threads)
	# numjobs=2 thread=1: both threads share one image handle.
	must t --name=t --filename=img.vdi --vdi_recreate=1 --size=64m --rw=randwrite \
		--bs=4k --iodepth=16 --numjobs=2 --thread=1 --offset_increment=64m \
		--verify=crc32c $common
	[ "$(jget t "sum(j['write']['io_bytes'] for j in jobs)")" = $((128 << 20)) ] ||
		{ show t; fail "the two threads wrote too little"; }
	qcheck img.vdi
	# The same as processes: libvdi's lock stops the second writer, and the
	# message says what to do.
	vfio p --name=p --filename=img.vdi --size=64m --rw=randwrite --bs=4k \
		--iodepth=4 --numjobs=2 --offset_increment=64m --runtime=6 \
		--time_based $common && { show p; fail "two processes wrote one image"; }
	grep -q "thread=1" p.err || { show p; fail "no hint to use thread=1"; }
	qcheck img.vdi
	pass
	;;

fsync)
	# fsync=N sends flushes through libvdi's queue.
	must f --name=f --filename=img.vdi --vdi_recreate=1 --size=32m --rw=randwrite \
		--bs=4k --iodepth=8 --fsync=16 --vdi_stats=1 --verify=crc32c $common
	syncs=$(jget f "j['sync']['total_ios']")
	[ "$syncs" -ge 500 ] || { show f; fail "only $syncs syncs issued (expected 8192/16)"; }
	flushes=$(sed -n 's/.*flushes=\([0-9]*\).*/\1/p' f.err | head -n 1)
	[ "${flushes:-0}" -ge 500 ] || { show f; fail "libvdi saw ${flushes:-no} flushes"; }
	qcheck img.vdi
	pass
	;;

trim)
	# Trim through vdi_queue_discard: whole blocks keep their slots,
	# punched out of the file (their space goes back, the count that QEMU
	# and VirtualBox allocate at stays right); partial ones read as zeros.
	must w --name=w --filename=img.vdi --vdi_recreate=1 --size=16m --rw=write \
		--bs=1m $common
	used_before=$(du -k img.vdi | cut -f1)
	must t --name=t --filename=img.vdi --size=8m --rw=trim --bs=1m $common
	must p --name=p --filename=img.vdi --offset=9m --size=4k --rw=trim --bs=4k $common
	[ "$(jget t "j['trim']['io_bytes']")" = $((8 << 20)) ] || { show t; fail "trimmed too little"; }
	used_after=$(du -k img.vdi | cut -f1)
	[ "$used_after" -le $((used_before - 8 * 1024 + 64)) ] ||
		fail "file uses ${used_after}k after trimming 8m of ${used_before}k"
	# Block 1 keeps slot 1, the count stays 16.
	[ "$(od -An -tu4 -j $(((1 << 20) + 4)) -N4 img.vdi | tr -d ' ')" = 1 ] ||
		fail "block 1 lost its slot"
	[ "$(od -An -tu4 -j $((0x184)) -N4 img.vdi | tr -d ' ')" = 16 ] ||
		fail "the count changed"
	qcheck img.vdi
	need_qemu
	qimg convert -O raw img.vdi img.raw || fail "qemu-img convert failed"
	cmp -n $((8 << 20)) img.raw /dev/zero || fail "trimmed range does not read as zeros"
	dd if=img.raw bs=4k skip=$((9 * 256)) count=1 status=none | cmp - /dev/zero -n 4096 ||
		fail "a trimmed 4k piece does not read as zeros"
	dd if=img.raw bs=4k skip=$((9 * 256 + 1)) count=1 status=none | cmp -s - /dev/zero -n 4096 &&
		fail "the data after the trimmed piece is gone"
	pass
	;;

shared)
	# Two blocks on one slot (a corruption vdi check reports): a write
	# through the engine to one of them is refused, and the other keeps
	# its data; reads work.
	must w --name=w --filename=img.vdi --vdi_recreate=1 --size=4m --rw=write \
		--bs=1m $common
	python3 -c '
import struct, sys
f = open(sys.argv[1], "r+b")
bmap = struct.unpack_from("<I", f.read(512), 340)[0]
f.seek(bmap + 4); f.write(struct.pack("<I", 0))
' img.vdi
	before=$(dd if=img.vdi bs=1M skip=2 count=1 status=none | sha256sum)
	vfio s --name=s --filename=img.vdi --offset=1m --size=64k --rw=write --bs=64k $common &&
		jobs_ok s && { show s; fail "a write to a shared block passed"; }
	grep -q "check -r all" s.err s.json || { show s; fail "the message does not name 'vdi check -r all'"; }
	[ "$(dd if=img.vdi bs=1M skip=2 count=1 status=none | sha256sum)" = "$before" ] ||
		fail "the other block changed"
	must r --name=r --filename=img.vdi --offset=1m --size=64k --rw=read --bs=64k $common
	pass
	;;

too-large)
	# A job past the end of the virtual disk is refused before any I/O and
	# leaves the image byte for byte as it was.
	if [ -n "$QEMU_IMG" ] && [ -x "$QEMU_IMG" ]; then
		qimg create -f vdi img.vdi 64M >/dev/null || fail "qemu-img create failed"
	else
		must c --name=c --filename=img.vdi --size=64m --rw=write --bs=1m $common
	fi
	must w --name=w --filename=img.vdi --size=8m --rw=write --bs=64k $common
	before=$(sha256sum img.vdi)
	vfio big --name=big --filename=img.vdi --size=128m --rw=randwrite --bs=4k $common &&
		{ show big; fail "a 128m job ran on a 64m disk"; }
	grep -q "virtual disk has 67108864 bytes" big.err || { show big; fail "no clear message"; }
	vfio off --name=off --filename=img.vdi --offset=60m --size=8m --rw=write --bs=4k $common &&
		{ show off; fail "a job at offset 60m+8m ran on a 64m disk"; }
	[ "$(sha256sum img.vdi)" = "$before" ] || fail "the image changed"
	# --readonly never creates an image.
	efio --readonly --name=ro --ioengine=external:"$ENGINE" --filename=none.vdi \
		--size=8m --rw=read >ro.out 2>&1 && { cat ro.out; fail "read of a missing image passed"; }
	[ ! -e none.vdi ] || fail "--readonly created an image"
	pass
	;;

options)
	# vdi_static, and the ring options, each working or falling back.
	must s --name=s --filename=static.vdi --vdi_recreate=1 --vdi_static=1 --size=16m \
		--rw=write --bs=1m $common
	[ "$(hdr_u32 static.vdi $((0x4C)))" = 2 ] || fail "vdi_static=1 made no static image"
	[ "$(stat -c %s static.vdi)" -ge $((16 << 20)) ] || fail "the static image is not preallocated"
	must r --name=r --filename=img.vdi --vdi_recreate=1 --size=32m --rw=randwrite --bs=16k \
		--iodepth=16 --vdi_sqpoll=1 --vdi_iopoll=1 --vdi_fixedbufs=1 --verify=crc32c $common
	cat r.err
	must r2 --name=r2 --filename=img.vdi --size=32m --rw=randread --bs=16k \
		--iodepth=16 --vdi_fixedbufs=1 --direct=0 --randrepeat=1 --runtime=1 --time_based
	cat r2.err
	qcheck img.vdi
	# The modes in use, from the engine's "ring modes in use" line: each
	# asked-for mode is in use, or its fallback was noted.  SQPOLL and
	# registered buffers work on any kernel the library supports, so a
	# noted fallback there is a skip (shown), a silent one a failure;
	# IOPOLL needs a device with poll queues, which few machines have.
	note=
	mode() { # JOB MODE: the value of MODE in JOB's line, or "none"
		sed -n "s/.*ring modes in use: .*\<$2=\([01]\) .*(asked.*/\1/p" "$1.err" |
			head -1 | grep . || echo none
	}
	for m in r:sqpoll:"refused SQPOLL" r:fixedbufs:"vdi_fixedbufs:\|register the buffers" \
		 r2:fixedbufs:"vdi_fixedbufs:\|register the buffers"; do
		job=${m%%:*} rest=${m#*:}
		name=${rest%%:*} why=${rest#*:}
		case $(mode "$job" "$name") in
		1) ;;
		0) grep -q "$why" "$job.err" || { show "$job"; fail "job $job: $name fell back silently"; }
		   note="${note:+$note; }job $job: $name not in use: $(grep "$why" "$job.err" | head -1)" ;;
		*) show "$job"; fail "job $job: no 'ring modes in use' line from the engine" ;;
		esac
	done
	case $(mode r iopoll) in
	1) ;;
	0) grep -q "vdi_iopoll ignored\|refused IOPOLL" r.err || { show r; fail "job r: iopoll fell back silently"; }
	   echo "iopoll not in use: $(grep "vdi_iopoll ignored\|refused IOPOLL" r.err | head -1)" ;;
	*) show r; fail "job r: no 'ring modes in use' line from the engine" ;;
	esac
	[ -z "$note" ] || skip "$note"
	pass "sqpoll and fixedbufs in use"
	;;

*)
	fail "unknown case"
	;;
esac
