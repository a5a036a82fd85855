#!/bin/bash
# vdi check: exit status 0 clean, 2 corruption, 3 leaks only, 1 when it
# cannot check; JSON in qemu-img check's shape; the image is not changed.
. "$(dirname "$0")/lib.sh"
need_qemu
need_python

# Write a uint32 into the header or the block map: poke FILE WHAT VALUE
# (WHAT: "allocated" for the header count, or a block number).
poke() {
	python3 - "$@" <<'PY'
import struct, sys
path, what, value = sys.argv[1], sys.argv[2], int(sys.argv[3], 0)
f = open(path, "r+b")
if what == "allocated":
    f.seek(0x184)
else:
    f.seek(0x154); bmap = struct.unpack("<I", f.read(4))[0]
    f.seek(bmap + 4 * int(what))
f.write(struct.pack("<I", value))
PY
}

new_image() { # FILE: 8 MiB, blocks 0, 2 and 3 written by QEMU
	"$QEMU_IMG" create -q -f vdi "$1" 8M
	"$QEMU_IO" -f vdi -c 'write -P 1 0 1M' -c 'write -P 2 2M 2M' "$1" >/dev/null
}

# Clean.
new_image "$T/clean.vdi"
exits "clean image" 0 "$VDI" check "$T/clean.vdi"
grep -q '^No errors were found on the image.$' "$T/last.out"
_result $? "says no errors were found"
exits "clean image, JSON" 0 "$VDI" check --output=json "$T/clean.vdi"
cp "$T/last.out" "$T/v.json"
"$QEMU_IMG" check --output=json "$T/clean.vdi" >"$T/q.json"
for key in filename format check-errors; do
	is "clean: \"$key\" as qemu-img check" "$(json_get "$T/v.json" "j['$key']")" \
		"$(json_get "$T/q.json" "j['$key']")"
done
is "clean: corruptions 0" "$(json_get "$T/v.json" 'j["corruptions"]')" 0
is "clean: leaks 0" "$(json_get "$T/v.json" 'j["leaks"]')" 0
is "clean: total-clusters" "$(json_get "$T/v.json" 'j["total-clusters"]')" 8
is "clean: allocated-clusters" "$(json_get "$T/v.json" 'j["allocated-clusters"]')" 3
is "clean: image-end-offset is the end of the last block" \
	"$(json_get "$T/v.json" 'j["image-end-offset"]')" "$(stat -c %s "$T/clean.vdi")"
is "clean: no problems listed" "$(json_get "$T/v.json" 'j["problems"]')" "[]"
exits "-q prints nothing" 0 "$VDI" check -q "$T/clean.vdi"
is "-q output" "$(cat "$T/last.out" "$T/last.err")" ""

# Corruption: an entry beyond the block count (and the file).  QEMU agrees.
cp "$T/clean.vdi" "$T/range.vdi"
poke "$T/range.vdi" 5 100
sum_before=$(sha256sum <"$T/range.vdi")
exits "out-of-range entry" 2 "$VDI" check "$T/range.vdi"
grep -q 'errors were found on the image' "$T/last.out"
_result $? "human output reports errors"
grep -q 'block 5' "$T/last.out"
_result $? "a problem line names block 5"
exits "qemu-img check agrees it is corrupt" 2 "$QEMU_IMG" check "$T/range.vdi"
exits "out-of-range entry, JSON" 2 "$VDI" check --output=json "$T/range.vdi"
cp "$T/last.out" "$T/v.json"
[ "$(json_get "$T/v.json" 'j["corruptions"]')" -ge 1 ] 2>/dev/null
_result $? "JSON counts corruptions"
[ "$(json_get "$T/v.json" 'len(j["problems"])')" -ge 1 ] 2>/dev/null
_result $? "JSON lists the problems"
is "check did not change the image" "$(sha256sum <"$T/range.vdi")" "$sum_before"

# Corruption: two entries use the same physical block.
cp "$T/clean.vdi" "$T/dup.vdi"
poke "$T/dup.vdi" 6 0
poke "$T/dup.vdi" allocated 4
exits "duplicate entry" 2 "$VDI" check "$T/dup.vdi"

# Corruption: the header's allocated count is wrong.
cp "$T/clean.vdi" "$T/count.vdi"
poke "$T/count.vdi" allocated 7
exits "wrong allocated count" 2 "$VDI" check "$T/count.vdi"

# Leak: a data block no entry uses (entry freed, count lowered to match).
cp "$T/clean.vdi" "$T/leak.vdi"
poke "$T/leak.vdi" 3 0xFFFFFFFF
poke "$T/leak.vdi" allocated 2
exits "leaked block" 3 "$VDI" check "$T/leak.vdi"
grep -q 'leaked' "$T/last.out"
_result $? "human output reports the leak"
exits "leaked block, JSON" 3 "$VDI" check --output=json "$T/leak.vdi"
is "JSON: one leak" "$(json_get "$T/last.out" 'j["leaks"]')" 1
is "JSON: no corruption" "$(json_get "$T/last.out" 'j["corruptions"]')" 0

# Cannot check.
exits "missing file" 1 "$VDI" check "$T/nope.vdi"
is "one line of error" "$(err_lines)" 1
head -c 1M /dev/zero >"$T/zero.raw"
exits "not a VDI file" 1 "$VDI" check "$T/zero.raw"
is "one line of error" "$(err_lines)" 1

done_testing
