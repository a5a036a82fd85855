#!/bin/bash
# vdi measure: qemu-img measure's shape and numbers.  QEMU's VDI driver
# cannot measure, so for -O vdi the oracle is the file vdi convert (and
# vdi create) writes; for -O raw it is qemu-img measure itself.
. "$(dirname "$0")/lib.sh"
need_qemu
need_python

VDI=$(cd "$(dirname "$VDI")" && pwd)/$(basename "$VDI")
cd "$T" || exit 1
truncate -s 4M empty.raw
make_sparse some.raw 5000000 4096 0 1048576 3500000
head -c 3M /dev/urandom >full.raw
"$QEMU_IMG" convert -O vdi some.raw some.vdi
head -c 2M /dev/zero >zeros.raw
"$VDI" create -q -b some.vdi snap.vdi
"$VDI" zero -q snap.vdi 0 1M 2>/dev/null || "$VDI" zero -q -b some.vdi snap.vdi 0 1M

for f in empty.raw some.raw full.raw some.vdi zeros.raw snap.vdi; do
	for o in "" "-o block_size=128K"; do
		"$VDI" measure --output=json -O vdi $o "$f" >m.json
		rm -f out.vdi
		"$VDI" convert -O vdi $o "$f" out.vdi
		is "measure -O vdi $o $f: required is what convert writes" \
			"$(json_get m.json 'j["required"]')" "$(stat -c %s out.vdi)"
		"$VDI" measure --output=json -O vdi $o -o static "$f" >s.json
		rm -f out.vdi
		"$VDI" convert -O vdi $o -o static "$f" out.vdi
		is "measure -O vdi $o -o static $f: what a static convert writes" \
			"$(json_get s.json 'j["required"], j["fully-allocated"]')" \
			"($(stat -c %s out.vdi), $(stat -c %s out.vdi))"
		is "measure $o $f: fully allocated is the static size" \
			"$(json_get m.json 'j["fully-allocated"]')" "$(stat -c %s out.vdi)"
	done
	case $f in snap.vdi) continue ;; esac # QEMU cannot open snapshots
	"$QEMU_IMG" measure --output=json -O raw "$f" >q.json
	"$VDI" measure --output=json -O raw "$f" >v.json
	json_same q.json v.json
	_result $? "measure -O raw $f: qemu-img measure's JSON"
	is "measure -O raw $f: human output as qemu-img's" \
		"$("$VDI" measure -O raw "$f")" "$("$QEMU_IMG" measure -O raw "$f")"
done

"$VDI" measure --output=json -O vdi --size 10G >m.json
"$VDI" create -q -o static sz.vdi 10M
"$VDI" create -q sd.vdi 10G
is "--size: required is an empty image" "$(json_get m.json 'j["required"]')" "$(stat -c %s sd.vdi)"
"$VDI" measure --output=json -O vdi --size 10M >m.json
is "--size: fully allocated is a static image" "$(json_get m.json 'j["fully-allocated"]')" "$(stat -c %s sz.vdi)"
"$QEMU_IMG" measure --output=json -O raw --size 10G >q.json
"$VDI" measure --output=json --size 10G >v.json
json_same q.json v.json
_result $? "--size -O raw as qemu-img"
exits "-o without -O vdi" 1 "$VDI" measure -o static some.raw
exits "a FILE with --size" 1 "$VDI" measure --size 1G some.raw
exits "-O qcow2" 1 "$VDI" measure -O qcow2 some.raw
ok "-p" "$VDI" measure -p -O vdi some.raw
grep -q '100.0%' "$T/last.err"
_result $? "-p draws the bar"

done_testing
