#!/bin/bash
# syscpu.sh REPS: 4k random writes QD32, 256 MiB into a new image/file; CPU of the whole machine
# (/proc/stat: user+nice+system+irq+softirq, all CPUs) per write, so kworkers and io-wq count too.
for r in $(seq $1); do
 for t in raw-sparse vdi-before vdi-now; do
  rm -f f.img f.vdi; sync; sleep 1
  case $t in
   raw-sparse) truncate -s 1G f.img; a="--ioengine=io_uring --filename=f.img";;
   vdi-before) REPO/build-release/cli/vdi create f.vdi 1G >/dev/null; a="--ioengine=external:OLD/build-release/fio/vdi.so --filename=f.vdi";;
   vdi-now) REPO/build-release/cli/vdi create f.vdi 1G >/dev/null; a="--ioengine=external:REPO/build-release/fio/vdi.so --filename=f.vdi";;
  esac
  s0=$(awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat)
  fio --name=x $a --rw=randwrite --bs=4k --iodepth=32 --direct=1 --size=1g --io_size=256m --randrepeat=0 --output-format=json --output=q.json >/dev/null 2>&1
  s1=$(awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat)
  python3 -c "
import json,os;j=json.load(open('q.json'))['jobs'][0];w=j['write'];n=w['total_ios'];hz=os.sysconf('SC_CLK_TCK')
print('%-11s %6.1f MB/s  machine CPU %5.1f us/IO  fio job %5.1f us/IO'%('$t',w['bw_bytes']/1e6,($s1-$s0)/hz*1e6/n,(j['usr_cpu']+j['sys_cpu'])/100*j['job_runtime']/1e3*1e6/n))"
 done
done
