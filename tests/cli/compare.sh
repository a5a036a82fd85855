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

# Strict mode on two raw files depends on the holes the file system
# reports; every pair here has a VDI side, or is not strict.
for pair in "a.raw b.raw" "a.raw b.vdi" "a.vdi b.vdi" "b.vdi b.raw" \
	    "a.raw c.raw" "c.raw a.vdi" "a.vdi d.raw" "z.raw a.vdi" \
	    "e.vdi a.vdi" "a.vdi e.vdi" "g.vdi a.vdi" "a.vdi c.raw" "b.vdi g.vdi"; do
	for s in "" -s; do
		case "$s $pair" in "-s "*.raw\ *.raw) continue ;; esac
		want=$("$QEMU_IMG" compare $s $pair 2>&1; echo "exit $?")
		got=$("$VDI" compare $s $pair 2>&1; echo "exit $?")
		is "compare $s $pair as qemu-img: $(echo $want)" "$got" "$want"
	done
done

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
