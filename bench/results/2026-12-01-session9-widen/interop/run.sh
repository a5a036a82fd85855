#!/bin/bash
# QEMU-layout images (qemu-img create) written by this session's engine through fio with O_DIRECT, then
# interop-check.sh (bench/results/2026-12-01-session8-interop/, copied beside it): QEMU allocates two blocks, at the count; both checks clean; every block equal.
set -u
E=/work/main/build-exp/fio/vdi.so; export VDI=/work/main/build-exp/cli/vdi
f4k() { fio --name=x --filename=$1 --rw=randwrite --bs=4k --iodepth=32 --direct=1 --size=${2:-256M} --randrepeat=0 --ioengine=external:$E "${@:3}" >/dev/null 2>&1; }
# 1: clean close, 4k random into 256 MiB of a 1 GiB disk
rm -f a.vdi; qemu-img create -q -f vdi a.vdi 1G; f4k a.vdi 256M; bash interop-check.sh a.vdi
# 2: killed mid-run (size set ahead, slots reserved ahead, widened zeros past the last slot)
rm -f b.vdi; qemu-img create -q -f vdi b.vdi 1G; f4k b.vdi 1G --time_based --runtime=30 & p=$!; sleep 2; kill -9 $(pgrep -P $p fio 2>/dev/null) $p 2>/dev/null; pkill -9 -f "filename=b.vdi"; wait 2>/dev/null
echo "  b.vdi size $(stat -c %s b.vdi)"; bash interop-check.sh b.vdi
# 3: four threads, mixed sizes, clean
rm -f c.vdi; qemu-img create -q -f vdi c.vdi 1G; fio --name=x --filename=c.vdi --rw=randwrite --bsrange=512-64k --iodepth=16 --direct=1 --size=64M --offset_increment=64M --numjobs=4 --thread --randrepeat=0 --ioengine=external:$E >/dev/null 2>&1; bash interop-check.sh c.vdi
# 4: four threads killed
rm -f d.vdi; qemu-img create -q -f vdi d.vdi 1G; fio --name=x --filename=d.vdi --rw=randwrite --bsrange=512-64k --iodepth=16 --direct=1 --size=256M --offset_increment=256M --numjobs=4 --thread --time_based --runtime=30 --randrepeat=0 --ioengine=external:$E >/dev/null 2>&1 & sleep 2; pkill -9 -f "filename=d.vdi"; wait 2>/dev/null
echo "  d.vdi size $(stat -c %s d.vdi)"; bash interop-check.sh d.vdi
