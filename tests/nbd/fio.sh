#!/bin/sh
# fio's nbd engine against the export: random writes with verification at
# iodepth 16 over one connection, then over two connections at once (each
# job its own), block sizes that cross VDI blocks.  The image checks clean.
. "$(dirname "$0")/lib.sh"
need_nbdkit
need_qemu
[ -n "$FIO" ] && [ -x "$FIO" ] || skip_all "fio not found"
"$FIO" --enghelp 2>/dev/null | grep -qx '[[:space:]]*nbd' ||
	skip_all "this fio has no nbd engine"

"$VDI" create -q "$T/d.vdi" 64M
serve f file="$T/d.vdi"

common="--ioengine=nbd --uri=$URI --rw=randwrite --verify=crc32c
	--verify_fatal=1 --do_verify=1 --randrepeat=0 --group_reporting
	--verify_state_save=0"
ok "fio randwrite verify, iodepth 16" "$FIO" --name=qd16 $common \
	--bsrange=4k-256k --iodepth=16 --size=32M
ok "fio randwrite verify, 2 connections" "$FIO" --name=conn2 $common \
	--bs=64k --iodepth=8 --numjobs=2 --size=16M --offset=32M \
	--offset_increment=16M
stop f
ok "vdi check is clean" "$VDI" check "$T/d.vdi"
ok "qemu-img check is clean" "$QEMU_IMG" check -f vdi "$T/d.vdi"
is "every block written is allocated" \
	"$("$VDI" info --output=json "$T/d.vdi" | python3 -c 'import json,sys; print(json.load(sys.stdin)["format-specific"]["data"].get("blocks-allocated", "?"))' 2>/dev/null)" 64

echo "1..$_tap_n"
[ $_tap_failed -eq 0 ]
