#!/bin/bash
# vdi create and vdi convert lose no data (issue 10, "Data loss"):
#   1. convert refuses a DST that is SRC itself (path, hard link, symbolic
#      link, /proc/self/fd/N) or an image of SRC's chain;
#   2. an existing DST is replaced only with --force, and never while
#      another process holds it (qemu-io, fio through vdi.so, libvdi,
#      nbdkit); nor does fio's vdi_recreate=1 replace an image held so;
#   3. never when the user may not write it, nor in a directory they may
#      not write (run as nobody when the suite runs as root).
# Each refusal checks the exit status, the message, and that the file is
# untouched (SHA-256).  Item 4, inputs in other formats, is probe.sh.
. "$(dirname "$0")/lib.sh"
need_qemu
need_python

MiB=1048576
sha() { sha256sum "$1" | cut -d' ' -f1; }
no_temp_files() { # DIR
	! ls -a "$1" | grep -q -e 'vdi-convert' -e '^\.[^.].*\.[A-Za-z0-9]\{6\}$'
}

# refused DESC PATTERN FILE CMD...: CMD exits 1, says PATTERN (an extended
# regular expression) on stderr, and leaves FILE as it was.
refused() {
	local desc=$1 pattern=$2 file=$3 before
	shift 3
	before=$(sha "$file")
	exits "$desc" 1 "$@"
	if grep -Eq -- "$pattern" "$T/last.err"; then
		_result 0 "$desc: the message says '$pattern'"
	else
		_result 1 "$desc: the message says '$pattern'"
		sed 's/^/# err: /' "$T/last.err" | head -5
	fi
	is "$desc: $(basename "$file") is untouched" "$(sha "$file")" "$before"
}

# A VDI image with data in two blocks, and a raw file.
"$VDI" create -q "$T/a.vdi" 16M
"$QEMU_IO" -f vdi -c 'write -P 0x11 0 1M' -c 'write -P 0x22 5M 64k' \
	"$T/a.vdi" >/dev/null
make_sparse "$T/a.raw" $((4 * MiB)) 100000 0 $((3 * MiB))

# ---- 1. The destination is the source --------------------------------------

refused "convert a.vdi a.vdi" "is the source .*a\.vdi itself" "$T/a.vdi" \
	"$VDI" convert -O vdi "$T/a.vdi" "$T/a.vdi"
refused "convert a.vdi a.vdi --force" "is the source .*a\.vdi itself" \
	"$T/a.vdi" "$VDI" convert --force "$T/a.vdi" "$T/a.vdi"
refused "convert -f raw a.raw a.raw" "is the source .*a\.raw itself" \
	"$T/a.raw" "$VDI" convert -f raw "$T/a.raw" "$T/a.raw"
ln "$T/a.vdi" "$T/hard.vdi"
refused "convert to a hard link of the source" "hard\.vdi is the source" \
	"$T/a.vdi" "$VDI" convert -O vdi "$T/a.vdi" "$T/hard.vdi"
rm "$T/hard.vdi"
ln -s a.vdi "$T/sym.vdi"
refused "convert to a symbolic link to the source" "sym\.vdi is the source" \
	"$T/a.vdi" "$VDI" convert -O vdi "$T/a.vdi" "$T/sym.vdi"
[ -L "$T/sym.vdi" ]
_result $? "the symbolic link is still a link"
refused "convert the source through a symbolic link onto itself" \
	"a\.vdi is the source .*sym\.vdi itself" "$T/a.vdi" \
	"$VDI" convert -O vdi "$T/sym.vdi" "$T/a.vdi"
rm "$T/sym.vdi"
refused "convert to /proc/self/fd/N of the source" \
	"/proc/self/fd/3 is the source" "$T/a.vdi" \
	"$VDI" convert "$T/a.vdi" /proc/self/fd/3 3<"$T/a.vdi"
ok "no temporary file is left" no_temp_files "$T"

# A chain base <- mid <- top: neither parent may be the destination.
"$VDI" create -q "$T/base.vdi" 8M
"$QEMU_IO" -f vdi -c 'write -P 0x33 0 1M' "$T/base.vdi" >/dev/null
"$VDI" create -q -b "$T/base.vdi" "$T/mid.vdi"
"$VDI" create -q -b "$T/mid.vdi" "$T/top.vdi"
refused "convert top.vdi over its parent" \
	"mid\.vdi is .*an image of the chain that .*top\.vdi reads" \
	"$T/mid.vdi" "$VDI" convert -O vdi "$T/top.vdi" "$T/mid.vdi"
refused "convert top.vdi over its grandparent" \
	"base\.vdi is .*an image of the chain" \
	"$T/base.vdi" "$VDI" convert "$T/top.vdi" "$T/base.vdi"
refused "create -b top.vdi over its grandparent" \
	"base\.vdi is .*an image of the chain of the parent" \
	"$T/base.vdi" "$VDI" create -b "$T/top.vdi" "$T/base.vdi"
ok "the chain still reads as before" "$QEMU_IO" -f vdi -r \
	-c 'read -P 0x33 0 1M' "$T/base.vdi"
ok "vdi check of the chain's top" "$VDI" check "$T/top.vdi"

# ---- 2. Replacing an existing file takes --force, and no one may hold it ----

"$VDI" create -q "$T/b.vdi" 16M
"$QEMU_IO" -f vdi -c 'write -P 0x44 2M 1M' "$T/b.vdi" >/dev/null
refused "create over an existing file without --force" \
	"b\.vdi exists; add --force to replace it" "$T/b.vdi" \
	"$VDI" create "$T/b.vdi" 16M
refused "convert over an existing file without --force" \
	"b\.vdi exists; add --force to replace it" "$T/b.vdi" \
	"$VDI" convert -O vdi "$T/a.vdi" "$T/b.vdi"
refused "convert -O raw over an existing file without --force" \
	"a\.raw exists; add --force" "$T/a.raw" \
	"$VDI" convert "$T/a.vdi" "$T/a.raw"
exits "-f is still the format, not --force" 1 \
	"$VDI" create -f "$T/b.vdi" 16M

# lock_held FILE BYTE: wait (10 s at most) until another process holds
# QEMU's lock byte BYTE of FILE.
lock_held() {
	python3 - "$1" "$2" <<'PY'
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
getlk = getattr(fcntl, "F_OFD_GETLK", 36)
for _ in range(200):
    fl = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, int(sys.argv[2]), 1, 0)
    if struct.unpack("hhqqi4x", fcntl.fcntl(fd, getlk, fl))[0] != fcntl.F_UNLCK:
        sys.exit(0)
    time.sleep(0.05)
sys.exit(1)
PY
}
holder=
stop_holder() {
	[ -n "$holder" ] && kill "$holder" 2>/dev/null && wait "$holder" 2>/dev/null
	holder=
}
trap 'stop_holder; rm -rf "$T"' EXIT

libvdi=${LIBVDI:-}
pyexe=$(python3 -c 'import sys; print(sys.executable)')
preload=${VDI_FIO_PRELOAD:-}
# fio through vdi.so, when built and loadable.
have_fio() {
	[ -z "${VDI_FIO_SKIP:-}" ] && [ -n "${FIO:-}" ] && [ -n "${VDI_FIO_ENGINE:-}" ]
}
# fio_recreate: a fio job with vdi_recreate=1 on b.vdi (16 MiB, written).
fio_recreate() {
	LD_PRELOAD=$preload ASAN_OPTIONS=detect_leaks=0 "$FIO" --name=recreate \
		--ioengine=external:"$VDI_FIO_ENGINE" --filename="$T/b.vdi" \
		--vdi_recreate=1 --size=16m --rw=write --bs=1m --io_size=1m \
		--buffer_pattern=0x77
}

# held_by NAME BYTE: the tool refuses to replace b.vdi while NAME (started
# in the background as $holder) holds lock byte BYTE, and so does fio with
# vdi_recreate=1 (vdi_create with VDI_CREATE_REFUSE_IN_USE); the image is
# left as it was.
raw_done=
held_by() {
	local name=$1 byte=$2 inode
	if ! lock_held "$T/b.vdi" "$byte"; then
		_result 1 "$name takes lock byte $byte of b.vdi"
		stop_holder
		return
	fi
	inode=$(stat -c %i "$T/b.vdi")
	# Refused before --force is looked at, and with it.
	refused "create while $name has it open" \
		"b\.vdi is in use: another process .*byte $byte" "$T/b.vdi" \
		"$VDI" create "$T/b.vdi" 16M
	refused "convert while $name has it open" \
		"b\.vdi is in use: another process .*byte $byte" "$T/b.vdi" \
		"$VDI" convert -O vdi "$T/a.vdi" "$T/b.vdi"
	refused "create --force while $name has it open" \
		"b\.vdi is in use: another process .*byte $byte" "$T/b.vdi" \
		"$VDI" create --force "$T/b.vdi" 16M
	[ "$byte" = 101 ] && [ -z "$raw_done" ] && raw_done=1 &&
		refused "convert -O raw --force while $name has it open" \
			"b\.vdi is in use: .*byte $byte" "$T/b.vdi" \
			"$VDI" convert --force "$T/a.raw" "$T/b.vdi"
	if have_fio; then
		refused "fio vdi_recreate=1 while $name has it open" \
			"b\.vdi: cannot replace it: it is in use by another process" \
			"$T/b.vdi" fio_recreate
	else
		echo "# skip fio vdi_recreate=1: fio or vdi.so not built or not loadable"
	fi
	is "b.vdi is still the file $name has open" \
		"$(stat -c %i "$T/b.vdi")" "$inode"
	ok "no temporary file is left" no_temp_files "$T"
	stop_holder
}

"$QEMU_IO" -f vdi -c 'sleep 20000' "$T/b.vdi" >/dev/null 2>&1 &
holder=$!
held_by "qemu-io (read-write)" 101
"$QEMU_IO" -r -f vdi -c 'sleep 20000' "$T/b.vdi" >/dev/null 2>&1 &
holder=$!
held_by "qemu-io -r (read-only)" 201

# libvdi itself: an image opened with vdi_open() by a Python process (the
# interpreter itself, not a wrapper script, so that killing it stops it).
if [ -n "${VDI_FIO_SKIP:-}" ]; then
	echo "# skip the libvdi and fio holders: $VDI_FIO_SKIP"
elif [ -z "$libvdi" ] || [ ! -e "$libvdi" ]; then
	echo "# skip the libvdi holder: LIBVDI is not set"
else
	LD_PRELOAD=$preload ASAN_OPTIONS=detect_leaks=0 \
		"$pyexe" - "$libvdi" "$T/b.vdi" <<'PY' &
import ctypes, sys, time
lib = ctypes.CDLL(sys.argv[1])
img = ctypes.c_void_p()
if lib.vdi_open(sys.argv[2].encode(), 0, ctypes.byref(img)) != 0:
    sys.exit("vdi_open failed")
time.sleep(20)
PY
	holder=$!
	held_by "libvdi (vdi_open for writing)" 101
	LD_PRELOAD=$preload ASAN_OPTIONS=detect_leaks=0 \
		"$pyexe" - "$libvdi" "$T/b.vdi" <<'PY' &
import ctypes, sys, time
lib = ctypes.CDLL(sys.argv[1])
img = ctypes.c_void_p()
if lib.vdi_open(sys.argv[2].encode(), 1, ctypes.byref(img)) != 0:
    sys.exit("vdi_open failed")
time.sleep(20)
PY
	holder=$!
	held_by "libvdi (vdi_open read-only)" 201
fi

# fio through vdi.so, rewriting one block with the same bytes, slowly.
if [ -n "${VDI_FIO_SKIP:-}" ]; then
	:
elif [ -z "${FIO:-}" ] || [ -z "${VDI_FIO_ENGINE:-}" ]; then
	echo "# skip the fio holder: fio or vdi.so not built"
else
	"$VDI" create -q --force "$T/b.vdi" 16M
	"$QEMU_IO" -f vdi -c 'write -P 0x5a 0 4k' "$T/b.vdi" >/dev/null
	LD_PRELOAD=$preload ASAN_OPTIONS=detect_leaks=0 "$FIO" --name=hold \
		--ioengine=external:"$VDI_FIO_ENGINE" --thread --filename="$T/b.vdi" \
		--rw=write --bs=4k --size=4k --buffer_pattern=0x5a \
		--time_based --runtime=20 --rate_iops=2 >/dev/null 2>&1 &
	holder=$!
	held_by "fio through vdi.so" 101
fi

# nbdkit serving b.vdi read-write: the plugin opens it before it listens.
if [ -n "${VDI_FIO_SKIP:-}" ]; then
	:
elif [ -z "${NBDKIT:-}" ] || [ -z "${NBDKIT_VDI_PLUGIN:-}" ]; then
	echo "# skip the nbdkit holder: nbdkit or the plugin not there"
else
	LD_PRELOAD=$preload ASAN_OPTIONS=detect_leaks=0 "$NBDKIT" -f \
		-U "$T/nbd.sock" "$NBDKIT_VDI_PLUGIN" file="$T/b.vdi" \
		>/dev/null 2>&1 &
	holder=$!
	held_by "nbdkit (the VDI plugin)" 101
fi

# Nobody holds it now: fio's vdi_recreate=1 replaces it, once.
if have_fio; then
	inode=$(stat -c %i "$T/b.vdi")
	ok "fio vdi_recreate=1 once nobody holds it" fio_recreate
	[ "$(stat -c %i "$T/b.vdi")" != "$inode" ]
	_result $? "fio made a new b.vdi"
	ok "fio's new image is clean" "$QEMU_IMG" check "$T/b.vdi"
	ok "it holds fio's one block, zeros after it" "$QEMU_IO" -f vdi \
		-c 'read -P 0x77 0 1M' -c 'read -P 0 1M 15M' "$T/b.vdi"
fi

# Nobody holds it now: --force replaces it with a clean image (the tool
# holds the old file's locks itself while it does: vdi_create must not
# take them for another process's).
ok "create --force over an existing image" "$VDI" create --force \
	"$T/b.vdi" 16M
ok "the new image is clean" "$QEMU_IMG" check "$T/b.vdi"
ok "the new image is empty" "$QEMU_IO" -f vdi -c 'read -P 0 0 16M' "$T/b.vdi"
ok "convert --force over an existing image" "$VDI" convert --force -O vdi \
	"$T/a.vdi" "$T/b.vdi"
ok "it holds the source's disk" "$QEMU_IMG" compare "$T/a.vdi" "$T/b.vdi"

# ---- 3. Files and directories the user may not write ----------------------

# Root may write any file, so root may replace a read-only one (with
# --force), as qemu-img does; the file keeps its permissions.
cp "$T/a.vdi" "$T/ro.vdi"
chmod 0444 "$T/ro.vdi"
if [ "$(id -u)" = 0 ]; then
	refused "root: create over a 0444 file without --force" \
		"ro\.vdi exists; add --force" "$T/ro.vdi" \
		"$VDI" create "$T/ro.vdi" 16M
	ok "root: create --force over a 0444 file" "$VDI" create --force \
		"$T/ro.vdi" 16M
	is "root: the new image keeps mode 0444" "$(stat -c %a "$T/ro.vdi")" 444
	ok "root: convert --force over a 0444 file" "$VDI" convert --force \
		-O vdi "$T/a.vdi" "$T/ro.vdi"
	is "root: the converted image keeps mode 0444" \
		"$(stat -c %a "$T/ro.vdi")" 444
fi

# As a user without root's powers: nobody when we are root.
as_user() { "$@"; }
user_ok=1
if [ "$(id -u)" = 0 ]; then
	if ! command -v setpriv >/dev/null; then
		user_ok=0 reason="setpriv not found"
	else
		as_user() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
		chmod 0711 "$T"
		as_user "$VDI" --version >/dev/null 2>&1 ||
			{ user_ok=0 reason="nobody cannot run $VDI"; }
	fi
fi
if [ $user_ok = 0 ]; then
	echo "# skip the tests as a user who is not root: $reason"
else
	U=$T/user
	mkdir -m 0777 "$U"
	cp "$T/a.vdi" "$U/ro.vdi"
	cp "$T/a.raw" "$U/in.raw"
	chmod 0444 "$U/ro.vdi" "$U/in.raw"
	refused "user: create over a 0444 file" \
		"cannot replace .*ro\.vdi: you may not write it" "$U/ro.vdi" \
		as_user "$VDI" create "$U/ro.vdi" 16M
	refused "user: create --force over a 0444 file" \
		"cannot replace .*ro\.vdi: you may not write it" "$U/ro.vdi" \
		as_user "$VDI" create --force "$U/ro.vdi" 16M
	refused "user: convert --force over a 0444 file" \
		"cannot replace .*ro\.vdi: you may not write it" "$U/ro.vdi" \
		as_user "$VDI" convert --force "$U/in.raw" "$U/ro.vdi"
	refused "user: convert -O vdi over a 0444 file, no --force" \
		"cannot replace .*ro\.vdi: you may not write it" "$U/ro.vdi" \
		as_user "$VDI" convert -O vdi "$U/in.raw" "$U/ro.vdi"
	is "user: the 0444 file keeps its mode" "$(stat -c %a "$U/ro.vdi")" 444
	ok "user: no temporary file is left" no_temp_files "$U"

	# A directory the user may not write: no new file, and no writable
	# file in it replaced either.
	mkdir -m 0777 "$U/dir"
	cp "$T/a.vdi" "$U/dir/rw.vdi"
	chmod 0666 "$U/dir/rw.vdi"
	chmod 0555 "$U/dir"
	exits "user: create in a read-only directory" 1 \
		as_user "$VDI" create "$U/dir/new.vdi" 16M
	grep -q "directory .*dir cannot be written" "$T/last.err"
	_result $? "user: the message names the directory"
	[ ! -e "$U/dir/new.vdi" ]
	_result $? "user: no file was made"
	refused "user: convert over a writable file in a read-only directory" \
		"directory .*dir cannot be written" "$U/dir/rw.vdi" \
		as_user "$VDI" convert -O vdi "$U/in.raw" "$U/dir/rw.vdi"

	# The user's own private image, replaced with --force, stays private.
	as_user "$VDI" create -q "$U/own.vdi" 4M
	chmod 0600 "$U/own.vdi"
	ok "user: convert --force over the user's own 0600 image" \
		as_user "$VDI" convert --force -O vdi "$U/in.raw" "$U/own.vdi"
	is "user: the result keeps mode 0600" "$(stat -c %a "$U/own.vdi")" 600
	ok "user: qemu-img compare of the result" "$QEMU_IMG" compare \
		-f raw "$U/in.raw" "$U/own.vdi"
fi

done_testing
