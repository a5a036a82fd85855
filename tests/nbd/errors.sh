#!/bin/sh
# Errors: a malformed image and a missing parent stop nbdkit with libvdi's
# message; bad parameters are named; an image in use by another process is
# refused, and so is a second nbdkit; a read of a block that points past
# the end of the file is an I/O error for the client.
. "$(dirname "$0")/lib.sh"
need_nbdkit
need_qemu
need_python
# With libasan preloaded, an nbdkit that fails to start never exits: a
# destructor of libp11-kit (loaded by nbdkit's GnuTLS) waits for glibc's
# locale lock, whose reader count is broken by then.  nbdkit's own file
# plugin does the same (nbdkit -U S file /missing).  So these cases run in
# the normal build only.
[ -z "${NBDKIT_PRELOAD:-}" ] ||
	skip_all "nbdkit hangs at exit when it fails to start with libasan preloaded"

# start PARAMS...: nbdkit in the foreground, exiting at once if it fails
# to start; a successful start is ended at once (--run true).
start() {
	nbdkit_run -U "$T/e.sock" "$PLUGIN" "$@" --run true
}

# said PATTERN: the last command's stderr (or stdout) has PATTERN.
said() {
	cat "$T/last.err" "$T/last.out" >"$T/said"
	ok "... saying: $1" grep -q -- "$1" "$T/said"
}

"$VDI" create -q "$T/d.vdi" 16M
cp "$T/d.vdi" "$T/bad.vdi"
# Block size 3000 (header offset 0x178).
printf '\270\013\000\000' | dd of="$T/bad.vdi" bs=1 seek=376 conv=notrunc 2>/dev/null
exits "a malformed image stops nbdkit" 1 start file="$T/bad.vdi"
said "vdi_open: .*bad.vdi: block size 3000 is not a power of two"

mkdir "$T/kids"
"$VDI" create -q -b "$T/d.vdi" "$T/kids/c.vdi"
exits "a differencing image whose parent is missing stops nbdkit" 1 start file="$T/kids/c.vdi"
said "c.vdi: differencing image: no parent with UUID"
ok "... and how to name it" grep -q "name its parent with parent=" "$T/said"
exits "a parent that does not exist" 1 start file="$T/kids/c.vdi" parent="$T/none.vdi"
said "none.vdi: No such file or directory"
exits "a parent that is not the parent" 1 start file="$T/kids/c.vdi" parent="$T/bad.vdi"
said "bad.vdi"
exits "parent= for an image that has none" 1 start file="$T/d.vdi" parent="$T/d.vdi"
said "not a differencing image, so it has no parent"
exits "an unknown parameter" 1 start file="$T/d.vdi" cache=none
said "unknown parameter 'cache'"
exits "a bad boolean" 1 start file="$T/d.vdi" readonly=maybe
said "readonly=maybe: expected true or false"
exits "no file=" 1 start
said "no image: give file="
exits "a missing image" 1 start file="$T/none.vdi"
said "none.vdi: No such file or directory"

# Locking: one writer, or readers only.
ok "nbdkit serves d.vdi read-write" serve a file="$T/d.vdi"
exits "a second nbdkit on the same image is refused" 1 start file="$T/d.vdi" readonly=true
said "in use by another process"
exits "a qemu-io writer is refused" 1 "$QEMU_IO" -f vdi -c 'write 0 4k' "$T/d.vdi"
said 'Failed to get "write" lock'
stop a
ok "qemu-io writes once nbdkit has gone" "$QEMU_IO" -f vdi -c 'write -P 3 0 4k' "$T/d.vdi"
ok "nbdkit serves d.vdi read-only" serve r1 file="$T/d.vdi" readonly=true
ok "a second read-only nbdkit shares it" serve r2 file="$T/d.vdi" readonly=true
ok "... which reads it" "$QEMU_IO" -f raw -r -c 'read -P 3 0 4k' "$URI"
exits "a qemu-io writer is refused" 1 "$QEMU_IO" -f vdi -c 'write 0 4k' "$T/d.vdi"
ok "the export is read-only" "$NBDINFO" --json "$URI"
is "... as nbdinfo says" "$(json_get "$T/last.out" 'j["exports"][0]["is_read_only"]')" True
stop r1
stop r2
# A qemu-io writer holding the image keeps nbdkit out.  (Wait until its
# locks show in /proc/locks.)
"$QEMU_IO" -f vdi -c 'sleep 20000' "$T/d.vdi" >/dev/null 2>&1 &
qpid=$!
ino=$(stat -c %i "$T/d.vdi")
for i in $(seq 200); do
	grep -q ":$ino " /proc/locks && break
	sleep 0.05
done
exits "nbdkit is refused an image qemu-io writes" 1 start file="$T/d.vdi"
said "in use by another process"
kill "$qpid"
wait "$qpid" 2>/dev/null

# A block whose entry points past the end of the file (cut short).
"$QEMU_IO" -f vdi -c 'write -P 1 0 1M' -c 'write -P 2 1M 1M' "$T/d.vdi" >/dev/null
truncate -s -1M "$T/d.vdi"
serve b file="$T/d.vdi" readonly=true
exits "reading the block cut off fails" 1 "$QEMU_IO" -f raw -r -c 'read 1M 4k' "$URI"
said "Input/output error"
ok "the block before it reads" "$QEMU_IO" -f raw -r -c 'read -P 1 0 1M' "$URI"
stop b

echo "1..$_tap_n"
[ $_tap_failed -eq 0 ]
