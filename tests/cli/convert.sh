#!/bin/bash
# vdi convert: raw <-> VDI copies checked with qemu-img compare/check and
# qemu-img convert as the oracle; zero blocks stay unallocated or holes; a
# failed convert leaves nothing behind.
. "$(dirname "$0")/lib.sh"
need_qemu
need_python

MiB=1048576
# 40 MiB with data at block starts, in the middle of blocks, across a block
# boundary, at an unaligned offset and at the very end; holes elsewhere.
make_sparse "$T/src.raw" $((40 * MiB)) 300000 \
	0 $((3 * MiB + 12345)) $((10 * MiB - 100000)) $((20 * MiB + 4096)) \
	$((40 * MiB - 300000))
# Blocks of the source with any non-zero byte, for a block size.
nonzero_blocks() { # FILE BLOCK-SIZE
	python3 - "$1" "$2" <<'PY'
import sys
bs = int(sys.argv[2]); n = 0
with open(sys.argv[1], "rb") as f:
    while (b := f.read(bs)):
        n += b.count(0) != len(b)
print(n)
PY
}
allocated() { # VDI-FILE: blocks-allocated from vdi info
	"$VDI" info --output=json "$1" >"$T/info.json"
	json_get "$T/info.json" 'j["format-specific"]["data"]["blocks-allocated"]'
}
no_temp_files() { # DIR
	! ls -a "$1" | grep -q 'vdi-convert'
}

# raw -> VDI
ok "convert raw -> vdi" "$VDI" convert -O vdi "$T/src.raw" "$T/a.vdi"
ok "qemu-img check of the result" "$QEMU_IMG" check "$T/a.vdi"
ok "qemu-img compare raw and vdi" "$QEMU_IMG" compare -f raw -F vdi \
	"$T/src.raw" "$T/a.vdi"
is "only the blocks with data are allocated" "$(allocated "$T/a.vdi")" \
	"$(nonzero_blocks "$T/src.raw" $MiB)"

# VDI -> raw (raw is the default output format, as in qemu-img)
ok "convert vdi -> raw" "$VDI" convert "$T/a.vdi" "$T/back.raw"
ok "the round trip is byte-identical" cmp "$T/src.raw" "$T/back.raw"
blocks=$(stat -c %b "$T/back.raw")
[ $((blocks * 512)) -lt $((8 * MiB)) ]
_result $? "the raw result is sparse ($((blocks * 512)) bytes used of 40 MiB)"

# A QEMU-made, QEMU-written VDI -> raw, against qemu-img convert.
"$QEMU_IMG" create -q -f vdi "$T/q.vdi" 24M
"$QEMU_IO" -f vdi -c 'write -P 0x5a 0 1M' -c 'write -P 0xa5 5M 2500k' \
	-c 'write -P 0 12M 1M' -c 'write -P 0x3c 23M 4k' "$T/q.vdi" >/dev/null
"$QEMU_IMG" convert -f vdi -O raw "$T/q.vdi" "$T/q-qemu.raw"
ok "convert qemu-made vdi -> raw" "$VDI" convert -O raw "$T/q.vdi" "$T/q-vdi.raw"
ok "same bytes as qemu-img convert -O raw" cmp "$T/q-qemu.raw" "$T/q-vdi.raw"

# A discarded block (entry 0xFFFFFFFE) reads as zeros although its old
# data is still in the file.
cp "$T/q.vdi" "$T/z.vdi"
python3 - "$T/z.vdi" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
f.seek(0x154); bmap = struct.unpack("<I", f.read(4))[0]
f.seek(bmap + 4 * 5); f.write(struct.pack("<I", 0xFFFFFFFE))
PY
"$QEMU_IMG" convert -f vdi -O raw "$T/z.vdi" "$T/z-qemu.raw"
ok "convert with a discarded block" "$VDI" convert "$T/z.vdi" "$T/z-vdi.raw"
ok "same bytes as qemu-img convert" cmp "$T/z-qemu.raw" "$T/z-vdi.raw"
cmp -s "$T/q-qemu.raw" "$T/z-vdi.raw"
[ $? = 1 ]
_result $? "the discarded block did change the disk"

# VDI -> VDI, static and with other block sizes.
ok "convert vdi -> static vdi" "$VDI" convert -O vdi -o static=on "$T/q.vdi" "$T/st.vdi"
ok "qemu-img check of the static result" "$QEMU_IMG" check "$T/st.vdi"
ok "qemu-img compare source and static copy" "$QEMU_IMG" compare "$T/q.vdi" "$T/st.vdi"
ok "convert raw -> vdi with 128K blocks" "$VDI" convert -O vdi \
	-o block_size=128K "$T/src.raw" "$T/b128k.vdi"
ok "vdi check of the 128K image" "$VDI" check "$T/b128k.vdi"
is "128K blocks: only blocks with data allocated" "$(allocated "$T/b128k.vdi")" \
	"$(nonzero_blocks "$T/src.raw" 131072)"
ok "convert 128K vdi -> 2M vdi" "$VDI" convert -O vdi -o block_size=2M \
	"$T/b128k.vdi" "$T/b2m.vdi"
ok "convert 2M vdi -> raw" "$VDI" convert "$T/b2m.vdi" "$T/b2m.raw"
ok "128K -> 2M -> raw is the source" cmp "$T/src.raw" "$T/b2m.raw"

# Queue depth does not change the result.
for m in 1 3 64; do
	ok "convert -m $m" "$VDI" convert -m $m -O vdi "$T/src.raw" "$T/m$m.vdi"
	ok "-m $m result compares equal" "$QEMU_IMG" compare -f raw -F vdi \
		"$T/src.raw" "$T/m$m.vdi"
done

# -f raw copies a VDI file as plain bytes; probing sees raw for non-VDI.
ok "convert -f raw of a VDI file" "$VDI" convert -f raw "$T/q.vdi" "$T/bytes.raw"
ok "-f raw copies the file as is" cmp "$T/q.vdi" "$T/bytes.raw"
ok "convert the copy, format probed" "$VDI" convert "$T/bytes.raw" "$T/bytes2.raw"
ok "probing found the VDI signature in it" cmp "$T/q-qemu.raw" "$T/bytes2.raw"

# A size that is not a multiple of 512 is rounded up, as QEMU does.
head -c 1000 /dev/urandom >"$T/odd.raw"
ok "convert a 1000-byte raw file -> vdi" "$VDI" convert -O vdi "$T/odd.raw" "$T/odd.vdi"
"$QEMU_IMG" info --output=json "$T/odd.vdi" >"$T/q.json"
is "virtual size rounded up to 1024" "$(json_get "$T/q.json" 'j["virtual-size"]')" 1024
ok "the 1000 bytes are there" "$QEMU_IMG" compare -f raw -F vdi "$T/odd.raw" "$T/odd.vdi"

# Progress and quiet.
ok "convert -p" "$VDI" convert -p "$T/a.vdi" "$T/p.raw"
grep -q '100.0%' "$T/last.err"
_result $? "-p draws the bar up to 100.0% on stderr"
is "-p prints nothing on stdout" "$(cat "$T/last.out")" ""
ok "convert -p -q" "$VDI" convert -p -q --force "$T/a.vdi" "$T/p.raw"
is "-q silences the bar" "$(cat "$T/last.err")" ""

# An existing destination is replaced, with a normal file mode.
ok "a new file" sh -c "umask 022 && '$VDI' convert '$T/a.vdi' '$T/new.raw'"
is "new file mode follows the umask" "$(stat -c %a "$T/new.raw")" 644
echo old >"$T/exists.raw"
chmod 600 "$T/exists.raw"
ok "convert --force onto an existing file" sh -c \
	"umask 022 && '$VDI' convert --force '$T/a.vdi' '$T/exists.raw'"
ok "it now holds the disk" cmp "$T/src.raw" "$T/exists.raw"
is "a replaced file keeps its mode (as qemu-img leaves it)" \
	"$(stat -c %a "$T/exists.raw")" 600

# A source that fails half-way: a block map entry past the end of the file.
"$QEMU_IMG" create -q -f vdi "$T/bad.vdi" 8M
"$QEMU_IO" -f vdi -c 'write -P 1 0 2M' "$T/bad.vdi" >/dev/null
python3 - "$T/bad.vdi" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
f.seek(0x154); bmap = struct.unpack("<I", f.read(4))[0]
f.seek(bmap + 4); f.write(struct.pack("<I", 5000))
PY
exits "convert of a source with a bad block fails" 1 "$VDI" convert "$T/bad.vdi" "$T/fail.raw"
is "one line of error" "$(err_lines)" 1
[ ! -e "$T/fail.raw" ]
_result $? "no destination is left"
no_temp_files "$T"
_result $? "no temporary file is left"
echo keep >"$T/keep.raw"
exits "a failing convert -O vdi onto an existing file" 1 \
	"$VDI" convert --force -O vdi "$T/bad.vdi" "$T/keep.raw"
is "the existing file is untouched" "$(cat "$T/keep.raw")" keep
no_temp_files "$T"
_result $? "no temporary file is left (vdi output)"

# Usage errors.
exits "-o without -O vdi" 1 "$VDI" convert -o static=on "$T/a.vdi" "$T/x.raw"
exits "unknown output format" 1 "$VDI" convert -O qcow2 "$T/a.vdi" "$T/x"
exits "a directory as destination" 1 "$VDI" convert "$T/a.vdi" "$T"
exits "missing source" 1 "$VDI" convert "$T/nope" "$T/x.raw"
is "one line of error" "$(err_lines)" 1
[ ! -e "$T/x.raw" ] && [ ! -e "$T/x" ]
_result $? "failed usage leaves no destination"

done_testing
