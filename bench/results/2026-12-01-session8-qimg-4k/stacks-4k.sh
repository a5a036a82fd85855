#!/bin/bash
# usage: stacks-4k.sh ENGINE_SO
# 256 MiB of 4k random writes at QD32 into a fresh qemu-img-made VDI of 1 GiB; counts the
# sleeps of fio's own thread by their deepest 8 kernel frames (perf, sched:sched_switch)
so=$1; d=/var/tmp; f=$d/stk.img; rm -f $f; qemu-img create -q -f vdi $f 1G
perf record -q -o $d/stk.data -e sched:sched_switch -g -- fio --name=x --filename=$f --rw=randwrite --bs=4k \
  --iodepth=32 --direct=1 --size=1G --io_size=256M --randrepeat=0 --ioengine=external:$so >/dev/null 2>&1
perf script -i $d/stk.data 2>/dev/null | awk '/^fio /{p=1; n=0; next} /^[^ \t]/{p=0} p&&NF{n++; if(n>=2&&n<=9) s=s" <- "$2} /^$/{if(s!="")c[s]++; s=""} END{for(k in c) print "  " c[k], k}' | sort -rn | head -5
