#!/bin/bash
# Regenerate the seed corpus in tests/fuzz/corpus/: small VDI files, valid
# and broken, made by `vdi create`, qemu-img and qemu-io, then shrunk so
# each is a few KB (a file may end inside its last data block; the rest
# reads as zeros).  Usage: tests/fuzz/make-corpus.sh PATH-TO-vdi
set -eu
VDI=${1:?usage: $0 PATH-TO-vdi}
OUT=$(cd "$(dirname "$0")" && pwd)/corpus
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$OUT"
rm -f "$OUT"/*

# edit FILE OUT PYTHON: apply a python snippet to a copy (f: file opened
# r+b, h(): header fields, put32(off, v), bmap: map offset, data: data offset).
edit() {
	cp "$1" "$2"
	python3 - "$2" "$3" <<'PY'
import struct, sys
path, code = sys.argv[1], sys.argv[2]
f = open(path, "r+b")
def get32(off):
    f.seek(off); return struct.unpack("<I", f.read(4))[0]
def put32(off, v):
    f.seek(off); f.write(struct.pack("<I", v & 0xffffffff))
bmap, data = get32(0x154), get32(0x158)
exec(code)
f.close()
PY
}

# shrink FILE BYTES-AFTER-DATA: cut the file a little after the data area.
shrink() {
	local data
	data=$(python3 -c "import struct;f=open('$1','rb');f.seek(0x158);print(struct.unpack('<I',f.read(4))[0])")
	truncate -s $((data + $2)) "$1"
}

# qemu-img images: block map at 512, data right after it.
qemu-img create -q -f vdi "$T/q.vdi" 4M
cp "$T/q.vdi" "$OUT/qemu-empty.vdi"
qemu-io -f vdi -c 'write -P 0x5a 0 4k' -c 'write -P 0x33 2M 2k' "$T/q.vdi" >/dev/null
shrink "$T/q.vdi" 8192
cp "$T/q.vdi" "$OUT/qemu-written.vdi"
qemu-img create -q -f vdi -o static=on "$T/s.vdi" 2M
shrink "$T/s.vdi" 4096
cp "$T/s.vdi" "$OUT/qemu-static-cut.vdi"

# vdi create images: its 1 MiB alignment made compact (map at 512, data at
# 1024) so the file stays small; the header is vdi create's.
"$VDI" create -q "$T/v.vdi" 3M
python3 - "$T/v.vdi" "$T/vc.vdi" <<'PY'
import struct, sys
src = open(sys.argv[1], "rb").read()
hdr = bytearray(src[:512])
bmap, data = struct.unpack_from("<II", hdr, 0x154)
blocks = struct.unpack_from("<I", hdr, 0x180)[0]
struct.pack_into("<II", hdr, 0x154, 512, 1024)
m = bytearray(src[bmap:bmap + 4 * blocks]).ljust(512, b"\0")
struct.pack_into("<I", m, 0, 0)          # block 0 -> physical 0
struct.pack_into("<I", hdr, 0x184, 1)
open(sys.argv[2], "wb").write(bytes(hdr) + bytes(m) + b"\x11" * 2048)
PY
cp "$T/vc.vdi" "$OUT/vdi-compact.vdi"
"$VDI" create -q -o block_size=128K "$T/b.vdi" 512K
python3 - "$T/b.vdi" "$T/bc.vdi" <<'PY'
import struct, sys
src = open(sys.argv[1], "rb").read()
hdr = bytearray(src[:512])
bmap = struct.unpack_from("<I", hdr, 0x154)[0]
blocks = struct.unpack_from("<I", hdr, 0x180)[0]
struct.pack_into("<II", hdr, 0x154, 512, 1024)
m = bytearray(src[bmap:bmap + 4 * blocks]).ljust(512, b"\0")
struct.pack_into("<III", m, 0, 1, 0xFFFFFFFE, 0)
struct.pack_into("<I", hdr, 0x184, 2)
open(sys.argv[2], "wb").write(bytes(hdr) + bytes(m) + b"\x22" * 3000)
PY
cp "$T/bc.vdi" "$OUT/vdi-128k-zero-entry.vdi"

# Broken ones, each with one thing wrong.
Q="$OUT/qemu-written.vdi"
edit "$Q" "$OUT/bad-past-eof.vdi" 'put32(bmap + 4, 1000)'
edit "$Q" "$OUT/bad-duplicate.vdi" 'put32(bmap + 8, 0); put32(0x184, 3)'
edit "$Q" "$OUT/bad-count.vdi" 'put32(0x184, 9)'
# A one-block image of 128 KiB blocks: the smallest that can hold an entry
# beyond the block count inside the file, or a leaked block at its end.
B="$OUT/vdi-128k-zero-entry.vdi"
edit "$B" "$OUT/bad-out-of-range.vdi" 'put32(0x180, 1); f.seek(0x170); f.write(struct.pack("<Q", 131072)); put32(0x184, 1); put32(bmap, 1); f.truncate(data + 131072 + 512)'
edit "$B" "$OUT/bad-leak-end.vdi" 'put32(0x180, 1); f.seek(0x170); f.write(struct.pack("<Q", 131072)); put32(0x184, 1); put32(bmap, 0); f.truncate(data + 131072); f.seek(data + 131072); f.write(b"\x77" * 100)'
edit "$Q" "$OUT/bad-signature.vdi" 'put32(0x40, 0x12345678)'
edit "$Q" "$OUT/bad-block-size.vdi" 'put32(0x178, 3000)'
edit "$Q" "$OUT/bad-blocks-huge.vdi" 'put32(0x180, 0x7fffffff)'
edit "$Q" "$OUT/bad-bmap-offset.vdi" 'put32(0x154, 0xfffffe00)'
edit "$Q" "$OUT/bad-data-offset.vdi" 'put32(0x158, 300)'
edit "$Q" "$OUT/bad-disk-size.vdi" 'f.seek(0x170); f.write(struct.pack("<Q", 1 << 62))'
edit "$Q" "$OUT/bad-type-diff.vdi" 'put32(0x4c, 4)'
edit "$Q" "$OUT/bad-header-size.vdi" 'put32(0x48, 100)'
# Legacy 0.x layout (map at 420, data right after it): two 128 KiB blocks,
# the second allocated and cut short by the end of the file.
python3 - "$OUT/legacy-0.2.vdi" <<'PY'
import struct, sys
hdr = bytearray(420)
hdr[0:38] = b"<<< innotek VirtualBox Disk Image >>>\n"
struct.pack_into("<IIII", hdr, 0x40, 0xBEDA107F, 2, 1, 0)
struct.pack_into("<IIII", hdr, 0x150, 4, 16, 63, 512)
struct.pack_into("<QIII", hdr, 0x160, 2 * 131072, 131072, 2, 1)
hdr[0x174:0x194] = bytes(range(1, 33))
open(sys.argv[1], "wb").write(bytes(hdr) + struct.pack("<II", 0xFFFFFFFF, 0) + b"\x5a" * 2000)
PY
edit "$OUT/legacy-0.2.vdi" "$OUT/bad-legacy-diff.vdi" 'put32(0x48, 4)'
head -c 600 "$Q" >"$OUT/bad-truncated-map.vdi"
head -c 100 "$Q" >"$OUT/bad-short-header.vdi"
printf '' >"$OUT/empty"
ls -l "$OUT"
