#!/bin/bash
# What a qemu-img or VBoxManage user reaches for (issue 15): -b on every
# command that opens a chain, commit -b BASE, create -b with a SIZE, right
# plurals, escaped descriptions, -p and --output=json everywhere, and the
# man page's synopses matching --help.
. "$(dirname "$0")/lib.sh"
need_qemu
need_python

# A chain whose parents live in another folder: base <- mid <- top.
mkdir "$T/p" "$T/c"
"$VDI" create -q "$T/p/base.vdi" 8M
"$QEMU_IO" -f vdi -c 'write -P 0x11 0 8M' "$T/p/base.vdi" >/dev/null
"$VDI" create -q -b "$T/p/base.vdi" "$T/p/mid.vdi"
"$VDI" create -q -b "$T/p/mid.vdi" "$T/c/top.vdi"

# create -b with a SIZE: the parent's is accepted, another refused.
ok "create -b with the parent's size" "$VDI" create -q -b "$T/p/base.vdi" "$T/c/same.vdi" 8M
exits "create -b with another size" 1 "$VDI" create -b "$T/p/base.vdi" "$T/c/other.vdi" 9M
grep -q "^vdi: create: a differencing image has its parent's size (8388608 bytes); leave SIZE out$" "$T/last.err"
_result $? "the message says to leave SIZE out"
is "nothing printed or made" "$(cat "$T/last.out")$(ls "$T/c/other.vdi" 2>/dev/null)" ""

exits "one parent named twice" 1 "$VDI" info -b "$T/p/base.vdi" -b "$T/p/base.vdi" "$T/c/same.vdi"
grep -q "has 1 parent, but 2 were named" "$T/last.err"
_result $? "'has 1 parent, but 2 were named'"

# The library's "name it explicitly" says how.
exits "compact without -b, parent elsewhere" 1 "$VDI" compact "$T/c/top.vdi"
grep -q "name it explicitly with -b PARENT$" "$T/last.err"
_result $? "the missing parent's message names -b"
ok "compact -b -b" "$VDI" compact -q -b "$T/p/mid.vdi" -b "$T/p/base.vdi" "$T/c/top.vdi"
"$QEMU_IO" -f vdi -c 'write -P 0x22 1M 1M' "$T/c/top.vdi" >/dev/null 2>&1 # qemu finds no parent: fails
ok "zero -b -b" "$VDI" zero -q -b "$T/p/mid.vdi" -b "$T/p/base.vdi" "$T/c/top.vdi" 0 1M
ok "check -r leaks -b -b" "$VDI" check -r leaks -b "$T/p/mid.vdi" -b "$T/p/base.vdi" "$T/c/top.vdi"
exits "check -r all -b with a wrong parent" 1 "$VDI" check -r all -b "$T/p/base.vdi" "$T/c/top.vdi"
exits "resize -b of a differencing image" 1 "$VDI" resize -b "$T/p/mid.vdi" "$T/c/top.vdi" 16M
grep -q "^vdi: resize: .*top.vdi is a differencing image" "$T/last.err"
_result $? "resize says why, parent elsewhere or not"

# commit -b BASE: the parent works; a BASE further down is refused with
# the commands to run.
mkdir "$T/n"
"$VDI" create -q "$T/n/b.vdi" 4M
"$VDI" create -q -b "$T/n/b.vdi" "$T/n/m.vdi"
"$VDI" create -q -b "$T/n/m.vdi" "$T/n/t.vdi"
cp "$T/n/b.vdi" "$T/b.before"
exits "commit -b BASE two levels down" 1 "$VDI" commit -b "$T/n/b.vdi" "$T/n/t.vdi"
grep -q "^vdi: commit: .*b.vdi is 2 levels below .*t.vdi and a commit merges one level; run 'vdi commit .*t.vdi', then 'vdi commit .*m.vdi'$" "$T/last.err"
_result $? "the refusal names the commands to run"
cmp -s "$T/n/b.vdi" "$T/b.before"
_result $? "the refused commit changed nothing"
ok "commit -b PARENT" "$VDI" commit -q -b "$T/p/mid.vdi" "$T/c/top.vdi"
ok "commit -b BASE of the middle" "$VDI" commit -q -b "$T/p/base.vdi" "$T/p/mid.vdi"
"$QEMU_IMG" convert -f vdi -O raw "$T/p/base.vdi" "$T/base.raw"
"$QEMU_IO" -f raw -c 'read -P 0 0 1M' -c 'read -P 0x11 1M 7M' "$T/base.raw" | grep -q '^read'
_result $? "base.vdi now reads as top.vdi did"

# Plurals: one leak is "1 leaked block".
"$VDI" create -q "$T/leak.vdi" 4M
"$QEMU_IO" -f vdi -c 'write -P 1 0 1M' "$T/leak.vdi" >/dev/null
python3 - "$T/leak.vdi" <<'PY'
import struct, sys
f = open(sys.argv[1], "r+b")
f.seek(0x154); bmap = struct.unpack("<I", f.read(4))[0]
f.seek(bmap); f.write(struct.pack("<I", 0xFFFFFFFF))   # entry 0 freed: its block leaks
f.seek(0x184); f.write(struct.pack("<I", 0))           # as the header counts
PY
exits "one leaked block" 3 "$VDI" check "$T/leak.vdi"
grep -q '^1 leaked block (1048576 bytes) was found on the image.$' "$T/last.out"
_result $? "check says '1 leaked block ... was found'"
ok "repair the leak" "$VDI" check -r leaks "$T/leak.vdi"
grep -q '^    1 leaked block$' "$T/last.out"
_result $? "the repair says '1 leaked block'"

# info escapes what a description holds.
"$VDI" create -q -o $'description=two\nlines\\and\ttab' "$T/d.vdi" 1M
ok "info of a multi-line description" "$VDI" info "$T/d.vdi"
is "the description is one line, escaped" "$(grep '^    description:' "$T/last.out")" \
	'    description: two\nlines\\and\ttab'

# --output=json: one JSON document on stdout, saying what was done.
ok "create --output=json" "$VDI" create --output=json -o static "$T/j.vdi" 3M
is "create: the virtual size" "$(json_get "$T/last.out" '" ".join(map(str, (j["virtual-size"], j["static"], j["seconds"] >= 0)))')" "3145728 True True"
ok "convert --output=json" "$VDI" convert --output=json -O raw "$T/j.vdi" "$T/j.raw"
is "convert: what, from what, how big" \
	"$(json_get "$T/last.out" '" ".join(map(str, (j["format"], j["source-format"], j["virtual-size"])))')" "raw vdi 3145728"
ok "resize --output=json" "$VDI" resize --output=json "$T/j.vdi" +1M
is "resize: old and new size" "$(json_get "$T/last.out" '" ".join(map(str, (j["old-size"], j["virtual-size"])))')" "3145728 4194304"
"$VDI" create -q "$T/z.vdi" 600M
"$QEMU_IO" -f vdi -c 'write -P 7 0 3M' "$T/z.vdi" >/dev/null
ok "discard --output=json -p" "$VDI" discard --output=json -p "$T/z.vdi" 1M 2M
is "discard: the blocks before and after" \
	"$(json_get "$T/last.out" '" ".join(map(str, (j["operation"], j["blocks-mapped-before"], j["blocks-mapped-after"])))')" "discard 3 1"
grep -q '100.0%' "$T/last.err"
_result $? "discard -p draws the bar to 100%"
ok "zero --all -p --output=json" "$VDI" zero --all -p --output=json "$T/z.vdi"
is "zero --all: the whole disk, nothing left" \
	"$(json_get "$T/last.out" '" ".join(map(str, (j["length"], j["blocks-mapped-after"])))')" "629145600 0"
is "zero -p: the bar moves in steps" "$(tr '\r' '\n' <"$T/last.err" | grep -c '%$')" 4
"$VDI" create -q -b "$T/z.vdi" "$T/zs.vdi"
ok "commit --output=json" "$VDI" commit --output=json -p "$T/zs.vdi"
is "commit: done" "$(json_get "$T/last.out" 'j["committed"]')" True

done_testing
