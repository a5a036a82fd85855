#!/bin/bash
# ahead.sh REPS BS QD SIZE: fresh writes into new images, LIBVDI_AHEAD=0 vs 64, and raw-sparse
E=${ENGINE:-REPO/build-exp/fio/vdi.so}  # a build with the LIBVDI_AHEAD switch (gone from the engine)
V=REPO/build-exp/cli/vdi
RW=${RW:-randwrite}
for r in $(seq $1); do
 for t in raw-sparse qimg-0 qimg-64 vdi-0 vdi-64; do
  rm -f f.img f.vdi; sync
  case $t in
   raw-sparse) truncate -s 1G f.img; a="--ioengine=io_uring --filename=f.img"; env="";;
   qimg-*) qemu-img create -q -f vdi f.vdi 1G; a="--ioengine=external:$E --filename=f.vdi"; env="LIBVDI_AHEAD=${t#qimg-}";;
   vdi-*) $V create f.vdi 1G >/dev/null; a="--ioengine=external:$E --filename=f.vdi"; env="LIBVDI_AHEAD=${t#vdi-}";;
  esac
  env $env perf stat -x, -e context-switches,iomap:iomap_dio_rw_queued,io_uring:io_uring_queue_async_work -o ps.txt fio --name=x $a --rw=$RW --bs=$2 --iodepth=$3 --direct=1 --size=1g --io_size=$4 --randrepeat=0 --output-format=json --output=q.json >/dev/null 2>&1
  python3 -c "
import json;j=json.load(open('q.json'))['jobs'][0];w=j['write'];n=w['total_ios']
c={}
for l in open('ps.txt'):
  f=l.split(',')
  if len(f)>3 and f[0].replace('.','').isdigit(): c[f[2]]=float(f[0])
print('%-10s %7.1f MB/s p50 %6.0f p99 %6.0f us cpu %5.1f us/IO | cs/IO %.2f dio queued %.2f punted %.2f'%('$t',w['bw_bytes']/1e6,w['clat_ns']['percentile']['50.000000']/1e3,w['clat_ns']['percentile']['99.000000']/1e3,(j['usr_cpu']+j['sys_cpu'])/100*j['job_runtime']/1e3*1e6/n,c.get('context-switches',0)/n,c.get('iomap:iomap_dio_rw_queued',0)/n,c.get('io_uring:io_uring_queue_async_work',0)/n))"
 done
done
