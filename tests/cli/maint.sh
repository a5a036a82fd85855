#!/bin/bash
# vdi compact, resize, discard and zero: the images they leave are checked
# with QEMU (qemu-img check, compare, map, info; qemu-io read -P) against
# raw copies made before, changed the same way with ordinary tools.
. "$(dirname "$0")/lib.sh"
need_qemu
need_python

M=1048576

# fails DESCRIPTION PATTERN COMMAND...: exit 1, one "vdi: " line on stderr
# that mentions PATTERN, nothing on stdout.
fails() {
	local desc=$1 pat=$2
	shift 2
	exits "$desc" 1 "$@"
	is "$desc: one line on stderr" "$(err_lines)" 1
	grep -q -- "^vdi: .*$pat" "$T/last.err"
	_result $? "$desc: the message mentions '$pat'"
	is "$desc: nothing on stdout" "$(cat "$T/last.out")" ""
}

# Bytes the file takes on disk, as du counts them.
allocated() { echo $(($(stat -c %b "$1") * 512)); }

qemu_size() {
	"$QEMU_IMG" info --output=json "$1" >"$T/qi.json"
	json_get "$T/qi.json" 'j["virtual-size"]'
}

# A header field of `vdi info --output=json`.
vdi_field() {
	"$VDI" info --output=json "$1" >"$T/vi.json"
	json_get "$T/vi.json" "j['format-specific']['data']['$2']"
}

# qemu-io: run the given -c commands; fails if any read finds other bytes.
qio() {
	local f=$1 out
	shift
	out=$("$QEMU_IO" -f vdi "$@" "$f" 2>&1) || { echo "$out"; return 1; }
	! grep -qi 'fail\|error' <<<"$out" || { echo "$out"; return 1; }
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---------------------------------------------------------------- help

ok "vdi --help" "$VDI" --help
cp "$T/last.out" "$T/help.out"
for cmd in compact resize discard zero; do
	grep -q "^  $cmd " "$T/help.out"
	_result $? "vdi --help lists $cmd"
done
for cmd in compact resize discard zero; do
	ok "vdi $cmd --help" "$VDI" $cmd --help
	grep -q "^Usage: vdi $cmd " "$T/last.out"
	_result $? "vdi $cmd --help prints its usage"
done

# ------------------------------------------------------------- compact

# 16 blocks of 1 MiB.  Physical slots in the order QEMU writes them:
# blocks 0-3 (0x11) in slots 0-3, blocks 4-5 all zeros in slots 4-5,
# blocks 8-10 (0x22) in slots 6-8, block 14 (0x33) in slot 9.
"$VDI" create -q "$T/c.vdi" 16M
qio "$T/c.vdi" -c 'write -P 0x11 0 4M' -c 'write -P 0 4M 2M' \
	-c 'write -P 0x22 8M 3M' -c 'write -P 0x33 14M 1M'
_result $? "qemu-io fills the image to compact"
# Blocks 1 and 2 discarded: zero entries; blocks 14 and 10 (slots 9, 8)
# move into their slots and the file is cut.
ok "discard blocks 1-2 before compacting" "$VDI" discard -q "$T/c.vdi" 1M 2M
"$QEMU_IMG" convert -f vdi -O raw "$T/c.vdi" "$T/c.raw"
size_before=$(stat -c %s "$T/c.vdi")
alloc_before=$(allocated "$T/c.vdi")
is "file before compacting: data area + 8 slots" "$size_before" $((10 * M))

ok "compact -p --output=json" "$VDI" compact -p --output=json "$T/c.vdi"
cp "$T/last.out" "$T/c.json"
grep -q '100.0%' "$T/last.err"
_result $? "-p draws the progress bar to 100% on stderr"
size_after=$(stat -c %s "$T/c.vdi")
# Six blocks stay (0, 3, 8, 9, 10, 14): the file ends after six slots.
is "file after compacting: data area + 6 slots" "$size_after" $((8 * M))
[ "$(allocated "$T/c.vdi")" -lt "$alloc_before" ]
_result $? "space used on disk went down ($alloc_before -> $(allocated "$T/c.vdi"))"
ok "qemu-img compare with the raw copy made before" \
	"$QEMU_IMG" compare -f vdi -F raw "$T/c.vdi" "$T/c.raw"
ok "qemu-img check after compact" "$QEMU_IMG" check "$T/c.vdi"
is "JSON filename" "$(json_get "$T/c.json" 'j["filename"]')" "$T/c.vdi"
is "JSON file-size-before" "$(json_get "$T/c.json" 'j["file-size-before"]')" "$size_before"
is "JSON file-size-after" "$(json_get "$T/c.json" 'j["file-size-after"]')" "$size_after"
is "JSON actual-size-before" "$(json_get "$T/c.json" 'j["actual-size-before"]')" "$alloc_before"
is "JSON actual-size-after" "$(json_get "$T/c.json" 'j["actual-size-after"]')" "$(allocated "$T/c.vdi")"
is "JSON zero-blocks: blocks 4 and 5" "$(json_get "$T/c.json" 'j["zero-blocks"]')" 2
# Slots 6-7 are the used ones past the first six: two moves, no more.
is "JSON blocks-moved: the 2 blocks past slot 5" "$(json_get "$T/c.json" 'j["blocks-moved"]')" 2
is "blocks mapped after compact" "$(vdi_field "$T/c.vdi" blocks-mapped)" 6
ok "qemu-io reads the data where it was" qio "$T/c.vdi" \
	-c 'read -P 0x11 0 1M' -c 'read -P 0 1M 2M' -c 'read -P 0x11 3M 1M' \
	-c 'read -P 0 4M 4M' -c 'read -P 0x22 8M 3M' -c 'read -P 0 11M 3M' \
	-c 'read -P 0x33 14M 1M' -c 'read -P 0 15M 1M'

ok "compact again (human output)" "$VDI" compact "$T/c.vdi"
head -1 "$T/last.out" | grep -qx 'Image compacted.'
_result $? "human output starts 'Image compacted.'"
grep -qx 'Zero blocks found: 0' "$T/last.out" && grep -qx 'Blocks moved: 0' "$T/last.out"
_result $? "a compact image has nothing left to do"
grep -q "^File size: 8 MiB -> 8 MiB (8388608 -> 8388608 bytes)$" "$T/last.out"
_result $? "human output gives the file size before and after"
ok "compact -q" "$VDI" compact -q "$T/c.vdi"
is "compact -q prints nothing" "$(cat "$T/last.out")$(cat "$T/last.err")" ""

"$VDI" create -q -o static=on "$T/st.vdi" 4M
fails "compact of a static image" "static" "$VDI" compact "$T/st.vdi"
fails "compact of a missing file" "nope.vdi" "$VDI" compact "$T/nope.vdi"
fails "compact with no file" "expected FILE" "$VDI" compact
fails "compact --output=xml" "xml" "$VDI" compact --output=xml "$T/c.vdi"

# ------------------------------------------------------------- resize

# Grow a vdi-created image in place: the 1 MiB block map has room.
"$VDI" create -q "$T/g.vdi" 16M
qio "$T/g.vdi" -c 'write -P 0x41 0 3M' -c 'write -P 0x42 10M 1M'
"$QEMU_IMG" convert -f vdi -O raw "$T/g.vdi" "$T/g.raw"
bmap=$(vdi_field "$T/g.vdi" offset-bmap)
ok "resize vdi image to 48M" "$VDI" resize "$T/g.vdi" 48M
is "resize prints 'Image resized.'" "$(cat "$T/last.out")" "Image resized."
is "qemu-img: new virtual size" "$(qemu_size "$T/g.vdi")" $((48 * M))
truncate -s 48M "$T/g.raw"
ok "qemu-img compare with the raw grown by truncate" \
	"$QEMU_IMG" compare -f vdi -F raw "$T/g.vdi" "$T/g.raw"
ok "qemu-img check after growing" "$QEMU_IMG" check "$T/g.vdi"
is "block map stayed" "$(vdi_field "$T/g.vdi" offset-bmap)" "$bmap"

# Relative sizes.
ok "resize +16M" "$VDI" resize -q "$T/g.vdi" +16M
is "resize -q prints nothing" "$(cat "$T/last.out")" ""
is "qemu-img: 64M after +16M" "$(qemu_size "$T/g.vdi")" $((64 * M))
ok "resize FILE -8M --shrink (option after the size)" \
	"$VDI" resize "$T/g.vdi" -8M --shrink
is "qemu-img: 56M after -8M" "$(qemu_size "$T/g.vdi")" $((56 * M))
ok "resize --shrink FILE -0.5M" "$VDI" resize --shrink "$T/g.vdi" -0.5M
is "qemu-img: 55.5M after -0.5M" "$(qemu_size "$T/g.vdi")" $((111 * M / 2))
truncate -s $((111 * M / 2)) "$T/g.raw"
ok "compare after relative resizes" \
	"$QEMU_IMG" compare -f vdi -F raw "$T/g.vdi" "$T/g.raw"
ok "check after relative resizes" "$QEMU_IMG" check "$T/g.vdi"

# Grow past what the block map has room for (1 MiB: 256 GiB of blocks).
ok "resize vdi image to 300G" "$VDI" resize "$T/g.vdi" 300G
is "qemu-img: 300G" "$(qemu_size "$T/g.vdi")" $((300 * 1024 * M))
[ "$(vdi_field "$T/g.vdi" offset-bmap)" != "$bmap" ]
_result $? "the block map moved ($bmap -> $(vdi_field "$T/g.vdi" offset-bmap))"
truncate -s 300G "$T/g.raw"
ok "compare after growing to 300G" \
	"$QEMU_IMG" compare -f vdi -F raw "$T/g.vdi" "$T/g.raw"
ok "check after growing to 300G" "$QEMU_IMG" check "$T/g.vdi"
rm -f "$T/g.raw"

# A qemu-img image: its block map (512 bytes, 128 entries) must move.
"$QEMU_IMG" create -q -f vdi "$T/q.vdi" 64M
qio "$T/q.vdi" -c 'write -P 0x51 0 2M' -c 'write -P 0x52 60M 4M'
"$QEMU_IMG" convert -f vdi -O raw "$T/q.vdi" "$T/q.raw"
qbmap=$(vdi_field "$T/q.vdi" offset-bmap)
qdata=$(vdi_field "$T/q.vdi" offset-data)
ok "resize -p qemu-img image to 1G" "$VDI" resize -p "$T/q.vdi" 1G
# Block 0 is in the slot the 4 KiB map takes: one block moved, then the
# rest (map, header, cut): the bar is at 0, 50 and 100%.
is "resize -p: the bar in steps, to 100% on stderr" \
	"$(tr '\r' '\n' <"$T/last.err" | grep -o '[0-9.]*%$' | tr '\n' ' ')" "0.0% 50.0% 100.0% "
is "resize -p: stdout as without -p" "$(cat "$T/last.out")" "Image resized."
is "qemu-img: 1G" "$(qemu_size "$T/q.vdi")" $((1024 * M))
[ "$(vdi_field "$T/q.vdi" offset-bmap)" != "$qbmap" ] &&
	[ "$(vdi_field "$T/q.vdi" offset-data)" != "$qdata" ]
_result $? "block map and data area moved ($qbmap/$qdata -> $(vdi_field "$T/q.vdi" offset-bmap)/$(vdi_field "$T/q.vdi" offset-data))"
truncate -s 1G "$T/q.raw"
ok "compare the grown qemu-img image" \
	"$QEMU_IMG" compare -f vdi -F raw "$T/q.vdi" "$T/q.raw"
ok "check the grown qemu-img image" "$QEMU_IMG" check "$T/q.vdi"
ok "QEMU writes past the old end and reads everything back" qio "$T/q.vdi" \
	-c 'write -P 0x53 1000M 2M' -c 'read -P 0x51 0 2M' \
	-c 'read -P 0x52 60M 4M' -c 'read -P 0x53 1000M 2M' -c 'read -P 0 64M 4M' \
	-c 'read -P 0 996M 4M' -c 'read -P 0 1002M 22M'
ok "check after QEMU's write" "$QEMU_IMG" check "$T/q.vdi"

# Shrinking.  The image: 8M, data in block 2 only.
"$VDI" create -q "$T/s.vdi" 8M
qio "$T/s.vdi" -c 'write -P 0x61 2M 1M'
"$QEMU_IMG" convert -f vdi -O raw "$T/s.vdi" "$T/s.raw"
sum=$(sha "$T/s.vdi")
fails "shrink without --shrink" "--shrink" "$VDI" resize "$T/s.vdi" 4M
fails "relative shrink without --shrink" "--shrink" "$VDI" resize "$T/s.vdi" -4M
is "refused shrinks leave the image unchanged" "$(sha "$T/s.vdi")" "$sum"
fails "shrink over data" "block 2" "$VDI" resize --shrink "$T/s.vdi" 2.5M
is "the image is unchanged (sha256)" "$(sha "$T/s.vdi")" "$sum"
fails "shrink by more than the disk" "only 8 MiB" \
	"$VDI" resize --shrink "$T/s.vdi" -9M
is "still unchanged" "$(sha "$T/s.vdi")" "$sum"
ok "shrink off the unallocated tail (-p -q)" "$VDI" resize -p -q --shrink "$T/s.vdi" 3M
is "resize -p -q prints nothing" "$(cat "$T/last.out" "$T/last.err")" ""
is "qemu-img: 3M" "$(qemu_size "$T/s.vdi")" $((3 * M))
truncate -s 3M "$T/s.raw"
ok "compare after the shrink" "$QEMU_IMG" compare -f vdi -F raw "$T/s.vdi" "$T/s.raw"
ok "check after the shrink" "$QEMU_IMG" check "$T/s.vdi"
is "blocks after the shrink" "$(vdi_field "$T/s.vdi" blocks)" 3

fails "resize: bad size" "12Q" "$VDI" resize "$T/s.vdi" 12Q
fails "resize: bad relative size" "size '+x'" "$VDI" resize "$T/s.vdi" +x
fails "resize: missing size" "expected FILE and SIZE" "$VDI" resize "$T/s.vdi"
fails "resize: too many arguments" "too many" "$VDI" resize "$T/s.vdi" 1G 2G
fails "resize: missing file" "nope.vdi" "$VDI" resize "$T/nope.vdi" 1G
fails "resize: unknown option" "--bogus" "$VDI" resize --bogus "$T/s.vdi" 1G
fails "resize: too large for VDI" "blocks" "$VDI" resize "$T/s.vdi" 1E

# ---------------------------------------------------- discard and zero

# 8 blocks: 0x71 everywhere.
"$VDI" create -q "$T/d.vdi" 8M
qio "$T/d.vdi" -c 'write -P 0x71 0 8M'
"$QEMU_IMG" convert -f vdi -O raw "$T/d.vdi" "$T/d.raw"
alloc_before=$(allocated "$T/d.vdi")
ok "discard blocks 2-4" "$VDI" discard "$T/d.vdi" 2M 3M
grep -q '3 blocks freed' "$T/last.out"
_result $? "discard reports 3 blocks freed"
"$QEMU_IMG" map --output=json "$T/d.vdi" >"$T/d.map"
is "qemu-img map: 2M-5M is zero, not data" "$(json_get "$T/d.map" \
	'all(e["zero"] and not e["data"] for e in j if e["start"] < 5*2**20 and e["start"] + e["length"] > 2*2**20)')" True
is "qemu-img map: the rest is data" "$(json_get "$T/d.map" \
	'sum(e["length"] for e in j if e["data"] and not e["zero"])')" $((5 * M))
dd if=/dev/zero of="$T/d.raw" bs=1M seek=2 count=3 conv=notrunc status=none
ok "compare with the raw copy zeroed at 2M-5M" \
	"$QEMU_IMG" compare -f vdi -F raw "$T/d.vdi" "$T/d.raw"
ok "check after discard" "$QEMU_IMG" check "$T/d.vdi"
# (The file system may spend a block on the longer extent list.)
[ "$(allocated "$T/d.vdi")" -le $((alloc_before - 3 * M + 65536)) ]
_result $? "3 MiB of disk space given back ($alloc_before -> $(allocated "$T/d.vdi"))"

# Zero a range that starts and ends inside blocks, not sector-aligned.
ok "zero 5000 bytes at 6M+1000" "$VDI" zero "$T/d.vdi" $((6 * M + 1000)) 5000
ok "qemu-io reads zeros there and data around" qio "$T/d.vdi" \
	-c "read -P 0 $((6 * M + 1000)) 5000" \
	-c "read -P 0x71 $((6 * M)) 1000" \
	-c "read -P 0x71 $((6 * M + 6000)) $((2 * M - 6000))" \
	-c "read -P 0x71 0 2M" -c "read -P 0 2M 3M"
ok "zero 1.5M across blocks 0 and 1" "$VDI" zero -q "$T/d.vdi" 512K 1.5M
is "zero -q prints nothing" "$(cat "$T/last.out")" ""
ok "qemu-io reads the zeros, data before them" qio "$T/d.vdi" \
	-c "read -P 0x71 0 512K" -c "read -P 0 512K 1.5M"
"$QEMU_IMG" map --output=json "$T/d.vdi" >"$T/d.map"
is "block 1, zeroed whole, is no longer data" "$(json_get "$T/d.map" \
	'[e["data"] for e in j if e["start"] <= 2**20 < e["start"] + e["length"]][0]')" False
ok "check after zero" "$QEMU_IMG" check "$T/d.vdi"

# --all, and an empty range at the very end.
ok "discard --all" "$VDI" discard --all "$T/d.vdi"
"$QEMU_IMG" map --output=json "$T/d.vdi" >"$T/d.map"
is "qemu-img map: no data left" "$(json_get "$T/d.map" \
	'sum(e["length"] for e in j if e["data"])')" 0
ok "qemu-io reads zeros everywhere" qio "$T/d.vdi" -c 'read -P 0 0 8M'
ok "an empty range at the end is fine" "$VDI" zero "$T/d.vdi" 8M 0
ok "check after --all" "$QEMU_IMG" check "$T/d.vdi"

for cmd in discard zero; do
	fails "$cmd: offset past the end" "past the end" "$VDI" $cmd "$T/d.vdi" 9M 0
	fails "$cmd: range past the end" "past the end" "$VDI" $cmd "$T/d.vdi" 7M 2M
	fails "$cmd: missing LENGTH" "expected FILE, OFFSET and LENGTH" \
		"$VDI" $cmd "$T/d.vdi" 1M
	fails "$cmd: missing operands" "expected" "$VDI" $cmd
	fails "$cmd: bad offset" "offset 'x'" "$VDI" $cmd "$T/d.vdi" x 1M
	fails "$cmd: bad length" "length '1Q'" "$VDI" $cmd "$T/d.vdi" 0 1Q
	fails "$cmd: --all with a range" "--all" "$VDI" $cmd --all "$T/d.vdi" 0 1M
	fails "$cmd: missing file" "nope.vdi" "$VDI" $cmd "$T/nope.vdi" 0 1M
	fails "$cmd: unknown option" "-z" "$VDI" $cmd -z "$T/d.vdi" 0 1M
done

# While QEMU has the image open for writing, every one of them is refused.
"$VDI" create -q "$T/busy.vdi" 4M
"$QEMU_IO" -f vdi -c 'sleep 20000' "$T/busy.vdi" >/dev/null 2>&1 &
qemu_pid=$!
# Wait until QEMU holds its write lock (byte 101 in QEMU's scheme).  The
# probe only asks (F_OFD_GETLK): opening the image to find out would race
# with QEMU's own open and could make QEMU give up.
for _ in $(seq 100); do
	python3 - "$T/busy.vdi" <<'PY' && break
import fcntl, os, struct, sys
F_OFD_GETLK = 36
fd = os.open(sys.argv[1], os.O_RDONLY)
lk = fcntl.fcntl(fd, F_OFD_GETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 101, 1, 0))
sys.exit(0 if struct.unpack("hhqqi", lk)[0] != fcntl.F_UNLCK else 1)
PY
	sleep 0.1
done
sum=$(sha "$T/busy.vdi")
fails "compact while QEMU has the image" "in use" "$VDI" compact "$T/busy.vdi"
fails "resize while QEMU has the image" "in use" "$VDI" resize "$T/busy.vdi" 8M
fails "discard while QEMU has the image" "in use" "$VDI" discard --all "$T/busy.vdi"
fails "zero while QEMU has the image" "in use" "$VDI" zero "$T/busy.vdi" 0 1M
is "the image QEMU holds is unchanged" "$(sha "$T/busy.vdi")" "$sum"
kill "$qemu_pid" 2>/dev/null
wait "$qemu_pid" 2>/dev/null

done_testing
