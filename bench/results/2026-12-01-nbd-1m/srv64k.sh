#!/bin/bash
# srv1m.sh REPS TARGETS...: 1M writes QD8 over NBD, servers interleaved; server CPU from /proc
P=REPO/build-release/nbd/nbdkit-vdi-plugin.so
S=./nbd.sock
reps=$1; shift
for r in $(seq $reps); do for srv in "$@"; do
  rm -f $S
  case $srv in
  nbdkit-direct) nbdkit -f -U $S ./nbd-direct.so file=raw.img & ;;
  nbdkit-direct-t4) nbdkit -f -t 4 -U $S ./nbd-direct.so file=raw.img & ;;
  nbdkit-vdi) nbdkit -f -U $S $P file=full.vdi direct=true & ;;
  nbdkit-vdi-t4) nbdkit -f -t 4 -U $S $P file=full.vdi direct=true & ;;
  nbdkit-vdi-t8) nbdkit -f -t 8 -U $S $P file=full.vdi direct=true & ;;
  nbdkit-vdi-old) nbdkit -f -U $S OLD/build-release/nbd/nbdkit-vdi-plugin.so file=full.vdi direct=true & ;;
  qemu-nbd) qemu-nbd -f vdi --cache=none --aio=io_uring --persistent -k $S full.vdi & ;;
  qemu-nbd-raw) qemu-nbd -f raw --cache=none --aio=io_uring --persistent -k $S raw.img & ;;
  esac
  pid=$!; for i in $(seq 100); do [ -S $S ] && break; sleep 0.05; done
  c0=$(awk '{print $14+$15}' /proc/$pid/stat)
  perf stat -x, -e context-switches -p $pid -o srvcs.txt -- sleep 3.3 >/dev/null 2>&1 &
  ppid=$!
  fio --name=x --ioengine=nbd --uri="nbd+unix:///?socket=$S" --rw=randrw --rwmixread=70 --bs=64k --iodepth=16 --size=1g --unified_rw_reporting=mixed --time_based --runtime=3 --output-format=json --output=n.json >/dev/null 2>&1
  c1=$(awk '{print $14+$15}' /proc/$pid/stat)
  wait $ppid
  kill $pid; wait $pid 2>/dev/null
  python3 -c "
import json;j=json.load(open('n.json'))['jobs'][0];w=j['mixed'];n=w['total_ios']
cs=[l for l in open('srvcs.txt') if 'context' in l]; cs=float(cs[0].split(',')[0]) if cs else 0
print('%-17s %7.1f MB/s p50 %6.0f p99 %6.0f us | fio cpu %4.0f us/IO | server cpu %4.0f us/IO cs/IO %.1f'%('$srv',w['bw_bytes']/1e6,w['clat_ns']['percentile']['50.000000']/1e3,w['clat_ns']['percentile']['99.000000']/1e3,(j['usr_cpu']+j['sys_cpu'])/100*3e6/n,($c1-$c0)*1e4/n,cs/n))"
done; done
