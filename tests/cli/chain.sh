#!/bin/bash
# Differencing images (VirtualBox snapshots): vdi create -b, the header it
# writes, reads through the chain (vdi convert), vdi map depths, vdi info
# --backing-chain, a missing, a wrong and a changed parent, and vdi
# commit.  QEMU writes the base image and checks it; it does not open
# differencing images itself (it refuses a non-null link UUID), so the
# child's expected contents are worked out here from the base's raw view.
. "$(dirname "$0")/lib.sh"
need_qemu
need_python

M=1048576

# edit_raw IN OUT OFFSET:LENGTH[:BYTE]...: OUT is IN with each range set
# to BYTE (default 0).
edit_raw() {
	python3 - "$@" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
for r in sys.argv[3:]:
    p = [int(x, 0) for x in r.split(":")]
    off, length, byte = p[0], p[1], p[2] if len(p) > 2 else 0
    data[off:off + length] = bytes([byte]) * length
open(sys.argv[2], "wb").write(data)
PY
}

# raw_of IMAGE OUT [vdi convert options...]: the disk IMAGE reads as.
raw_of() {
	local img=$1 out=$2
	shift 2
	"$VDI" convert -q --force -O raw "$@" "$img" "$out"
}

# blocks MAP.json: one "depth/present/zero/data" word per MiB of the disk.
blocks() {
	python3 - "$1" "$M" <<'PY'
import json, sys
j, bs = json.load(open(sys.argv[1])), int(sys.argv[2])
words = []
for e in j:
    assert e["start"] % bs == 0 and e["length"] % bs == 0, e
    w = "%d/%s/%s/%s" % (e["depth"], "p" if e["present"] else "-",
                         "z" if e["zero"] else "-", "d" if e["data"] else "-")
    words += [w] * (e["length"] // bs)
print(" ".join(words))
PY
}

# map_holds MAP.json RAW FILE-AT-DEPTH-0 FILE-AT-DEPTH-1...: every extent
# of the map says truly what the disk holds: data extents point at the
# expected bytes in the file of their depth, zero and absent ones cover
# zeros, and the extents tile the disk.
map_holds() {
	python3 - "$@" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
raw = open(sys.argv[2], "rb").read()
files = [open(f, "rb") for f in sys.argv[3:]]
pos = 0
for e in j:
    s, n = e["start"], e["length"]
    assert s == pos, ("gap", e)
    want = raw[s:s + n]
    if e["data"] and not e["zero"]:
        f = files[e["depth"]]
        f.seek(e["offset"])
        assert f.read(n) == want, ("data differs", e)
    else:
        assert want == bytes(n), ("not zeros", e)
    pos = s + n
assert pos == len(raw), ("short", pos)
PY
}

uuid_at() { # FILE OFFSET: the UUID stored there (VirtualBox byte order)
	python3 -c 'import sys, uuid; f = open(sys.argv[1], "rb"); f.seek(int(sys.argv[2], 0)); print(uuid.UUID(bytes_le=f.read(16)))' "$1" "$2"
}

# --- The base: a QEMU-made image with data in blocks 0, 1, 3, 5 and 7. ---
"$QEMU_IMG" create -q -f vdi "$T/base.vdi" 8M
"$QEMU_IO" -f vdi \
	-c 'write -P 0x11 0 2M' \
	-c 'write -P 0x22 3M 1M' \
	-c 'write -P 0x33 5M 4k' \
	-c 'write -P 0x44 7340544 1k' \
	"$T/base.vdi" >/dev/null
"$QEMU_IMG" convert -O raw "$T/base.vdi" "$T/base.raw"
raw_of "$T/base.vdi" "$T/b.raw"
cmp -s "$T/base.raw" "$T/b.raw"
_result $? "the base reads the same through vdi and QEMU"
base_sum=$(sha256sum <"$T/base.raw")
"$QEMU_IMG" map --output=json "$T/base.vdi" >"$T/qbase.map"

# --- vdi create -b ---
ok "create -b base.vdi child.vdi" "$VDI" create -b "$T/base.vdi" "$T/child.vdi"
grep -q "^Formatting '$T/child.vdi', fmt=vdi size=8388608 .*backing_file=$T/base.vdi backing_fmt=vdi" "$T/last.out"
_result $? "create -b prints the parent's size and the backing file"
is "child type at 0x4C is 4 (differencing)" \
	"$(od -An -tu4 -j $((0x4C)) -N4 "$T/child.vdi" | tr -d ' ')" 4
is "link UUID (0x1A8) is the parent's creation UUID (0x188)" \
	"$(uuid_at "$T/child.vdi" 0x1A8)" "$(uuid_at "$T/base.vdi" 0x188)"
is "parent UUID (0x1B8) is the parent's modification UUID (0x198)" \
	"$(uuid_at "$T/child.vdi" 0x1B8)" "$(uuid_at "$T/base.vdi" 0x198)"
"$VDI" info --output=json "$T/child.vdi" >"$T/v.json"
is "info: image type" "$(json_get "$T/v.json" 'j["format-specific"]["data"]["image-type"]')" differencing
is "info: link-uuid" "$(json_get "$T/v.json" 'j["format-specific"]["data"]["link-uuid"]')" \
	"$(uuid_at "$T/base.vdi" 0x188)"
is "info: backing-filename is the parent as found" \
	"$(json_get "$T/v.json" 'j["backing-filename"]')" "$T/base.vdi"
is "info: full-backing-filename" \
	"$(json_get "$T/v.json" 'j["full-backing-filename"]')" "$(realpath "$T/base.vdi")"
is "info: backing-filename-format" "$(json_get "$T/v.json" 'j["backing-filename-format"]')" vdi
is "info: the new child holds no blocks" \
	"$(json_get "$T/v.json" 'j["format-specific"]["data"]["blocks-mapped"]')" 0
"$VDI" info "$T/child.vdi" >"$T/v.txt"
grep -qx "backing file: $T/base.vdi\( (actual path: .*)\)\{0,1\}" "$T/v.txt" &&
	grep -qx "backing file format: vdi" "$T/v.txt"
_result $? "human info shows the backing file lines"

ok "create -b with -F vdi and the parent's SIZE" "$VDI" create -q \
	-b "$T/base.vdi" -F vdi "$T/c2.vdi" 8M
exits "create -b with another SIZE" 1 "$VDI" create -q -b "$T/base.vdi" "$T/c3.vdi" 4M
grep -q "a differencing image has its parent's size (8388608 bytes); leave SIZE out" "$T/last.err"
_result $? "the message says to leave SIZE out"
exits "create -b -F qcow2" 1 "$VDI" create -q -b "$T/base.vdi" -F qcow2 "$T/c3.vdi"
exits "create -b -o static=on" 1 "$VDI" create -q -b "$T/base.vdi" -o static=on "$T/c3.vdi"
exits "create -b of a missing parent" 1 "$VDI" create -q -b "$T/nope.vdi" "$T/c3.vdi"
[ ! -e "$T/c3.vdi" ]
_result $? "refused creates leave no file"
exits "create -b onto the parent itself" 1 "$VDI" create -q -b "$T/base.vdi" "$T/base.vdi"
raw_of "$T/base.vdi" "$T/b.raw"
is "the parent survives" "$(sha256sum <"$T/b.raw")" "$base_sum"
rm -f "$T/c2.vdi"

# --- A new child reads as its parent; its map is the parent's, one deeper. ---
raw_of "$T/child.vdi" "$T/c.raw"
cmp -s "$T/c.raw" "$T/base.raw"
_result $? "a new child reads as its parent"
ok "map of the new child" "$VDI" map --output=json "$T/child.vdi"
cp "$T/last.out" "$T/v.map"
python3 - "$T/qbase.map" "$T/want.map" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for e in j:
    e["depth"] = 1
    e["present"] = e["data"]  # QEMU wrote no zero entries: the rest is free
json.dump(j, open(sys.argv[2], "w"))
PY
json_same "$T/v.map" "$T/want.map"
_result $? "new child's map: qemu-img's map of the base at depth 1, free ranges absent"

# --- Changes in the child: the parent shows through the rest. ---
ok "zero a whole block the parent holds" "$VDI" zero -q "$T/child.vdi" 1M 1M
ok "zero part of a block the parent holds" "$VDI" zero -q "$T/child.vdi" $((5 * M + 100)) 1000
ok "discard a block free in the parent" "$VDI" discard -q "$T/child.vdi" 6M 1M
edit_raw "$T/base.raw" "$T/child.want" $M:$M $((5 * M + 100)):1000
raw_of "$T/child.vdi" "$T/c.raw"
cmp -s "$T/c.raw" "$T/child.want"
_result $? "convert -O raw of the child: the base with the zeroed ranges"
raw_of "$T/base.vdi" "$T/b.raw"
is "the parent is unchanged" "$(sha256sum <"$T/b.raw")" "$base_sum"
ok "qemu-img check of the parent" "$QEMU_IMG" check "$T/base.vdi"
ok "vdi check of the child" "$VDI" check "$T/child.vdi"
ok "convert -O vdi of the child" "$VDI" convert -O vdi "$T/child.vdi" "$T/flat.vdi"
"$VDI" info --output=json "$T/flat.vdi" >"$T/v.json"
is "the converted image is standalone" \
	"$(json_get "$T/v.json" 'j["format-specific"]["data"]["image-type"]')" dynamic
"$QEMU_IMG" convert -O raw "$T/flat.vdi" "$T/f.raw"
cmp -s "$T/f.raw" "$T/child.want"
_result $? "QEMU reads the converted image as the child"

ok "map of the child" "$VDI" map --output=json "$T/child.vdi"
cp "$T/last.out" "$T/v.map"
is "child's map: depth, present, zero, data per block" "$(blocks "$T/v.map")" \
	"1/p/-/d 0/p/z/- 1/-/z/- 1/p/-/d 1/-/z/- 0/p/-/d 0/p/z/- 1/p/-/d"
map_holds "$T/v.map" "$T/child.want" "$T/child.vdi" "$T/base.vdi"
_result $? "child's map points at the right bytes of each file"
ok "human map of the child" "$VDI" map "$T/child.vdi"
is "human map: data from the base" "$(grep -c " $T/base.vdi\$" "$T/last.out")" 3
is "human map: data from the child" "$(grep -c " $T/child.vdi\$" "$T/last.out")" 1

# --- Three levels. ---
ok "create -b child.vdi grand.vdi" "$VDI" create -q -b "$T/child.vdi" "$T/grand.vdi"
ok "zero part of a block the grandparent holds" "$VDI" zero -q "$T/grand.vdi" 0 4k
edit_raw "$T/child.want" "$T/grand.want" 0:4096
raw_of "$T/grand.vdi" "$T/g.raw"
cmp -s "$T/g.raw" "$T/grand.want"
_result $? "the grandchild reads through two parents"
raw_of "$T/child.vdi" "$T/c.raw"
cmp -s "$T/c.raw" "$T/child.want"
_result $? "the child is unchanged"
ok "map of the grandchild" "$VDI" map --output=json "$T/grand.vdi"
cp "$T/last.out" "$T/v.map"
is "grandchild's map: depth, present, zero, data per block" "$(blocks "$T/v.map")" \
	"0/p/-/d 1/p/z/- 2/-/z/- 2/p/-/d 2/-/z/- 1/p/-/d 1/p/z/- 2/p/-/d"
map_holds "$T/v.map" "$T/grand.want" "$T/grand.vdi" "$T/child.vdi" "$T/base.vdi"
_result $? "grandchild's map points at the right bytes of each file"
ok "map window of the grandchild" "$VDI" map --output=json \
	--start-offset=1536K --max-length=1M "$T/grand.vdi"
is "the window is cut inside blocks" "$(json_get "$T/last.out" '[(e["start"], e["length"], e["depth"]) for e in j]')" \
	"[(1572864, 524288, 1), (2097152, 524288, 2)]"

ok "info --backing-chain of the grandchild" "$VDI" info --backing-chain --output=json "$T/grand.vdi"
cp "$T/last.out" "$T/v.json"
is "three images, the grandchild first" \
	"$(json_get "$T/v.json" '[e["filename"] for e in j]')" \
	"['$T/grand.vdi', '$T/child.vdi', '$T/base.vdi']"
is "each names its parent" \
	"$(json_get "$T/v.json" '[e.get("backing-filename") for e in j]')" \
	"['$T/child.vdi', '$T/base.vdi', None]"
is "backing-filename-format on the children" \
	"$(json_get "$T/v.json" '[e.get("backing-filename-format") for e in j]')" "['vdi', 'vdi', None]"
is "the VDI links: each link-uuid is the next image's uuid" \
	"$(json_get "$T/v.json" '[a["format-specific"]["data"]["link-uuid"] == b["format-specific"]["data"]["uuid"] for a, b in zip(j, j[1:])]')" \
	"[True, True]"
"$VDI" info --backing-chain --output=json "$T/child.vdi" >"$T/v.json"
is "the child's chain has two images" "$(json_get "$T/v.json" 'len(j)')" 2
"$VDI" info --backing-chain --output=json "$T/base.vdi" >"$T/v.json"
is "a standalone image's chain is itself" "$(json_get "$T/v.json" '[e["filename"] for e in j]')" "['$T/base.vdi']"
"$VDI" info --backing-chain "$T/grand.vdi" >"$T/v.txt"
is "human --backing-chain: three images" "$(grep -c '^image: ' "$T/v.txt")" 3
is "human --backing-chain: blank lines between them" "$(grep -c '^$' "$T/v.txt")" 2

# --- A missing parent: the library's message; -b names it. ---
mkdir "$T/away"
mv "$T/base.vdi" "$T/away/base.vdi"
base_uuid=$(uuid_at "$T/away/base.vdi" 0x188)
for cmd in info map convert; do
	if [ $cmd = convert ]; then
		exits "$cmd of a child without its parent" 1 "$VDI" convert -O raw "$T/child.vdi" "$T/x.raw"
		lines=1
	else
		exits "$cmd of a child without its parent" 1 "$VDI" $cmd "$T/child.vdi"
		lines=2
	fi
	grep -q "^vdi: [a-z]*: vdi_open: .*child.vdi: differencing image: no parent with UUID $base_uuid" "$T/last.err" &&
		[ "$(err_lines)" = $lines ]
	_result $? "$cmd: the library's 'no parent with UUID' message"
	if [ $cmd != convert ]; then
		grep -q "^vdi: $cmd: hint: --no-parent looks at .*child.vdi alone" "$T/last.err"
		_result $? "$cmd: the hint names --no-parent"
	fi
done
# The image alone: its own metadata needs no parent.
ok "check of a child without its parent" "$VDI" check "$T/child.vdi"
sum=$(sha256sum <"$T/child.vdi")
ok "check -r all of a child without its parent" "$VDI" check -r all "$T/child.vdi"
is "  a clean child is left as it was" "$(sha256sum <"$T/child.vdi")" "$sum"
ok "an unrelated image of the same size" "$VDI" create "$T/away/other.vdi" \
	"$("$VDI" info --output=json "$T/child.vdi" --no-parent | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')"
exits "check -b with a wrong parent still fails" 1 "$VDI" check -b "$T/away/other.vdi" "$T/child.vdi"
grep -q "other.vdi.*UUID" "$T/last.err"
_result $? "  because of the parent's UUID, not a missing file"
sed 's/^/# stderr: /' "$T/last.err" | head -2
ok "info --no-parent" "$VDI" info --no-parent --output=json "$T/child.vdi"
is "  shows the link UUID" "$(json_get "$T/last.out" 'j["format-specific"]["data"]["link-uuid"]')" "$base_uuid"
is "  and no backing file" "$(json_get "$T/last.out" '"backing-filename" in j')" "False"
exits "info -b and --no-parent together" 1 "$VDI" info --no-parent -b "$T/away/base.vdi" "$T/child.vdi"
ok "map --no-parent" "$VDI" map --no-parent --output=json "$T/child.vdi"
python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
own = [e for e in m if e["depth"] == 0]
rest = [e for e in m if e["depth"] == 1]
assert own and rest, m
assert all(e["data"] for e in own if not e["zero"]), m
assert all(not e["present"] and not e["zero"] and not e["data"] for e in rest), m
' "$T/last.out"
_result $? "  the parent's ranges are depth 1, not present, not zero"
ok "info -b names the moved parent" "$VDI" info -b "$T/away/base.vdi" "$T/child.vdi"
grep -q "^backing file: $T/away/base.vdi" "$T/last.out"
_result $? "info -b shows the parent as named"
ok "convert --parent reads through the moved parent" "$VDI" convert -q \
	--force -O raw --parent="$T/away/base.vdi" "$T/child.vdi" "$T/c.raw"
cmp -s "$T/c.raw" "$T/child.want"
_result $? "convert --parent gives the child's view"
ok "map -b" "$VDI" map --output=json -b "$T/away/base.vdi" "$T/child.vdi"
map_holds "$T/last.out" "$T/child.want" "$T/child.vdi" "$T/away/base.vdi"
_result $? "map -b points into the moved parent"
ok "check -b" "$VDI" check -b "$T/away/base.vdi" "$T/child.vdi"
ok "check -r with -b: the repair, then the check through the chain" \
	"$VDI" check -r leaks -b "$T/away/base.vdi" "$T/child.vdi"
exits "-b for an image that has no parent" 1 "$VDI" info -b "$T/child.vdi" "$T/away/base.vdi"
grep -q "not a differencing image" "$T/last.err"
_result $? "says the image is not a differencing image"
mv "$T/away/base.vdi" "$T/base.vdi"
exits "-b naming the wrong image" 1 "$VDI" info -b "$T/grand.vdi" "$T/child.vdi"
grep -q "but the image links to" "$T/last.err"
_result $? "the library's mismatch message"
exits "-b naming the grandparent" 1 "$VDI" map -b "$T/base.vdi" "$T/grand.vdi"
exits "-b naming a raw file" 1 "$VDI" info -b "$T/base.raw" "$T/child.vdi"

# --- A parent changed after the child was made. ---
mkdir "$T/keep"
cp "$T/base.vdi" "$T/keep/base.vdi"
ok "the library writes to the parent" "$VDI" zero -q "$T/base.vdi" 7M 512
exits "the child refuses its changed parent" 1 "$VDI" info "$T/child.vdi"
grep -q "^vdi: [a-z]*: vdi_open: .*child.vdi: parent .*base.vdi was modified after this image was made from it" "$T/last.err"
_result $? "the library's 'was modified after' message"
exits "the grandchild refuses too" 1 "$VDI" convert -O raw "$T/grand.vdi" "$T/x.raw"
cp "$T/keep/base.vdi" "$T/base.vdi"
ok "the restored parent is accepted" "$VDI" info "$T/child.vdi"

# QEMU's VDI driver does not change the modification UUID when it writes,
# so the child cannot tell: it opens and shows what QEMU wrote.
before=$(uuid_at "$T/base.vdi" 0x198)
"$QEMU_IO" -f vdi -c 'write -P 0x55 7M 4k' "$T/base.vdi" >/dev/null
if [ "$(uuid_at "$T/base.vdi" 0x198)" != "$before" ]; then
	exits "QEMU changed the parent: the child refuses it" 1 "$VDI" info "$T/child.vdi"
else
	echo "# QEMU wrote to the parent without changing its modification UUID;"
	echo "# the child cannot detect it and reads the parent's new data"
	edit_raw "$T/child.want" "$T/x.want" $((7 * M)):4096:0x55
	raw_of "$T/child.vdi" "$T/x.raw"
	cmp -s "$T/x.raw" "$T/x.want"
	_result $? "after QEMU's write the child reads the parent as it now is"
fi
cp "$T/keep/base.vdi" "$T/base.vdi"

# --- Commit. ---
ok "commit the child into its parent" "$VDI" commit "$T/child.vdi"
is "commit says so, as qemu-img" "$(cat "$T/last.out")" "Image committed."
"$QEMU_IMG" convert -O raw "$T/base.vdi" "$T/b.raw"
cmp -s "$T/b.raw" "$T/child.want"
_result $? "the parent now reads as the child did (QEMU's view)"
ok "qemu-img check of the committed parent" "$QEMU_IMG" check "$T/base.vdi"
raw_of "$T/child.vdi" "$T/c.raw"
cmp -s "$T/c.raw" "$T/child.want"
_result $? "the child still reads the same"
raw_of "$T/grand.vdi" "$T/g.raw"
cmp -s "$T/g.raw" "$T/grand.want"
_result $? "the grandchild still opens and reads the same"
exits "commit of an image without parent" 1 "$VDI" commit "$T/base.vdi"
grep -q "not a differencing image" "$T/last.err"
_result $? "the library's message"
exits "commit of a missing image" 1 "$VDI" commit "$T/nope.vdi"

mv "$T/base.vdi" "$T/away/base.vdi"
ok "discard in the child, naming the moved parent" "$VDI" discard -q \
	-b "$T/away/base.vdi" "$T/child.vdi" 3M 1M
ok "commit -q -b" "$VDI" commit -q -b "$T/away/base.vdi" "$T/child.vdi"
is "commit -q prints nothing" "$(cat "$T/last.out")" ""
edit_raw "$T/child.want" "$T/x.want" $((3 * M)):$M
"$QEMU_IMG" convert -O raw "$T/away/base.vdi" "$T/b.raw"
cmp -s "$T/b.raw" "$T/x.want"
_result $? "the moved parent got the commit"
mv "$T/away/base.vdi" "$T/base.vdi"

# --- Help and usage. ---
ok "vdi --help" "$VDI" --help
grep -q "^  commit " "$T/last.out"
_result $? "--help lists commit"
ok "commit --help" "$VDI" commit --help
grep -q "^Usage: vdi commit" "$T/last.out"
_result $? "commit --help shows its usage"
for cmd in create info check map convert discard zero; do
	"$VDI" $cmd --help | grep -q -- "-b, --parent=PARENT"
	_result $? "$cmd --help documents -b, --parent"
done
exits "commit without FILE" 1 "$VDI" commit
exits "create -b without FILE" 1 "$VDI" create -b "$T/base.vdi"

# --- Compact a child: it reads the same; a child cannot be resized. ---
"$VDI" convert -O raw "$T/child.vdi" "$T/cc-before.raw"
ok "compact of a child" "$VDI" compact --output=json "$T/child.vdi"
is "  reports parent-blocks" "$(json_get "$T/last.out" '"parent-blocks" in j')" "True"
"$VDI" convert -O raw "$T/child.vdi" "$T/cc-after.raw"
ok "  the child reads the same" cmp "$T/cc-before.raw" "$T/cc-after.raw"
ok "  and checks clean" "$VDI" check "$T/child.vdi"
exits "resize of a child" 1 "$VDI" resize "$T/child.vdi" +1M
grep -q "differencing image" "$T/last.err"
_result $? "resize says it is a differencing image"
ok "the child still opens" "$VDI" info "$T/child.vdi"

# --- Every level named: -b once per level, images in separate directories. ---
mkdir -p "$T/l0" "$T/l1" "$T/l2"
make_sparse "$T/l0.raw" $((4 * 1048576)) 100000 0 3000000
"$VDI" convert -O vdi "$T/l0.raw" "$T/l0/base.vdi" >/dev/null
"$VDI" create -b "$T/l0/base.vdi" "$T/l1/mid.vdi" >/dev/null
ok "create over a parent whose own parent is elsewhere" "$VDI" create -b "$T/l1/mid.vdi" "$T/l2/top.vdi"
exits "one -b is not enough when the grandparent is elsewhere" 1 "$VDI" info -b "$T/l1/mid.vdi" "$T/l2/top.vdi"
ok "info with two -b" "$VDI" info --backing-chain -b "$T/l1/mid.vdi" -b "$T/l0/base.vdi" "$T/l2/top.vdi"
is "  shows three images" "$(grep -c '^image: ' "$T/last.out")" 3
ok "convert with two -b" "$VDI" convert -O raw -b "$T/l1/mid.vdi" -b "$T/l0/base.vdi" "$T/l2/top.vdi" "$T/l2.raw"
ok "  reads the base's data" cmp "$T/l0.raw" "$T/l2.raw"
exits "three -b for a chain of two parents" 1 "$VDI" map -b "$T/l1/mid.vdi" -b "$T/l0/base.vdi" -b "$T/l0/base.vdi" "$T/l2/top.vdi"
grep -q "has 2 parents, but 3 were named" "$T/last.err"
_result $? "  says how many parents there are"

done_testing
