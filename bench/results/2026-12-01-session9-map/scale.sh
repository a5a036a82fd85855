#!/bin/bash
# Open time and peak RSS for fresh 1, 64 and 512 TiB images: vdi info, open + one 4 KiB write + close
# (onewrite.c), this session's engine (new) against 555ad9d (old), and QEMU; three interleaved rounds.
NEW=/work/main/build-exp/cli/vdi; OLD=/work/wt-s9base/build-release/cli/vdi
T() { /usr/bin/time -f "%e s %M KB %R minflt %U u %S s" "$@" 2>&1 >/dev/null | tail -1; }
for sz in 1T 64T $((0x1fffff8000000)); do
  rm -f img.vdi; $NEW create img.vdi $sz >/dev/null || exit 1
  for r in 1 2 3; do
    off=$(( (r * 16 + 10) << 20 ))
    echo "$sz r$r info-new      $(T $NEW info img.vdi)"
    echo "$sz r$r info-old      $(T $OLD info img.vdi)"
    echo "$sz r$r qemu-img-info $(T qemu-img info img.vdi)"
    echo "$sz r$r write-new     $(T ./onewrite-new img.vdi $off)"
    echo "$sz r$r write-old     $(T ./onewrite-old img.vdi $((off + (1 << 20))))"
    echo "$sz r$r qemu-io-write $(T qemu-io -f vdi -c "write $((off + (2 << 20))) 4k" img.vdi)"
  done
done
rm -f img.vdi
