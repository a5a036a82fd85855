#!/bin/bash
# usage: trace-1m.sh ENGINE_SO [bs] [rw] [depth]
# perf stat of fio writing 256 MiB into a fresh `qemu-img create -f vdi` image of 1 GiB:
# context switches, SQEs punted to io-wq, direct writes queued (async) or completed inline.
so=$1; bs=${2:-1M}; rw=${3:-write}; qd=${4:-8}
d=${TMPDIR:-/var/tmp}; f=$d/q1m-trace.vdi
rm -f $f; qemu-img create -q -f vdi $f 1G
perf stat -x, -e context-switches -e io_uring:io_uring_queue_async_work \
  -e iomap:iomap_dio_rw_queued -e iomap:iomap_dio_complete -e ext4:ext4_es_insert_extent -- \
  fio --name=x --filename=$f --rw=$rw --bs=$bs --iodepth=$qd --direct=1 --size=1G --io_size=256M \
   --randrepeat=0 --ioengine=external:$so --output-format=terse --terse-version=3 2>/tmp/perf.$$ >/tmp/fio.$$
awk -F';' '{printf "write MB/s %.0f (one short run: not a comparison)\n", $48/1024}' /tmp/fio.$$
cut -d, -f1,3 /tmp/perf.$$ | tr '\n' ' '; echo
rm -f /tmp/perf.$$ /tmp/fio.$$
