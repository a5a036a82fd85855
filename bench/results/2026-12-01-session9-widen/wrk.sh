#!/bin/bash
# where every thread sleeps (by comm), 256 MiB of 4k random writes QD32 into a fresh qemu-img image
so=$1; kind=${2:-qimg}; bs=${3:-4k}; d=/var/tmp/s9; f=$d/wrk.img; rm -f $f
case $kind in qimg) qemu-img create -q -f vdi $f 1G; eng=external:$so;; raw) truncate -s 1G $f; eng=io_uring;; esac
perf record -q -a -o $d/wrk.data -e sched:sched_switch -g -- fio --name=x --filename=$f --rw=randwrite --bs=$bs \
  --iodepth=32 --direct=1 --size=1G --io_size=256M --randrepeat=0 --ioengine=$eng --output-format=json 2>/dev/null | python3 -c "
import json,sys; j=json.load(sys.stdin)['jobs'][0]; w=j['write']; p=w['clat_ns']['percentile']
print('MB/s %5.0f p99 %6.0f us' % (w['bw']/1024, p['99.000000']/1000))"
perf script -i $d/wrk.data 2>/dev/null | awk '/^[^ \t]/{comm=$1; sub(/-[0-9]+$/,"",comm); p=(comm ~ /^(fio|iou-wrk)/); n=0; next} p&&NF{n++; if(n>=2&&n<=6) s=s" <- "$2} /^$/{if(s!="")c[comm" "s]++; s=""} END{for(k in c) print "  " c[k], k}' | sort -rn | head -${4:-8}
rm -f $f $d/wrk.data
