#!/bin/bash
# usage: trace-4k.sh ENGINE_SO [vdi|qimg|raw]   (VDI=path of the vdi binary, default build/cli/vdi)
# 256 MiB of 4k random writes at QD32 into a fresh 1 GiB image; prints MB/s, p50/p99, the
# top places where fio's own thread slept (sched_switch stacks) and how often it slept in fallocate
so=$1; kind=${2:-vdi}; d=${TMPDIR:-/var/tmp}; f=$d/f4k-trace.img
rm -f $f
case $kind in
vdi) ${VDI:-build/cli/vdi} create $f 1G >/dev/null || exit 1; eng=external:$so;;
qimg) qemu-img create -q -f vdi $f 1G || exit 1; eng=external:$so;;
raw) truncate -s 1G $f; eng=io_uring;;
esac
perf record -q -o $d/f4k.data -e sched:sched_switch -g -- fio --name=x --filename=$f --rw=randwrite --bs=4k \
  --iodepth=32 --direct=1 --size=1G --io_size=256M --randrepeat=0 --ioengine=$eng --lat_percentiles=1 \
  --output-format=json > $d/f4k.json 2>/dev/null
python3 -c "
import json; j=json.load(open('$d/f4k.json'))['jobs'][0]['write']; p=j['lat_ns']['percentile']
print('MB/s %.0f p50 %.0f us p99 %.0f us' % (j['bw']/1024, p['50.000000']/1000, p['99.000000']/1000))"
perf script -i $d/f4k.data 2>/dev/null | awk '/^fio /{p=1; n=0; next} /^[^ \t]/{p=0} p&&NF{n++; if(n>=2&&n<=4) s=s" <- "$2} /^$/{if(s!="")c[s]++; s=""} END{for(k in c) print "  " c[k], k}' | sort -rn | head -3
echo "  slept in ext4_fallocate: $(perf script -i $d/f4k.data 2>/dev/null | grep -c ext4_fallocate)"
rm -f $f $d/f4k.data $d/f4k.json
