#!/bin/bash
# falloc.sh REPS RW BS QD SIZE: fresh writes, raw-sparse vs vdi (no fallocate) vs vdi with a fallocate per new slot
# vdi-falloc: a build with a LIBVDI_FALLOC switch (fallocate of the slot before a partial first write);
# vdi-falloc-full: the same before whole-block writes too.  The switch is gone: the engine now reserves
# before first writes shorter than 16 KiB.  task-clock: the whole fio process, io-wq workers included.
E=REPO/build-exp/fio/vdi.so
V=REPO/build-exp/cli/vdi
for r in $(seq $1); do
 for t in raw-sparse vdi vdi-falloc vdi-falloc-full; do
  rm -f f.img f.vdi; sync
  case $t in
   raw-sparse) truncate -s 1G f.img; a="--ioengine=io_uring --filename=f.img"; env="";;
   vdi) $V create f.vdi 1G >/dev/null; a="--ioengine=external:$E --filename=f.vdi"; env="";;
   vdi-falloc) $V create f.vdi 1G >/dev/null; a="--ioengine=external:$E --filename=f.vdi"; env="LIBVDI_FALLOC=1";;
   vdi-falloc-full) $V create f.vdi 1G >/dev/null; a="--ioengine=external:$E --filename=f.vdi"; env="LIBVDI_FALLOC=1 LIBVDI_FALLOC_FULL=1";;
  esac
  env $env perf stat -x, -e context-switches,io_uring:io_uring_queue_async_work,task-clock -o pf.txt fio --name=x $a --rw=$2 --bs=$3 --iodepth=$4 --direct=1 --size=1g --io_size=$5 --randrepeat=0 ${MIX:+--rwmixread=$MIX} --unified_rw_reporting=mixed --output-format=json --output=q.json >/dev/null 2>&1
  python3 -c "
import json;j=json.load(open('q.json'))['jobs'][0];w=j['mixed'];n=w['total_ios']
c={}
for l in open('pf.txt'):
  f=l.split(',')
  if len(f)>3 and f[0].replace('.','').isdigit(): c[f[2]]=float(f[0])
print('%-16s %7.1f MB/s p50 %6.0f p99 %6.0f us cpu %5.1f us/IO | cs/IO %.2f punted %.2f task-clock %5.1f us/IO'%('$t',w['bw_bytes']/1e6,w['clat_ns']['percentile']['50.000000']/1e3,w['clat_ns']['percentile']['99.000000']/1e3,(j['usr_cpu']+j['sys_cpu'])/100*j['job_runtime']/1e3*1e6/n,c.get('context-switches',0)/n,c.get('io_uring:io_uring_queue_async_work',0)/n,c.get('task-clock',0)*1e3/n))"
 done
done
