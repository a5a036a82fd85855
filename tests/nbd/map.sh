#!/bin/sh
# Extents: nbdinfo --map and qemu-img map over NBD show the allocated, zero
# and free ranges that vdi map shows, for a dynamic image, a static image
# and a differencing image (whose map over NBD is the whole chain's).
. "$(dirname "$0")/lib.sh"
need_nbdkit
need_nbdinfo
need_qemu
need_python

# compare_maps FILE VDI-MAP-ARGS...: the export at $URI against vdi map.
compare_maps() {
	local name=$1
	shift
	"$VDI" map --output=json "$@" >"$T/$name.vdi.json"
	norm_map qemu "$T/$name.vdi.json" >"$T/$name.vdi.map"
	ok "nbdinfo --map ($name)" "$NBDINFO" --map --json "$URI"
	cp "$T/last.out" "$T/$name.nbdinfo.json"
	norm_map nbdinfo "$T/$name.nbdinfo.json" >"$T/$name.nbdinfo.map"
	ok "... agrees with vdi map" diff "$T/$name.vdi.map" "$T/$name.nbdinfo.map"
	ok "qemu-img map over NBD ($name)" "$QEMU_IMG" map --output=json -f raw "$URI"
	cp "$T/last.out" "$T/$name.qemu.json"
	norm_map qemu "$T/$name.qemu.json" >"$T/$name.qemu.map"
	ok "... agrees with vdi map" diff "$T/$name.vdi.map" "$T/$name.qemu.map"
}

# Data, zero entries (discarded), free blocks; a run that is contiguous
# in the file and one that is not; a last block cut short by the size.
"$VDI" create -q "$T/d.vdi" 67000000
"$QEMU_IO" -f vdi -c 'write -P 1 0 3M' -c 'write -P 2 9M 1M' -c 'write -P 3 5M 2M' \
	-c 'write -P 4 20M 4M' -c 'write -P 5 66000000 1000000' "$T/d.vdi" >/dev/null
"$VDI" discard -q "$T/d.vdi" 21M 2M
"$VDI" discard -q "$T/d.vdi" 40M 3M

serve d file="$T/d.vdi" readonly=true
compare_maps dynamic "$T/d.vdi"
stop d

# A static image: the container's holes read as zeros (allocated, zero),
# as vdi map and qemu-img map say of them.
"$VDI" create -q -o static=on "$T/s.vdi" 16M
"$QEMU_IO" -f vdi -c 'write -P 1 1M 1M' -c 'write -P 2 5M 64k' "$T/s.vdi" >/dev/null
serve s file="$T/s.vdi" readonly=true
compare_maps static "$T/s.vdi"
is "a static image has allocated ranges of zeros" \
	"$(awk '$3 == "True" && $4 == "True"' "$T/static.vdi.map" | wc -l)" 3
stop s

# A differencing image: some blocks its own, some zeroed over the parent's,
# the rest the parent's.  (vdi zero of whole blocks makes zero entries.)
"$VDI" create -q -b "$T/d.vdi" "$T/c.vdi"
serve c file="$T/c.vdi"
"$QEMU_IO" -f raw -c 'write -P 7 1M 1M' -c 'write -P 8 30M 2M' -c flush "$URI" >/dev/null
stop c
"$VDI" zero -q "$T/c.vdi" 5M 1M
serve c file="$T/c.vdi" readonly=true
compare_maps differencing "$T/c.vdi"
is "the zeroed block of the parent is a hole over NBD" \
	"$(awk '$1 <= 5242880 && 5242880 < $1 + $2 { print $3, $4 }' \
		"$T/differencing.nbdinfo.map")" "True False"
stop c

echo "1..$_tap_n"
[ $_tap_failed -eq 0 ]
