#!/bin/bash
# vdi compare against qemu-img compare on the same pairs: raw and VDI in
# every mix, same and different sizes, differing data, zeros stored or
# not, with and without -s (strict).  Output and exit status must match.
. "$(dirname "$0")/lib.sh"
need_qemu

VDI=$(cd "$(dirname "$VDI")" && pwd)/$(basename "$VDI")
cd "$T" || exit 1
truncate -s 4M a.raw
cp a.raw b.raw
printf 'X' | dd of=b.raw bs=1 seek=1234567 conv=notrunc status=none
"$QEMU_IMG" convert -O vdi a.raw a.vdi
"$QEMU_IMG" convert -O vdi b.raw b.vdi
truncate -s 5M c.raw
printf 'Y' | dd of=c.raw bs=1 seek=4200000 conv=notrunc status=none
truncate -s 5M d.raw
head -c 4M /dev/zero >z.raw
"$QEMU_IMG" create -q -f vdi e.vdi 4M
"$QEMU_IO" -f vdi -c 'write -P 0 2M 1M' e.vdi >/dev/null
"$VDI" create -q g.vdi 4M
"$QEMU_IO" -f vdi -c 'write -P 9 3M 512' g.vdi >/dev/null

for pair in "a.raw b.raw" "a.raw b.vdi" "a.vdi b.vdi" "b.vdi b.raw" \
	    "a.raw c.raw" "c.raw a.vdi" "a.vdi d.raw" "z.raw a.vdi" \
	    "e.vdi a.vdi" "a.vdi e.vdi" "g.vdi a.vdi" "a.vdi c.raw" "b.vdi g.vdi"; do
	for s in "" -s; do
		want=$("$QEMU_IMG" compare $s $pair 2>&1; echo "exit $?")
		got=$("$VDI" compare $s $pair 2>&1; echo "exit $?")
		is "compare $s $pair as qemu-img: $(echo $want)" "$got" "$want"
	done
done

# Strict mode and allocation.  QEMU's block status of a raw file comes
# from its holes (SEEK_DATA/SEEK_HOLE), one hole or data run at a time;
# that of a VDI image from its block map, one block at a time (free and
# zero blocks "zero", data blocks "data", in a static image also "zero"
# where its file has a hole); and the status says whether the run
# reaches the end of the disk.  Every pair of these, both ways, against
# qemu-img compare -s: same words, same exit status.
mkdir s && cd s || exit 1
head -c 4M /dev/urandom >rand
truncate -s 4M h0.raw                                  # all hole
truncate -s 4M h1.raw                                  # data at 1M-2M
dd if=rand of=h1.raw bs=1M skip=1 seek=1 count=1 conv=notrunc status=none
cp --sparse=always h1.raw h1same.raw                   # the same holes
cp --sparse=always h1.raw h1zero.raw                   # zeros stored at 3M-4M
dd if=/dev/zero of=h1zero.raw bs=1M seek=3 count=1 conv=notrunc status=none
cp rand full.raw                                       # no hole
cp rand punched.raw                                    # a hole at 2M-3M
fallocate -p -o 2M -l 1M punched.raw
head -c 4M /dev/zero >zeros.raw                        # zeros, no hole
head -c 1M /dev/urandom >one.raw                       # one block
"$QEMU_IMG" convert -O vdi h1.raw h1.vdi               # block 1 only
"$QEMU_IMG" convert -O vdi full.raw full.vdi
"$QEMU_IMG" convert -O vdi -o static=on full.raw full-static.vdi
"$QEMU_IMG" convert -O vdi -o static=on zeros.raw zs.vdi
cp --sparse=always zs.vdi zeros-static.vdi            # static, slots holes
rm zs.vdi
"$QEMU_IMG" convert -O vdi one.raw one.vdi
"$QEMU_IMG" create -q -f vdi zblock.vdi 4M             # zeros stored at 2M
"$QEMU_IO" -f vdi -c 'write -P 0 2M 1M' zblock.vdi >/dev/null
"$VDI" create -q h0.vdi 4M
files="h0.raw h1.raw h1same.raw h1zero.raw full.raw punched.raw zeros.raw
one.raw h1.vdi full.vdi full-static.vdi zeros-static.vdi one.vdi zblock.vdi
h0.vdi"
differ=0 same=0
for f1 in $files; do
	for f2 in $files; do
		want=$("$QEMU_IMG" compare -s "$f1" "$f2" 2>&1; echo "exit $?")
		got=$("$VDI" compare -s "$f1" "$f2" 2>&1; echo "exit $?")
		is "compare -s $f1 $f2 as qemu-img: $(echo $want)" "$got" "$want"
		case $want in *"exit 0") same=$((same + 1)) ;; *) differ=$((differ + 1)) ;; esac
	done
done
# The pairs must tell something: some strict pairs pass, some fail, and
# raw pairs fail on holes alone.
[ $same -ge 15 ] && [ $differ -ge 100 ]
_result $? "qemu-img: $same pairs the same, $differ different"
"$QEMU_IMG" compare -q h1.raw h1zero.raw
_result $? "h1.raw and h1zero.raw read the same"
exits "... but differ in strict mode (holes)" 1 "$VDI" compare -s h1.raw h1zero.raw
is "... at the first status change" "$(cat "$T/last.out")" "Strict mode: Offset 2097152 block status mismatch!"
cd .. || exit 1

# -f/-F force a format; -q prints nothing; errors exit 2.
exits "-f raw reads a VDI file as raw" 1 "$VDI" compare -f raw -F raw a.vdi b.vdi
exits "-q: different" 1 "$VDI" compare -q a.raw b.raw
is "-q prints nothing" "$(cat "$T/last.out" "$T/last.err")" ""
exits "a missing file" 2 "$VDI" compare a.raw nope.raw
grep -q "^vdi: compare: cannot open nope.raw" "$T/last.err"
_result $? "the missing file is named"
exits "-f qcow2" 2 "$VDI" compare -f qcow2 a.raw b.raw
ok "-p" "$VDI" compare -p a.vdi z.raw
grep -q '100.0%' "$T/last.err"
_result $? "-p draws the bar"

# A differencing image, which qemu-img cannot open, reads through its
# parent.
"$VDI" create -q -b b.vdi f.vdi
exits "a snapshot compares equal to its parent's raw copy" 0 "$VDI" compare f.vdi b.raw
"$VDI" zero -q f.vdi 1M 1M
exits "... and differs once written" 1 "$VDI" compare f.vdi b.raw
is "the first difference" "$(cat "$T/last.out")" "Content mismatch at offset 1234432!"

done_testing
