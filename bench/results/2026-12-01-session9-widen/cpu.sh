#!/bin/bash
# fresh qemu-img image, 256 MiB of 4k random writes QD32: MB/s, p99 and machine busy CPU us per I/O; with and without slot reservation; raw-sparse beside
f=/var/tmp/s9/c.img
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
run() {
  rm -f $f; if [ $1 = raw-sparse ]; then truncate -s 1G $f; e=io_uring; else qemu-img create -q -f vdi $f 1G; e=external:/work/main/build-exp/fio/vdi.so; fi
  b0=$(busy); env $2 fio --name=x --filename=$f --rw=randwrite --bs=4k --iodepth=32 --direct=1 --size=1G --io_size=256M --randrepeat=0 --ioengine=$e --output-format=json 2>/dev/null > c.json; b1=$(busy)
  python3 -c "
import json; j=json.load(open('c.json'))['jobs'][0]['write']; p=j['clat_ns']['percentile']; n=j['total_ios']
print('%-12s MB/s %4.0f p99 %5.0f us CPU %.1f us/IO' % ('$1', j['bw']/1024, p['99.000000']/1000, ($b1-$b0)*10000.0/n))"
}
for i in 1 2 3; do run raw-sparse X=1; run reserve X=1; run no-reserve VDI_NO_RESERVE=1; done
rm -f $f c.json
