#!/bin/sh
# Writes, a flush, then SIGKILL of nbdkit while the client is still
# connected (so nothing but the flush made the writes durable): the image
# checks clean and every flushed write is there.  Writes after the flush
# may be lost, but leave no corruption (at most leaked space).
. "$(dirname "$0")/lib.sh"
need_nbdkit
need_qemu

# client NAME COMMANDS...: qemu-io runs the commands on the export, then a
# marker read of 4 KiB at 60 MiB, then sleeps; returns once nbdkit has
# seen the marker (so every command before it has completed).  Its pid in
# $client_pid.
client() {
	local name=$1
	shift
	"$QEMU_IO" -f raw "$@" -c 'read 60M 4k' -c 'sleep 30000' "$URI" \
		>"$T/client.out" 2>&1 &
	client_pid=$!
	wait_log "$name" "pread count=4096 offset=62914560"
}

end_client() {
	kill "$client_pid" 2>/dev/null
	wait "$client_pid" 2>/dev/null
	return 0
}

"$VDI" create -q "$T/d.vdi" 64M
"$QEMU_IO" -f vdi -c 'write -P 0x10 8M 1M' "$T/d.vdi" >/dev/null

SERVE_OPTS=-v serve k file="$T/d.vdi"
ok "writes and a flush through NBD" client k \
	-c 'write -P 0x5a 0 2M' -c 'write -P 0x5b 5M 12k' \
	-c 'write -P 0x5c 8M 4k' -c 'write -P 0x5d 30M 1M' -c flush
ok "nbdkit answered no request with an error" sh -c '! grep -i "error" "$1"' sh "$T/k.log"
ok "SIGKILL of nbdkit, the client still connected" stop k KILL
end_client
ok "vdi check is clean" "$VDI" check "$T/d.vdi"
ok "qemu-img check is clean" "$QEMU_IMG" check -f vdi "$T/d.vdi"
ok "every flushed write is there" "$QEMU_IO" -f vdi -r \
	-c 'read -P 0x5a 0 2M' -c 'read -P 0x5b 5M 12k' -c 'read -P 0x5c 8M 4k' \
	-c 'read -P 0x10 8196k 1020k' -c 'read -P 0x5d 30M 1M' "$T/d.vdi"

SERVE_OPTS=-v serve k file="$T/d.vdi"
ok "a flush, then writes not flushed" client k \
	-c 'write -P 0x6a 40M 1M' -c flush -c 'write -P 0x6b 50M 2M' \
	-c 'write -P 0x6c 0 4k'
ok "SIGKILL of nbdkit, the client still connected" stop k KILL
end_client
"$VDI" check "$T/d.vdi" >"$T/check.out" 2>&1
rc=$?
is "vdi check finds no corruption (clean, or leaks only)" \
	"$({ [ $rc -eq 0 ] || [ $rc -eq 3 ]; } && echo yes)" yes
ok "the flushed writes are there" "$QEMU_IO" -f vdi -r \
	-c 'read -P 0x6a 40M 1M' -c 'read -P 0x5d 30M 1M' "$T/d.vdi"

echo "1..$_tap_n"
[ $_tap_failed -eq 0 ]
