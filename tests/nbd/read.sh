#!/bin/sh
# Reading through the export: qemu-img convert and nbdcopy of nbd+unix://
# give what vdi convert -O raw gives, for a dynamic image with data, zero
# and free blocks, and for a differencing image named with parent=.
. "$(dirname "$0")/lib.sh"
need_nbdkit
need_qemu
need_nbdcopy

"$VDI" create -q "$T/d.vdi" 64M
"$QEMU_IO" -f vdi -c 'write -P 0x11 0 3M' -c 'write -P 0x22 5M 512k' \
	-c 'write -P 0x44 10M 1M' -c 'write -P 0x33 63M 1M' \
	-c 'write -P 0x55 40000 1000' "$T/d.vdi" >/dev/null
"$VDI" discard -q "$T/d.vdi" 10M 1M
"$VDI" convert -O raw "$T/d.vdi" "$T/want.raw"

ok "nbdkit serves a dynamic image read-only" serve r file="$T/d.vdi" readonly=true
ok "qemu-img convert of the export" "$QEMU_IMG" convert -f raw -O raw "$URI" "$T/got.raw"
ok "... equals vdi convert -O raw" cmp "$T/got.raw" "$T/want.raw"
ok "nbdcopy from the export" "$NBDCOPY" "$URI" "$T/copy.raw"
ok "... equals vdi convert -O raw" cmp "$T/copy.raw" "$T/want.raw"
ok "two readers share the image: qemu-img compare opens it too" \
	"$QEMU_IMG" compare -f raw -F vdi "$URI" "$T/d.vdi"
stop r

# A differencing image whose parent is not next to it: parent= names it.
mkdir "$T/kids"
"$VDI" create -q -b "$T/d.vdi" "$T/kids/c.vdi"
ok "nbdkit serves a differencing image with parent=" \
	serve c file="$T/kids/c.vdi" parent="$T/d.vdi"
ok "writes to the child through NBD" "$QEMU_IO" -f raw \
	-c 'write -P 0x66 1M 64k' -c 'write -P 0x77 62M 2M' "$URI"
"$QEMU_IO" -f raw -c 'write -P 0x66 1M 64k' -c 'write -P 0x77 62M 2M' \
	"$T/want.raw" >/dev/null
ok "qemu-img convert of the child's export" "$QEMU_IMG" convert -f raw -O raw "$URI" "$T/got-c.raw"
ok "... equals the parent's data with the child's writes" cmp "$T/got-c.raw" "$T/want.raw"
stop c
ok "vdi convert -b of the child gives the same" "$VDI" convert -O raw -b "$T/d.vdi" \
	"$T/kids/c.vdi" "$T/vdi-c.raw"
ok "... bytes" cmp "$T/vdi-c.raw" "$T/want.raw"
ok "the parent is unchanged" "$QEMU_IMG" compare -f vdi -F raw "$T/d.vdi" "$T/copy.raw"

echo "1..$_tap_n"
[ $_tap_failed -eq 0 ]
