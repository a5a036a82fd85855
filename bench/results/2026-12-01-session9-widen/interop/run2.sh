#!/bin/bash
# Both layouts, final engine (4 GiB disks, writes in the first GiB): images left by fio through vdi.so (O_DIRECT, 4k random), closed or killed, then
# interop-check.sh: QEMU allocates two blocks at the count, both checks clean, every block equal.
set -u
E=/work/main/build-exp/fio/vdi.so; export VDI=/work/main/build-exp/cli/vdi
for layout in vdi qimg; do
  for mode in clean killed; do
    f=$layout-$mode.vdi; rm -f $f
    if [ $layout = vdi ]; then $VDI create $f 4G >/dev/null; else qemu-img create -q -f vdi $f 4G; fi
    if [ $mode = clean ]; then
      fio --name=x --filename=$f --rw=randwrite --bsrange=512-64k --iodepth=32 --direct=1 --size=1G --io_size=128M --numjobs=2 --thread --offset_increment=512M --size=512M --randrepeat=0 --fsync=64 --ioengine=external:$E >/dev/null 2>&1
    else
      fio --name=x --filename=$f --rw=randwrite --bs=4k --iodepth=32 --direct=1 --size=1G --time_based --runtime=30 --fsync=256 --randrepeat=0 --ioengine=external:$E >/dev/null 2>&1 & sleep 3; pkill -9 -f "filename=$f"; wait 2>/dev/null
    fi
    bash interop-check.sh $f
  done
done
