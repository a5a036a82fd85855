#!/bin/bash
# Legacy VDI 0.x images (VirtualBox before 1.4): readable by info, check,
# map and convert; refused by every command that would write them, with a
# message that names the format and the way out (convert).  The image is
# built here from a raw file, since neither the fixtures nor QEMU have one.
. "$(dirname "$0")/lib.sh"
need_qemu
need_python

MiB=1048576
make_sparse "$T/src.raw" $((6 * MiB)) 200000 0 $((2 * MiB + 777)) $((5 * MiB + 1000))

# make_legacy RAW VDI BLOCK-SIZE: a 0.2 image with the raw file's non-zero
# blocks stored in reverse order (so the map is not the identity).
make_legacy() {
	python3 - "$@" <<'PY'
import struct, sys, uuid
raw, out, bs = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = open(raw, "rb").read()
blocks = (len(data) + bs - 1) // bs
chunks = [data[i * bs:(i + 1) * bs].ljust(bs, b"\0") for i in range(blocks)]
used = [i for i, c in enumerate(chunks) if c.count(0) != bs][::-1]
bmap = [0xFFFFFFFF] * blocks
for phys, vb in enumerate(used):
    bmap[vb] = phys
hdr = bytearray(420)
hdr[0:38] = b"<<< innotek VirtualBox Disk Image >>>\n"
struct.pack_into("<IIII", hdr, 0x40, 0xBEDA107F, 0x00000002, 1, 0)
hdr[0x50:0x50 + 7] = b"old one"
struct.pack_into("<IIII", hdr, 0x150, 100, 16, 63, 512)
struct.pack_into("<QIII", hdr, 0x160, len(data), bs, blocks, len(used))
hdr[0x174:0x184] = uuid.uuid4().bytes_le
hdr[0x184:0x194] = uuid.uuid4().bytes_le
with open(out, "wb") as f:
    f.write(hdr)
    f.write(struct.pack("<%dI" % blocks, *bmap))
    for vb in used:
        f.write(chunks[vb])
PY
}

make_legacy "$T/src.raw" "$T/old.vdi" $MiB
ok "info reads a 0.x header" "$VDI" info --output=json "$T/old.vdi"
cp "$T/last.out" "$T/info.json"
is "header version" "$(json_get "$T/info.json" 'j["format-specific"]["data"]["header-version"]')" "0.2"
is "virtual size" "$(json_get "$T/info.json" 'j["virtual-size"]')" $((6 * MiB))
ok "check finds nothing wrong" "$VDI" check "$T/old.vdi"
ok "map" "$VDI" map --output=json "$T/old.vdi"
is "map lists the three blocks with data" \
	"$(python3 -c 'import json,sys; print(sum(e["length"] for e in json.load(open(sys.argv[1])) if e["data"]))' "$T/last.out")" \
	$((3 * MiB))
ok "convert to raw" "$VDI" convert -O raw "$T/old.vdi" "$T/back.raw"
ok "the raw copy equals the source" cmp "$T/src.raw" "$T/back.raw"
ok "convert to VDI 1.1" "$VDI" convert -O vdi "$T/old.vdi" "$T/new.vdi"
ok "qemu-img check of the copy" "$QEMU_IMG" check "$T/new.vdi"
ok "qemu-img compare with the source" "$QEMU_IMG" compare -f raw -F vdi \
	"$T/src.raw" "$T/new.vdi"

# Same with a block size that is not 1 MiB and an unaligned map length.
make_legacy "$T/src.raw" "$T/old256.vdi" 262144
ok "convert a 256 KiB-block 0.x image" "$VDI" convert -O raw "$T/old256.vdi" "$T/back256.raw"
ok "it equals the source" cmp "$T/src.raw" "$T/back256.raw"

sum_before=$(sha256sum <"$T/old.vdi")
for cmd in "check -r leaks" "check -r all" "resize" "compact" "discard" "zero"; do
	case $cmd in
	resize) args=(resize "$T/old.vdi" 8M) ;;
	discard | zero) args=("$cmd" "$T/old.vdi" 0 1M) ;;
	*) read -ra args <<<"$cmd"; args+=("$T/old.vdi") ;;
	esac
	exits "vdi $cmd refuses a 0.x image" 1 "$VDI" "${args[@]}"
	grep -q "legacy VDI 0" "$T/last.err"
	_result $? "vdi $cmd says why"
done
# A parent is only read: a 0.x image can be one.
ok "create a differencing image over a 0.x parent" "$VDI" create -b "$T/old.vdi" "$T/child.vdi"
ok "the child reads as the source" "$VDI" convert -O raw "$T/child.vdi" "$T/child.raw"
ok "same bytes" cmp "$T/src.raw" "$T/child.raw"
is "the image is unchanged" "$(sha256sum <"$T/old.vdi")" "$sum_before"

done_testing
