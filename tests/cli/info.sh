#!/bin/bash
# vdi info: the keys qemu-img info has must agree with it; the VDI fields
# must agree with the header bytes, read here independently with python.
. "$(dirname "$0")/lib.sh"
need_qemu
need_python

# Compare the shared keys and the header fields of one image.
compare_info() { # NAME FILE
	local name=$1 f=$2
	ok "$name: vdi info --output=json" "$VDI" info --output=json "$f"
	cp "$T/last.out" "$T/v.json"
	"$QEMU_IMG" info --output=json "$f" >"$T/q.json"
	for key in virtual-size cluster-size format actual-size dirty-flag filename; do
		is "$name: \"$key\" as qemu-img" \
			"$(json_get "$T/v.json" "j['$key']")" \
			"$(json_get "$T/q.json" "j['$key']")"
	done
	python3 - "$f" "$T/v.json" >"$T/hdr.out" 2>&1 <<'PY'
import json, struct, sys, uuid
raw = open(sys.argv[1], "rb").read(512)
d = json.load(open(sys.argv[2]))["format-specific"]
assert d["type"] == "vdi", d["type"]
d = d["data"]
u32 = lambda o: struct.unpack_from("<I", raw, o)[0]
want = {
    "header-version": "%d.%d" % (u32(0x44) >> 16, u32(0x44) & 0xFFFF),
    "header-size": u32(0x48),
    "image-type": {1: "dynamic", 2: "static"}[u32(0x4C)],
    "offset-bmap": u32(0x154),
    "offset-data": u32(0x158),
    "disk-size-stored": struct.unpack_from("<Q", raw, 0x170)[0],
    "block-size": u32(0x178),
    "block-extra": u32(0x17C),
    "blocks": u32(0x180),
    "blocks-allocated": u32(0x184),
    "uuid": str(uuid.UUID(bytes_le=raw[0x188:0x198])),
    "modification-uuid": str(uuid.UUID(bytes_le=raw[0x198:0x1A8])),
    "link-uuid": str(uuid.UUID(bytes_le=raw[0x1A8:0x1B8])),
    "parent-uuid": str(uuid.UUID(bytes_le=raw[0x1B8:0x1C8])),
    "description": raw[0x54:0x154].split(b"\0")[0].decode(),
}
bad = ["%s: got %r, header says %r" % (k, d.get(k), v)
       for k, v in want.items() if d.get(k) != v]
if bad:
    print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
	_result $? "$name: format-specific fields match the header bytes"
	[ -s "$T/hdr.out" ] && sed 's/^/# /' "$T/hdr.out"
	# The human report starts with qemu-img's own lines, word for word.
	exits "$name: vdi info" 0 "$VDI" info "$f"
	head -5 "$T/last.out" >"$T/v.txt"
	"$QEMU_IMG" info "$f" | head -5 >"$T/q.txt"
	diff "$T/q.txt" "$T/v.txt" >"$T/diff.out"
	_result $? "$name: first five human lines equal qemu-img info's"
	sed 's/^/# /' "$T/diff.out"
}

# An image QEMU made and wrote, with some blocks allocated.
"$QEMU_IMG" create -q -f vdi "$T/q.vdi" 100M
"$QEMU_IO" -f vdi -c 'write -P 1 0 1M' -c 'write -P 2 50M 3M' "$T/q.vdi" >/dev/null
compare_info "qemu-made" "$T/q.vdi"
is "qemu-made: blocks-mapped counts the 4 written blocks" \
	"$(json_get "$T/v.json" 'j["format-specific"]["data"]["blocks-mapped"]')" 4
# QEMU's data area (at 1024 for 100 blocks) is not 4 KiB aligned: info and
# check say so and point at an aligned copy; our own images are aligned.
is "qemu-made: data-alignment" \
	"$(json_get "$T/v.json" 'j["format-specific"]["data"]["data-alignment"]')" 1024
"$VDI" info "$T/q.vdi" | grep -q "^Hint: the data area starts at 1024, .*'vdi convert -O vdi"
_result $? "qemu-made: info hints at vdi convert"
"$VDI" check "$T/q.vdi" >"$T/check.out"
grep -q "^Data area alignment: 1024 bytes" "$T/check.out" && grep -q "^Hint: .*vdi convert -O vdi" "$T/check.out"
_result $? "qemu-made: check shows the alignment and the hint"
is "qemu-made: check --output=json data-alignment" \
	"$("$VDI" check --output=json "$T/q.vdi" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data-alignment"])')" 1024
ok "an aligned copy" "$VDI" convert -O vdi "$T/q.vdi" "$T/q-aligned.vdi"
"$VDI" info --output=json "$T/q-aligned.vdi" >"$T/a.json"
is "the copy is aligned to 1 MiB" \
	"$(json_get "$T/a.json" 'j["format-specific"]["data"]["data-alignment"]')" 1048576
"$VDI" info "$T/q-aligned.vdi" | grep -q "^Hint:"
[ $? -ne 0 ]
_result $? "no hint for an aligned image"

# Our own images, dynamic and static, with a description.
"$VDI" create -q -o 'description=a "test" disk' "$T/d.vdi" 1474560
compare_info "vdi-made dynamic" "$T/d.vdi"
"$VDI" create -q -o static=on "$T/s.vdi" 3M
compare_info "vdi-made static" "$T/s.vdi"

# A description that is not UTF-8 still gives valid JSON.
python3 - "$T/d.vdi" <<'PY'
import sys
f = open(sys.argv[1], "r+b"); f.seek(0x54); f.write(b"caf\xe9\x01\ttab\0")
PY
ok "info on a non-UTF-8 description" "$VDI" info --output=json "$T/d.vdi"
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["format-specific"]["data"]["description"])' \
	"$T/last.out" >"$T/desc.txt" 2>&1
_result $? "the output is valid JSON"
is "bad bytes become U+FFFD, controls are escaped" "$(cat "$T/desc.txt")" \
	"$(printf 'caf\xef\xbf\xbd\x01\ttab')"

# Human output holds the format-specific section.
"$VDI" info "$T/q.vdi" >"$T/h.txt"
grep -q '^    image type: dynamic$' "$T/h.txt"
_result $? "human output shows the image type"
grep -q '^    blocks allocated: 4$' "$T/h.txt"
_result $? "human output shows the allocated blocks"

exits "info on a raw file fails" 1 "$VDI" info "$T/h.txt"
is "one line of error" "$(err_lines)" 1

done_testing
