#!/bin/bash
# fresh1m.sh REPS TARGETS...: 1 GiB of 1M writes QD8 over NBD into a new image each run
# Run in a scratch folder holding full.vdi (vdi create + fio write 1m through vdi.so), raw.img (1 GiB
# written by fio) and nbd-direct.so (cc -O2 -shared -fPIC -o nbd-direct.so REPO/bench/nbd-direct.c).
P=${PLUGIN:-REPO/build-release/nbd/nbdkit-vdi-plugin.so}
V=REPO/build-release/cli/vdi
S=./nbd.sock
reps=$1; shift
for r in $(seq $reps); do for srv in "$@"; do
  rm -f $S fresh.vdi fresh.raw fresh-q.vdi; sync
  case $srv in
  nbdkit-vdi-fresh) $V create fresh.vdi 1G >/dev/null; nbdkit -f -U $S $P file=fresh.vdi direct=true & ;;
  nbdkit-vdi-old-fresh) $V create fresh.vdi 1G >/dev/null; nbdkit -f -U $S OLD/build-release/nbd/nbdkit-vdi-plugin.so file=fresh.vdi direct=true & ;;
  nbdkit-direct-sparse) truncate -s 1G fresh.raw; nbdkit -f -U $S ./nbd-direct.so file=fresh.raw & ;;
  qemu-nbd-fresh) qemu-img create -q -f vdi fresh-q.vdi 1G; qemu-nbd -f vdi --cache=none --aio=io_uring --persistent -k $S fresh-q.vdi & ;;
  esac
  pid=$!; for i in $(seq 100); do [ -S $S ] && break; sleep 0.05; done
  c0=$(awk '{print $14+$15}' /proc/$pid/stat)
  fio --name=x --ioengine=nbd --uri="nbd+unix:///?socket=$S" --rw=write --bs=1m --iodepth=8 --size=1g --output-format=json --output=n.json >/dev/null 2>&1
  c1=$(awk '{print $14+$15}' /proc/$pid/stat)
  kill $pid; wait $pid 2>/dev/null
  python3 -c "
import json;j=json.load(open('n.json'))['jobs'][0];w=j['write'];n=w['total_ios']
print('%-22s %7.1f MB/s p50 %6.0f p99 %6.0f us | server cpu %4.0f us/IO'%('$srv',w['bw_bytes']/1e6,w['clat_ns']['percentile']['50.000000']/1e3,w['clat_ns']['percentile']['99.000000']/1e3,($c1-$c0)*1e4/n))"
done; done
