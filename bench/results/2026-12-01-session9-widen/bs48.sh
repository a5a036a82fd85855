#!/bin/bash
# sparse raw 1 GiB, 65,536 random writes QD32: 4k against 8k (at 4k-aligned offsets): IOPS and p99
f=/var/tmp/s9/r.img
for rep in 1 2 3 4; do for bs in 4k 8k; do
rm -f $f; truncate -s 1G $f
fio --name=x --filename=$f --rw=randwrite --bs=$bs --blockalign=4k --iodepth=32 --direct=1 --size=1G --number_ios=65536 --norandommap --randrepeat=0 --ioengine=io_uring --output-format=json 2>/dev/null | python3 -c "
import json,sys; j=json.load(sys.stdin)['jobs'][0]['write']; p=j['clat_ns']['percentile']
print('$bs IOPS %.0f MB/s %.0f p99 %.0f us' % (j['iops'], j['bw']/1024, p['99.000000']/1000))"
done; done; rm -f $f
