#!/bin/bash
# freshqd1.sh REPS TARGETS...: 4k random writes at QD1 over NBD into a new image each run (64 MiB written)
P=${PLUGIN:-REPO/build-release/nbd/nbdkit-vdi-plugin.so}
V=REPO/build-release/cli/vdi
S=./nbd.sock
reps=$1; shift
for r in $(seq $reps); do for srv in "$@"; do
  rm -f $S fresh.vdi fresh.raw fresh-q.vdi; sync
  case $srv in
  nbdkit-vdi-fresh) $V create fresh.vdi 1G >/dev/null; nbdkit -f -U $S $P file=fresh.vdi direct=true & ;;
  nbdkit-direct-sparse) truncate -s 1G fresh.raw; nbdkit -f -U $S ./nbd-direct.so file=fresh.raw & ;;
  qemu-nbd-fresh) qemu-img create -q -f vdi fresh-q.vdi 1G; qemu-nbd -f vdi --cache=none --aio=io_uring --persistent -k $S fresh-q.vdi & ;;
  esac
  pid=$!; for i in $(seq 100); do [ -S $S ] && break; sleep 0.05; done
  perf stat -x, -e context-switches,raw_syscalls:sys_enter -p $pid -o srv.txt &
  ppid=$!
  fio --name=x --ioengine=nbd --uri="nbd+unix:///?socket=$S" --rw=randwrite --bs=4k --iodepth=1 --size=1g --io_size=64m --randrepeat=0 --output-format=json --output=n.json >/dev/null 2>&1
  kill -INT $ppid; wait $ppid 2>/dev/null
  kill $pid; wait $pid 2>/dev/null
  python3 -c "
import json;j=json.load(open('n.json'))['jobs'][0];w=j['write'];n=w['total_ios']
c={}
for l in open('srv.txt'):
  f=l.split(',')
  if len(f)>3 and f[0].replace('.','').isdigit(): c[f[2]]=float(f[0])
print('%-22s p50 %5.0f p99 %6.0f us | server cs/IO %.2f syscalls/IO %.2f'%('$srv',w['clat_ns']['percentile']['50.000000']/1e3,w['clat_ns']['percentile']['99.000000']/1e3,c.get('context-switches',0)/n,c.get('raw_syscalls:sys_enter',0)/n))"
done; done
