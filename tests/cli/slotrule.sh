#!/bin/bash
# The rule QEMU and VirtualBox allocate by: slots 0 .. blocks allocated - 1
# are exactly the slots in use, and the next new block goes to slot
# `blocks allocated`.  After each operation of the vdi tool (discard, zero,
# compact, resize, repair, and a kill in the middle of a discard), QEMU
# writes new blocks into the image; qemu-img check must then be clean and
# every block must still read what it held.  Also: check reports maps that
# break the rule, -r repairs them, writes to blocks sharing a slot are
# refused, a data block cut short is reported and repaired.
. "$(dirname "$0")/lib.sh"
need_qemu
need_python

M=1048576


# An image of 16 blocks; block i (0..7) holds the byte i+1, written by QEMU
# (slots 0..7 in order).
fresh() {
	rm -f "$1"
	"$VDI" create -q "$1" 16M || return 1
	local i args=()
	for i in 0 1 2 3 4 5 6 7; do
		args+=(-c "write -P $((i + 1)) ${i}M 1M")
	done
	"$QEMU_IO" -f vdi "${args[@]}" "$1" >/dev/null
}

# qemu_writes FILE BLOCK...: QEMU allocates the blocks, with the byte 0xB0+i.
qemu_writes() {
	local f=$1 b args=()
	shift
	for b in "$@"; do
		args+=(-c "write -P $((0xB0 + b)) ${b}M 1M")
	done
	"$QEMU_IO" -f vdi "${args[@]}" "$f" >/dev/null
}

# expect FILE SPEC...: each SPEC is BLOCK=BYTE; qemu-io reads the block and
# checks the pattern.  Passes when all match.
expect() {
	local f=$1 s args=()
	shift
	for s in "$@"; do
		args+=(-c "read -P $((${s#*=})) $((${s%%=*}))M 1M")
	done
	! "$QEMU_IO" -f vdi "${args[@]}" "$f" 2>&1 | grep -q -e 'verification failed' -e 'error'
}

# after_op NAME FILE DISCARDED...: QEMU writes blocks 12..14, then
# qemu-img check and vdi check are clean and every block reads right.
after_op() {
	local name=$1 f=$2 i spec=()
	shift 2
	ok "$name: qemu-io allocates three blocks" qemu_writes "$f" 12 13 14
	ok "$name: qemu-img check is clean" "$QEMU_IMG" check "$f"
	exits "$name: vdi check is clean" 0 "$VDI" check "$f"
	for i in 0 1 2 3 4 5 6 7; do
		if [[ " $* " == *" $i "* ]]; then spec+=("$i=0"); else spec+=("$i=$((i + 1))"); fi
	done
	spec+=(12=0xBC 13=0xBD 14=0xBE 8=0 15=0)
	ok "$name: every block reads what it should" expect "$f" "${spec[@]}"
}

# setmap FILE [count=N] [VB=SLOT|free]...: edit the header's count and map.
setmap() {
	python3 - "$@" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
hdr = f.read(512)
bmap = struct.unpack_from("<I", hdr, 340)[0]
for a in sys.argv[2:]:
    k, v = a.split("=")
    if k == "count":
        f.seek(388); f.write(struct.pack("<I", int(v)))
    else:
        f.seek(bmap + 4 * int(k))
        f.write(struct.pack("<I", 0xFFFFFFFF if v == "free" else int(v)))
PY
}

I=$T/a.vdi

# The issue's reproduction: discard block 2, QEMU writes block 7's slot...
fresh "$I"
ok "discard of one block" "$VDI" discard "$I" 2M 1M
after_op "discard" "$I" 2

fresh "$I"
ok "discard of blocks 1, 3 and 5" sh -c "'$VDI' discard '$I' 1M 1M && '$VDI' discard '$I' 3M 1M && '$VDI' discard '$I' 5M 1M"
after_op "discard of three" "$I" 1 3 5

fresh "$I"
ok "discard --all" "$VDI" discard --all "$I"
after_op "discard --all" "$I" 0 1 2 3 4 5 6 7

fresh "$I"
ok "zero of whole blocks 2 and 3" "$VDI" zero "$I" 2M 2M
after_op "zero" "$I" 2 3

fresh "$I"
ok "discard then compact" sh -c "'$VDI' discard '$I' 1M 2M && '$VDI' compact -q '$I'"
is "compact gave both slots back (file size)" "$(stat -c %s "$I")" $((2 * M + 6 * M))
after_op "compact" "$I" 1 2

fresh "$I"
ok "discard then resize to 32M" sh -c "'$VDI' discard '$I' 4M 1M && '$VDI' resize -q '$I' 32M"
after_op "resize" "$I" 4

# A differencing image committed into its parent: its discard reaches the
# parent as a zero block.
fresh "$I"
rm -f "$T/c.vdi"
ok "snapshot, discard in it, commit" sh -c "'$VDI' create -q -b '$I' '$T/c.vdi' && '$VDI' discard '$T/c.vdi' 6M 1M && '$VDI' commit -q '$T/c.vdi'"
after_op "commit" "$I" 6

# ---- maps that break the rule: check reports them, repair fixes them ----

# What today's libvdi left after a discard: block 2 freed, the count
# lowered to 7 while slot 7 is still in use.
fresh "$I"
setmap "$I" count=7 2=free
exits "an entry at the count: vdi check says corrupt" 2 "$VDI" check "$I"
grep -q "not below the header's allocated-block count" "$T/last.out"
_result $? "the report names the entry at the count"
exits "vdi check -r all repairs it" 0 "$VDI" check -r all "$I"
exits "a check right after exits 0" 0 "$VDI" check "$I"
is "the file holds exactly the 7 blocks in use" "$(stat -c %s "$I")" $((2 * M + 7 * M))
after_op "repaired map" "$I" 2

# Unused slots in the middle (blocks 1 and 4 freed, count still 8).
fresh "$I"
setmap "$I" 1=free 4=free
exits "unused slots below the count: vdi check says corrupt" 2 "$VDI" check "$I"
exits "vdi check -r leaks reclaims them" 0 "$VDI" check -r leaks "$I"
exits "a check right after exits 0" 0 "$VDI" check "$I"
is "blocks moved in, the file cut" "$(stat -c %s "$I")" $((2 * M + 6 * M))
after_op "holes reclaimed" "$I" 1 4

# Two blocks on one slot: writes to either are refused, reads work.
fresh "$I"
setmap "$I" 1=0
sum=$(tail -c +$((2 * M + 1)) "$I" | sha256sum)
exits "a write to a block sharing its slot is refused" 1 "$VDI" zero "$I" $((M + 4096)) 4096
grep -q "check -r all" "$T/last.err"
_result $? "the message names 'vdi check -r all'"
grep -q "shares physical block" "$T/last.err"
_result $? "the message says the slot is shared"
is "the data area is unchanged" "$(tail -c +$((2 * M + 1)) "$I" | sha256sum)" "$sum"
ok "reads keep working" expect "$I" 0=1 1=1 2=3

# A data block cut short by the end of the file.
fresh "$I"
truncate -s $((2 * M + 7 * M + 4096)) "$I"
exits "a short last block: vdi check says corrupt" 2 "$VDI" check "$I"
grep -q "cut short" "$T/last.out"
_result $? "the report names the short block"
exits "vdi check -r all repairs it" 0 "$VDI" check -r all "$I"
is "the file is extended" "$(stat -c %s "$I")" $((2 * M + 8 * M))
exits "a check right after exits 0" 0 "$VDI" check "$I"
ok "the missing tail reads as zeros" "$QEMU_IO" -f vdi -c "read -P 8 7M 4096" -c "read -P 0 $((7 * M + 4096)) $((M - 4096))" "$I"

# An image cut inside its block map (1 GiB: 1024 entries, 4 KiB of map).
rm -f "$I"
"$VDI" create -q "$I" 1G
"$QEMU_IO" -f vdi -c "write -P 1 0 2M" "$I" >/dev/null
truncate -s $((M + 2000)) "$I"
exits "a map cut short: vdi check says corrupt" 2 "$VDI" check "$I"
grep -q "block map is cut short by the end of the file" "$T/last.out"
_result $? "the report names the cut map"
exits "vdi check -r all repairs it" 0 "$VDI" check -r all "$I"
is "the file reaches the data area again" "$(stat -c %s "$I")" $((2 * M))
exits "a check right after exits 0" 0 "$VDI" check "$I"
ok "qemu-img check is clean" "$QEMU_IMG" check "$I"
ok "the lost blocks read as zeros" "$QEMU_IO" -f vdi -c "read -P 0 0 4M" "$I"

# Reports that add up: 1000 junk bytes after the last block.
fresh "$I"
head -c 1000 /dev/urandom >>"$I"
exits "junk after the last block: leaks (exit 3)" 3 "$VDI" check "$I"
grep -q "1 leaked block (1000 bytes)" "$T/last.out"
_result $? "the leak is counted in bytes: $(grep leaked "$T/last.out" | tail -1)"
exits "check -r all --output=json" 0 "$VDI" check -r all --output=json "$I"
cp "$T/last.out" "$T/r.json"
is "JSON: found" "$(json_get "$T/r.json" '(j["leaks-found"], j["corruptions-found"], len(j["problems-found"]))')" "(1, 0, 1)"
is "JSON: repaired" "$(json_get "$T/r.json" '(j["leaks-fixed"], len(j["repairs"]), "1000 leaked bytes" in j["repairs"][0])')" "(1, 1, True)"
is "JSON: the re-check" "$(json_get "$T/r.json" '(j["leaks"], j["corruptions"], j["problems"])')" "(0, 0, [])"
exits "check -r all on a clean image" 0 "$VDI" check -r all "$I"
is "... says only what a check says" "$(head -1 "$T/last.out")" "No errors were found on the image."
grep -q -e "inconsistencies" -e "Double checking" "$T/last.out"
_result $((!$?)) "... and nothing about repairs"

# ---- a kill in the middle of a discard ----
# 24 blocks written, then a discard of them all killed at a random
# moment, five times.  Whatever the discard did, QEMU's next writes must not land on
# a block in use: every block reads its byte or zeros.
BIG=$T/big.vdi
bad=0
for round in 1 2 3 4 5; do
	rm -f "$BIG" "$T/big.raw"
	python3 -c "
import sys
with open(sys.argv[1], 'wb') as f:
    for i in range(24): f.write(bytes([i + 1]) * 1048576)
    f.truncate(32 * 1048576)
" "$T/big.raw"
	"$VDI" convert -q -O vdi "$T/big.raw" "$BIG" || { bad=1; break; }
	"$VDI" discard "$BIG" 0 24M >/dev/null 2>&1 &
	pid=$!
	sleep "0.0$((RANDOM % 20))"
	kill -KILL $pid 2>/dev/null
	wait $pid 2>/dev/null
	# The rule itself, before anyone writes: every slot named is below
	# the header's count, and that many slots fit in the file.
	python3 - "$BIG" <<'PY' || { bad=7; break; }
import os, struct, sys
f = open(sys.argv[1], "rb")
h = f.read(512)
bmap, data = struct.unpack_from("<II", h, 340)
bs, = struct.unpack_from("<I", h, 376)
count, = struct.unpack_from("<I", h, 388)
m = struct.unpack_from("<32I", (f.seek(bmap), f.read(128))[1])
used = [e for e in m if e < 0xFFFFFFFE]
if any(e >= count for e in used):
    sys.exit("an entry names a slot at or past the count %d" % count)
if data + count * bs > os.path.getsize(sys.argv[1]):
    sys.exit("%d slots do not fit in the file" % count)
PY
	"$QEMU_IO" -f vdi -c "write -P 0xEE 26M 1M" -c "write -P 0xEF 30M 1M" "$BIG" >/dev/null || { bad=2; break; }
	# Killed between reclaim's map write and its count write, the count
	# still covers slots no entry names: safe (QEMU allocates past it)
	# but QEMU's check calls it "allocated blocks mismatch".  That and
	# nothing else is allowed; a repair must then make both checks clean.
	if ! "$QEMU_IMG" check "$BIG" >"$T/qcheck.out" 2>&1; then
		grep ERROR "$T/qcheck.out" | grep -qv "allocated blocks mismatch" && { bad=3; break; }
		"$VDI" check -q -r all "$BIG" >/dev/null 2>&1
		"$VDI" check "$BIG" >/dev/null 2>&1 || { bad=5; break; }
		"$QEMU_IMG" check "$BIG" >/dev/null 2>&1 || { bad=6; break; }
	fi
	python3 - "$BIG" <<'PY' || { bad=4; break; }
import struct, sys
f = open(sys.argv[1], "rb")
h = f.read(512)
bmap, data = struct.unpack_from("<II", h, 340)
m = struct.unpack_from("<32I", (f.seek(bmap), f.read(128))[1])
for vb, e in enumerate(m):
    if e >= 0xFFFFFFFE:
        continue
    f.seek(data + e * 1048576)
    blk = f.read(1048576)
    want = {26: 0xEE, 30: 0xEF}.get(vb, vb + 1)
    if blk != bytes([want]) * 1048576 and blk != bytes(1048576):
        sys.exit("block %d reads neither %d nor zeros" % (vb, want))
    if vb in (26, 30) and blk[0] != want:
        sys.exit("block %d lost QEMU's write" % vb)
PY
done
is "five kills in a discard: QEMU's writes land on free slots, qemu-img check clean, no block changed" "$bad" 0

done_testing
