#!/bin/bash
# fresh 1 GiB images, 256 MiB of 1M sequential writes QD8, interleaved, REPS rounds:
# raw-sparse, vdi create + new engine, qemu-img create + new engine, qemu-img create + engine at 555ad9d
reps=${1:-5}; f=/var/tmp/s9/ab1m.img
NEW=/work/main/build-exp/fio/vdi.so; OLD=/work/wt-s9base/build-release/fio/vdi.so
run() { rm -f $f
  case $2 in raw) truncate -s 1G $f; e=io_uring;; vdi) /work/main/build-exp/cli/vdi create $f 1G >/dev/null; e=external:$3;; qimg) qemu-img create -q -f vdi $f 1G; e=external:$3;; esac
  fio --name=x --filename=$f --rw=write --bs=1M --iodepth=8 --direct=1 --size=1G --io_size=256M --ioengine=$e --output-format=json 2>/dev/null | python3 -c "
import json,sys; j=json.load(sys.stdin)['jobs'][0]; w=j['write']; p=w['clat_ns']['percentile']
print('%-14s MB/s %5.0f p99 %6.0f us' % ('$1', w['bw']/1024, p['99.000000']/1000))"; }
for i in $(seq $reps); do run raw-sparse raw; run vdi-new vdi $NEW; run qimg-new qimg $NEW; run qimg-base qimg $OLD; done; rm -f $f
