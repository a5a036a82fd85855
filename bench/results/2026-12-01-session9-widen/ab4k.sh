#!/bin/bash
# interleaved: raw-sparse / base vdi.so / new vdi.so on a fresh qemu-img-created 1 GiB image, 256 MiB of BS random writes QD32
bs=${1:-4k}; reps=${2:-3}; rw=${3:-randwrite}; qd=${4:-32}
f=/var/tmp/s9/ab.img
run() { # name engine kind
  rm -f $f
  case $3 in raw) truncate -s 1G $f;; qimg) qemu-img create -q -f vdi $f 1G;; vdi) /work/main/build-exp/cli/vdi create $f 1G >/dev/null;; esac
  fio --name=x --filename=$f --rw=$rw --bs=$bs --iodepth=$qd --direct=1 --size=1G --io_size=256M --randrepeat=0 --ioengine=$2 --output-format=json 2>/dev/null | python3 -c "
import json,sys; j=json.load(sys.stdin)['jobs'][0]; w=j['write']; p=w['clat_ns']['percentile']
print('%-10s MB/s %5.0f p99 %6.0f us ctx %d' % ('$1', w['bw']/1024, p['99.000000']/1000, j['ctx']))"
  [ $3 != raw ] && /work/main/build-exp/cli/vdi check $f >/dev/null 2>&1 || { [ $3 = raw ] || echo "  vdi check FAILED"; }
}
for i in $(seq $reps); do
  run raw-sparse io_uring raw
  run base external:/work/wt-s9base/build-release/fio/vdi.so qimg
  run new external:/work/main/build-exp/fio/vdi.so qimg
done
rm -f $f
