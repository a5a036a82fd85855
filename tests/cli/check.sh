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
grep -Eq '(errors were|error was) found on the image' "$T/last.out"
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

# Repair (-r): status of the repaired image, changes printed, QEMU agrees.
cp "$T/clean.vdi" "$T/rcount.vdi"
poke "$T/rcount.vdi" allocated 7
exits "-r leaks fixes the header count" 0 "$VDI" check -r leaks "$T/rcount.vdi"
grep -q "repaired: the header's allocated-block count was 7, the block map has 3" "$T/last.out"
_result $? "-r leaks prints what it changed"
grep -q '^Double checking the fixed image now...$' "$T/last.out"
_result $? "-r checks again after repairing"
exits "qemu-img check agrees after -r leaks" 0 "$QEMU_IMG" check "$T/rcount.vdi"
cp "$T/range.vdi" "$T/rrange.vdi"
exits "-r leaks leaves corruption: exit 2" 2 "$VDI" check -r leaks "$T/rrange.vdi"
exits "-r all repairs it" 0 "$VDI" check -r all "$T/rrange.vdi"
grep -q 'repaired: block 5 mapped to physical block 100, past the end of the file' "$T/last.out"
_result $? "-r all names the entry it freed"
exits "qemu-img check agrees after -r all" 0 "$QEMU_IMG" check "$T/rrange.vdi"
cp "$T/dup.vdi" "$T/rdup.vdi"
exits "-r all, JSON" 0 "$VDI" check -r all --output=json "$T/rdup.vdi"
is "JSON: corruptions-fixed (entry and count)" "$(json_get "$T/last.out" 'j["corruptions-fixed"]')" 2
is "JSON: no corruption left" "$(json_get "$T/last.out" 'j["corruptions"]')" 0
exits "qemu-img check agrees after the duplicate is freed" 0 "$QEMU_IMG" check "$T/rdup.vdi"
"$QEMU_IO" -f vdi -c 'read -P 1 0 1M' -c 'read -P 0 6M 1M' -c 'read -P 2 2M 2M' "$T/rdup.vdi" >"$T/io.out"
_result $? "reachable data intact after the repair, the freed block reads zeros"
cp "$T/clean.vdi" "$T/rleak.vdi"
head -c 1048576 /dev/urandom >>"$T/rleak.vdi"
exits "leak at the end: exit 3" 3 "$VDI" check "$T/rleak.vdi"
exits "-r leaks cuts it off" 0 "$VDI" check -r leaks "$T/rleak.vdi"
is "file back to its size" "$(stat -c %s "$T/rleak.vdi")" "$(stat -c %s "$T/clean.vdi")"
exits "-r with a bad argument" 1 "$VDI" check -r some "$T/clean.vdi"

# -r -p: the repair's progress on stderr, in steps (the check, each block
# copied, the rest), reports on stdout.  Block 0's entry freed and the
# count lowered: slot 0 is leaked below blocks 2-3 (slots 1-2), so the
# block of slot 2 moves down into it.
bar_steps() { tr '\r' '\n' <"$T/last.err" | grep -o '[0-9.]*%$' | tr '\n' ' '; }
cp "$T/clean.vdi" "$T/rmid.vdi"
poke "$T/rmid.vdi" 0 0xFFFFFFFF
poke "$T/rmid.vdi" allocated 2
exits "-r leaks -p, a block to move" 0 "$VDI" check -r leaks -p "$T/rmid.vdi"
is "-p: the bar in steps of a third, to 100%" "$(bar_steps)" "0.0% 33.3% 66.6% 100.0% "
grep -q 'repaired: block 3 moved from physical block 2 into unused physical block 0' "$T/last.out"
_result $? "-p: the repairs still reported on stdout"
grep -q '100\.0%' "$T/last.out"
[ $? = 1 ]
_result $? "-p: no bar on stdout"
exits "qemu-img check agrees after -r leaks -p" 0 "$QEMU_IMG" check "$T/rmid.vdi"
"$QEMU_IO" -f vdi -c 'read -P 0 0 2M' -c 'read -P 2 2M 2M' -c 'read -P 0 4M 4M' "$T/rmid.vdi" >"$T/io.out"
_result $? "-r leaks -p: block 0 reads zeros, blocks 2-3 their data"
is "-r leaks -p: the file ends after the third slot" "$(stat -c %s "$T/rmid.vdi")" \
	$(($(stat -c %s "$T/clean.vdi") - 1048576))
exits "-r all -p on a clean image" 0 "$VDI" check -r all -p "$T/rmid.vdi"
is "-p on a clean image: nothing to copy" "$(bar_steps)" "0.0% 50.0% 100.0% "
exits "-r all -p -q" 0 "$VDI" check -r all -p -q "$T/rmid.vdi"
is "-q silences -p" "$(cat "$T/last.out" "$T/last.err")" ""
exits "-p without -r draws nothing" 0 "$VDI" check -p "$T/rmid.vdi"
is "no bar without -r" "$(cat "$T/last.err")" ""

# Cannot check.
exits "missing file" 1 "$VDI" check "$T/nope.vdi"
is "one line of error" "$(err_lines)" 1
head -c 1M /dev/zero >"$T/zero.raw"
exits "not a VDI file" 1 "$VDI" check "$T/zero.raw"
is "one line of error" "$(err_lines)" 1

done_testing
