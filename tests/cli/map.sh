#!/bin/bash
# vdi map: the JSON output must be byte for byte what qemu-img map prints
# for the same VDI file, and the human output too.
. "$(dirname "$0")/lib.sh"
need_qemu
need_python

compare_map() { # NAME FILE [EXTRA-ARGS...]
	local name=$1 f=$2
	shift 2
	ok "$name: qemu-img map --output=json" "$QEMU_IMG" map --output=json "$@" "$f"
	cp "$T/last.out" "$T/q.map"
	ok "$name: vdi map --output=json" "$VDI" map --output=json "$@" "$f"
	cp "$T/last.out" "$T/v.map"
	json_same "$T/q.map" "$T/v.map"
	_result $? "$name: JSON equal to qemu-img map's"
	[ -s "$T/q.map" ] && cmp -s "$T/q.map" "$T/v.map"
	_result $? "$name: JSON text identical to qemu-img map's"
	cmp -s "$T/q.map" "$T/v.map" || diff "$T/q.map" "$T/v.map" | head -20 | sed 's/^/# /'
	"$VDI" map "$@" "$f" >"$T/v.txt" 2>&1
	"$QEMU_IMG" map "$@" "$f" >"$T/q.txt" 2>&1
	[ -s "$T/q.txt" ] && diff "$T/q.txt" "$T/v.txt" >"$T/diff.out"
	_result $? "$name: human output identical to qemu-img map's"
	sed 's/^/# /' "$T/diff.out" | head -20
}

# A QEMU-made image with a mix: data, free blocks, a block written with
# zeros (allocated by QEMU), runs that are contiguous in the file and
# runs that are not, and a partial last block.
"$QEMU_IMG" create -q -f vdi "$T/mix.vdi" 20971000
"$QEMU_IO" -f vdi \
	-c 'write -P 0x55 0 1M' \
	-c 'write -P 0x66 3M 2M' \
	-c 'write -P 0 6M 512' \
	-c 'write -P 0x77 10M 4k' \
	-c 'write -P 0x11 1M 4k' \
	-c 'write -P 0x22 19M 1k' \
	"$T/mix.vdi" >/dev/null
compare_map "mixed" "$T/mix.vdi"
# The oracle itself must show what we meant to test.
is "mixed: has both data and free extents" \
	"$(json_get "$T/q.map" 'sorted(set(e["data"] for e in j))')" "[False, True]"
is "mixed: a data run is not contiguous with the previous one" \
	"$(json_get "$T/q.map" 'any(a["data"] and b["data"] and a["offset"] + a["length"] != b["offset"] for a, b in zip(j, j[1:]))')" True
compare_map "mixed, a window" "$T/mix.vdi" --start-offset=1536K --max-length=5M
compare_map "mixed, start past the end" "$T/mix.vdi" --start-offset=100M

# An empty image, and a static one (qemu looks at the file's holes there).
"$QEMU_IMG" create -q -f vdi "$T/empty.vdi" 1G
compare_map "empty" "$T/empty.vdi"
"$QEMU_IMG" create -q -f vdi -o static=on "$T/static.vdi" 4M
"$QEMU_IO" -f vdi -c 'write -P 3 1M 8k' "$T/static.vdi" >/dev/null
compare_map "qemu static" "$T/static.vdi"

# Images our own library made and wrote.
"$VDI" create -q "$T/ours.vdi" 16M
"$QEMU_IO" -f vdi -c 'write -P 9 2M 1M' -c 'write -P 8 9M 3k' "$T/ours.vdi" >/dev/null
compare_map "vdi-made, QEMU-written" "$T/ours.vdi"
"$VDI" create -q -o static=on "$T/ours-st.vdi" 6M
"$QEMU_IO" -f vdi -c 'write -P 7 4M 64k' "$T/ours-st.vdi" >/dev/null
compare_map "vdi-made static" "$T/ours-st.vdi"
make_sparse "$T/src.raw" 8388608 70000 0 3145728 7340032
"$VDI" convert -O vdi "$T/src.raw" "$T/conv.vdi" >/dev/null 2>&1
compare_map "vdi-converted" "$T/conv.vdi"

# Discarded blocks (entry 0xFFFFFFFE, as VirtualBox writes) read as
# zeros like free ones and merge with free neighbours (blocks 4 and 6 had
# data).
cp "$T/mix.vdi" "$T/zeroent.vdi"
python3 - "$T/zeroent.vdi" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
f.seek(0x154); bmap = struct.unpack("<I", f.read(4))[0]
f.seek(bmap + 4 * 4); f.write(struct.pack("<I", 0xFFFFFFFE))
f.seek(bmap + 4 * 6); f.write(struct.pack("<I", 0xFFFFFFFE))
PY
compare_map "zero entries" "$T/zeroent.vdi"

# A bad entry (points past the end of the file) is shown as data there.
python3 - "$T/mix.vdi" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
f.seek(0x154); bmap = struct.unpack("<I", f.read(4))[0]
f.seek(bmap + 4 * 8); f.write(struct.pack("<I", 1000))
PY
compare_map "bad entry" "$T/mix.vdi"

exits "map of a missing file" 1 "$VDI" map "$T/nope.vdi"
is "one line of error" "$(err_lines)" 1

done_testing
