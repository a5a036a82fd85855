#!/bin/bash
# vdi create: dynamic, static and block-size images that qemu-img accepts,
# sizes with suffixes, and the -o options.
. "$(dirname "$0")/lib.sh"
need_qemu
need_python

# Dynamic, default options: qemu-img checks it clean and agrees on size.
ok "create dynamic 64M" "$VDI" create "$T/dyn.vdi" 64M
ok "qemu-img check dynamic is clean" "$QEMU_IMG" check "$T/dyn.vdi"
"$QEMU_IMG" info --output=json "$T/dyn.vdi" >"$T/q.json"
is "qemu-img virtual size of dynamic" "$(json_get "$T/q.json" 'j["virtual-size"]')" 67108864
is "qemu-img cluster size of dynamic" "$(json_get "$T/q.json" 'j["cluster-size"]')" 1048576
"$QEMU_IMG" map --output=json "$T/dyn.vdi" >"$T/q.map"
is "dynamic image has no data blocks" \
	"$(json_get "$T/q.map" 'sum(e["length"] for e in j if e["data"])')" 0
# QEMU can write to it and read the data back.
ok "qemu-io writes into the new image" "$QEMU_IO" -f vdi \
	-c 'write -P 0xab 5M 1M' "$T/dyn.vdi"
ok "qemu-io reads it back" "$QEMU_IO" -f vdi -c 'read -P 0xab 5M 1M' \
	-c 'read -P 0 0 5M' "$T/dyn.vdi"
ok "qemu-img check after the QEMU write" "$QEMU_IMG" check "$T/dyn.vdi"

# Static: every block allocated and present in the file.
ok "create static 8M" "$VDI" create -o static=on "$T/st.vdi" 8M
ok "qemu-img check static is clean" "$QEMU_IMG" check "$T/st.vdi"
"$VDI" info --output=json "$T/st.vdi" >"$T/v.json"
is "static image type" "$(json_get "$T/v.json" 'j["format-specific"]["data"]["image-type"]')" static
is "static image has all 8 blocks allocated" \
	"$(json_get "$T/v.json" 'j["format-specific"]["data"]["blocks-allocated"]')" 8
"$QEMU_IMG" map --output=json "$T/st.vdi" >"$T/q.map"
is "qemu-img sees all 8M of the static image as data" \
	"$(json_get "$T/q.map" 'sum(e["length"] for e in j if e["data"])')" 8388608
file_size=$(stat -c %s "$T/st.vdi")
[ "$file_size" -ge 8388608 ]
_result $? "static file holds the data area ($file_size bytes)"

# Block size: QEMU opens only 1 MiB blocks, so our own tools check these.
ok "create block_size=128K" "$VDI" create -o block_size=128K "$T/b128k.vdi" 3M
"$VDI" info --output=json "$T/b128k.vdi" >"$T/v.json"
is "128K block size in info" "$(json_get "$T/v.json" 'j["cluster-size"]')" 131072
is "3M of 128K blocks is 24 blocks" "$(json_get "$T/v.json" 'j["format-specific"]["data"]["blocks"]')" 24
ok "vdi check of a 128K-block image" "$VDI" check "$T/b128k.vdi"
ok "create -o cluster_size=2M,static=on (alias, list)" "$VDI" create \
	-o cluster_size=2M,static=on "$T/b2m.vdi" 5M
"$VDI" info --output=json "$T/b2m.vdi" >"$T/v.json"
is "2M blocks" "$(json_get "$T/v.json" 'j["cluster-size"]')" 2097152
is "5M in 2M blocks is 3 blocks" "$(json_get "$T/v.json" 'j["format-specific"]["data"]["blocks"]')" 3
is "static via the list" "$(json_get "$T/v.json" 'j["format-specific"]["data"]["image-type"]')" static
exits "block_size=3000 is refused" 1 "$VDI" create -o block_size=3000 "$T/bad.vdi" 1M
exits "block_size=64K (below VirtualBox's range) is refused" 1 \
	"$VDI" create -o block_size=64K "$T/bad.vdi" 1M
[ ! -e "$T/bad.vdi" ]
_result $? "a refused create leaves no file"

# UUID and description (with a comma written ",,", and a quote).
uuid=0f0e0d0c-0b0a-4908-8706-050403020100
ok "create with uuid and description" "$VDI" create -q \
	-o "uuid=$uuid" -o 'description=disk "one",, first' "$T/u.vdi" 1G
is "create -q prints nothing" "$(cat "$T/last.out")" ""
"$VDI" info --output=json "$T/u.vdi" >"$T/v.json"
is "uuid in info" "$(json_get "$T/v.json" 'j["format-specific"]["data"]["uuid"]')" "$uuid"
is "description in info" "$(json_get "$T/v.json" 'j["format-specific"]["data"]["description"]')" 'disk "one", first'
# The UUID is stored in VirtualBox byte order at 0x188.
stored=$(python3 -c 'import sys,uuid; f=open(sys.argv[1],"rb"); f.seek(0x188); print(uuid.UUID(bytes_le=f.read(16)))' "$T/u.vdi")
is "uuid stored little-endian at 0x188" "$stored" "$uuid"
ok "qemu-img check of the 1G image" "$QEMU_IMG" check "$T/u.vdi"

# Sizes: plain bytes (rounded up to 512, as QEMU does), fractions, T.
ok "create 1000 bytes" "$VDI" create "$T/s1000.vdi" 1000
"$QEMU_IMG" info --output=json "$T/s1000.vdi" >"$T/q.json"
is "1000 bytes round up to 1024" "$(json_get "$T/q.json" 'j["virtual-size"]')" 1024
ok "create 1.5M" "$VDI" create "$T/s15.vdi" 1.5M
"$QEMU_IMG" info --output=json "$T/s15.vdi" >"$T/q.json"
is "1.5M is 1572864 bytes" "$(json_get "$T/q.json" 'j["virtual-size"]')" 1572864
ok "create 2T" "$VDI" create "$T/s2t.vdi" 2T
"$QEMU_IMG" info --output=json "$T/s2t.vdi" >"$T/q.json"
is "2T virtual size" "$(json_get "$T/q.json" 'j["virtual-size"]')" 2199023255552
exits "size 12Q is refused" 1 "$VDI" create "$T/q.vdi" 12Q
exits "unknown -o key is refused" 1 "$VDI" create -o colour=blue "$T/q.vdi" 1M
exits "static=maybe is refused" 1 "$VDI" create -o static=maybe "$T/q.vdi" 1M
ok "-o help lists the options" "$VDI" create -o help
grep -q 'block_size' "$T/last.out"
_result $? "-o help mentions block_size"

# -o as qemu-img parses it: a bare "static" is on, ",," is a comma.
ok "create -o static (bare)" "$VDI" create -q -o static,block_size=128K "$T/bare.vdi" 1M
"$VDI" info --output=json "$T/bare.vdi" >"$T/b.json"
is "a bare -o static makes a static image" \
	"$(json_get "$T/b.json" 'j["format-specific"]["data"]["image-type"]')" static
ok "create with ',,' in a value" "$VDI" create -q -o 'description=a,,b,,,,c' "$T/comma.vdi" 1M
"$VDI" info --output=json "$T/comma.vdi" >"$T/c.json"
is "',,' stands for a comma" \
	"$(json_get "$T/c.json" 'j["format-specific"]["data"]["description"]')" 'a,b,,c'

# create --force replaces an existing file, as qemu-img create does
# (without --force it is refused: tests/cli/safety.sh).
echo junk >"$T/r.vdi"
ok "create --force over an existing file" "$VDI" create --force "$T/r.vdi" 4M
ok "the replaced file is a clean image" "$QEMU_IMG" check "$T/r.vdi"

done_testing
