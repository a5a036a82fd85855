#!/bin/bash
# usage: DIR=folder-with-full.vdi-full.raw-nbd-direct.so PLUGIN=... qd1-three-servers.sh
# QD1 4k randread/randwrite p50 through fio's nbd engine, 3 rounds: nbdkit-vdi (direct=true) on full.vdi,
# the least plugin (bench/nbd-direct.c, built as its header says) on full.raw, qemu-nbd --cache=none --aio=io_uring on full.vdi
d=${DIR:-.}; sock=$d/s.sock
for r in 1 2 3; do for t in vdi least qemu; do
  rm -f $sock
  case $t in
  vdi) nbdkit -f -U $sock ${PLUGIN:-build-release/nbd/nbdkit-vdi-plugin.so} file=$d/full.vdi direct=true & pid=$!;;
  least) nbdkit -f -U $sock $d/nbd-direct.so file=$d/full.raw & pid=$!;;
  qemu) qemu-nbd -f vdi --cache=none --aio=io_uring --persistent -k $sock $d/full.vdi & pid=$!;;
  esac
  sleep 0.7
  for rw in randread randwrite; do
    fio --name=x --ioengine=nbd --uri="nbd+unix:///?socket=$sock" --rw=$rw --bs=4k --iodepth=1 --size=1G --time_based --runtime=3 --output-format=json --output=$d/o.json >/dev/null 2>&1
    echo "$r $t $rw $(python3 -c "import json; j=json.load(open('$d/o.json'))['jobs'][0]; x=j['read'] if '$rw'=='randread' else j['write']; print('p50', x['clat_ns']['percentile']['50.000000']//1000, 'us')")"
  done
  kill $pid; wait $pid 2>/dev/null
done; done
