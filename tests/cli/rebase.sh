#!/bin/bash
# vdi rebase (safe and -u), vdi amend and vdi info -U.  The data oracle
# is QEMU reading raw copies (and, once an image stands alone, the image
# itself); the headers are read back with vdi info and from the bytes.
. "$(dirname "$0")/lib.sh"
need_qemu
need_python

VDI=$(cd "$(dirname "$VDI")" && pwd)/$(basename "$VDI")
cd "$T" || exit 1
uuid_of() { "$VDI" info --no-parent --output=json "$1" | python3 -c 'import json,sys; d=json.load(sys.stdin)["format-specific"]["data"]; print(d[sys.argv[1]])' "$2"; }

# base <- mid <- top, each level changing some blocks.
"$VDI" create -q base.vdi 8M
"$QEMU_IO" -f vdi -c 'write -P 1 0 8M' base.vdi >/dev/null
"$VDI" create -q -b base.vdi mid.vdi
"$VDI" zero -q mid.vdi 1M 2M
"$VDI" create -q -b mid.vdi top.vdi
"$VDI" zero -q top.vdi 5M 1M
"$VDI" convert -O raw top.vdi before.raw
"$VDI" create -q -b top.vdi leaf.vdi
top_mod=$(uuid_of top.vdi modification-uuid)

ok "rebase -b the grandparent" "$VDI" rebase -p -b base.vdi top.vdi
grep -q '100.0%' "$T/last.err"
_result $? "rebase -p draws the bar"
"$VDI" convert -O raw top.vdi after.raw
ok "top reads the same (qemu-img compare of the raw copies)" "$QEMU_IMG" compare before.raw after.raw
is "top's parent is base" "$(uuid_of top.vdi link-uuid)" "$(uuid_of base.vdi uuid)"
is "top links to base's modification UUID" "$(uuid_of top.vdi parent-uuid)$(uuid_of top.vdi link-uuid)" \
	"$(uuid_of base.vdi modification-uuid)$(uuid_of base.vdi uuid)"
is "top keeps its modification UUID" "$(uuid_of top.vdi modification-uuid)" "$top_mod"
ok "so its own child still opens" "$VDI" info leaf.vdi
ok "top checks clean" "$VDI" check top.vdi

ok "rebase -b \"\": no parent" "$VDI" rebase --output=json -b "" top.vdi
is "the JSON report" "$(json_get last.out 'j["unsafe"]')" False
is "top is now dynamic" "$(uuid_of top.vdi image-type)" dynamic
ok "QEMU opens it: qemu-img check" "$QEMU_IMG" check top.vdi
ok "and reads what top read" "$QEMU_IMG" compare -f vdi -F raw top.vdi before.raw
ok "its child still opens" "$VDI" info leaf.vdi

# The issue's case: a commit of one snapshot strands its sibling, and
# rebase -u links it again.
"$VDI" create -q -b base.vdi A.vdi
"$VDI" create -q -b base.vdi B.vdi
"$VDI" zero -q A.vdi 0 1M
"$VDI" commit -q A.vdi
exits "after the commit of A, B refuses to open" 1 "$VDI" info B.vdi
exits "a safe rebase cannot read B's old parent" 1 "$VDI" rebase -b base.vdi B.vdi
grep -q "^vdi: rebase: hint: .*'vdi rebase -u -b base.vdi B.vdi'" "$T/last.err"
_result $? "and says to use -u"
ok "rebase -u links B to base again" "$VDI" rebase -u -b base.vdi B.vdi
ok "B opens" "$VDI" info B.vdi
"$VDI" convert -O raw base.vdi base.raw
ok "B reads base's current data" "$VDI" compare B.vdi base.raw

# What a rebase refuses.
"$VDI" create -q -b base.vdi C.vdi
"$VDI" create -q -b C.vdi D.vdi
"$VDI" create -q other.vdi 4M
one() { # DESCRIPTION PATTERN COMMAND...
	local d=$1 p=$2
	shift 2
	exits "$d" 1 "$@"
	grep -q "^vdi: rebase: .*$p" "$T/last.err"
	_result $? "$d: says '$p'"
}
one "onto itself" "cannot be its own parent" "$VDI" rebase -u -b C.vdi C.vdi
one "onto its own child" "reads from this image" "$VDI" rebase -b D.vdi C.vdi
one "onto another size" "has size 4194304" "$VDI" rebase -u -b other.vdi C.vdi
one "an image without parent" "not a differencing image" "$VDI" rebase -b base.vdi other.vdi
one "-u onto nothing" "drop -u" "$VDI" rebase -u -b "" C.vdi
one "no -b" "-b NEWPARENT" "$VDI" rebase C.vdi

# amend: description, UUIDs; the modification UUID stays.
base_mod=$(uuid_of base.vdi modification-uuid)
ok "amend -o description" "$VDI" amend -o 'description=a,,b' C.vdi
is "the description" "$(uuid_of C.vdi description)" "a,b"
ok "C still opens" "$VDI" info C.vdi
exits "a new UUID for base, whose children are next to it" 1 "$VDI" amend -o uuid=random base.vdi
grep -q "^vdi: amend: [0-9]* children next to base.vdi (.*C.vdi.*) link to its UUID and would no longer find it; use --force" "$T/last.err"
_result $? "the refusal names the children"
new=6a1c5e36-8c1f-4a43-9d44-0e1a3c4b5d6e
ok "amend --force -o uuid=UUID" "$VDI" amend --force --output=json -o uuid=$new base.vdi
grep -q "warning: .*C.vdi.* no longer find" "$T/last.err"
_result $? "--force warns about the children"
is "the JSON report" "$(json_get last.out 'j["uuid"]')" "$new"
stored=$(python3 -c 'import sys,uuid; f=open(sys.argv[1],"rb"); f.seek(0x188); print(uuid.UUID(bytes_le=f.read(16)))' base.vdi)
is "stored in VirtualBox order at 0x188" "$stored" "$new"
is "base keeps its modification UUID" "$(uuid_of base.vdi modification-uuid)" "$base_mod"
exits "C no longer finds its parent" 1 "$VDI" info C.vdi
ok "amend -o parent-uuid links C again (sethdparentuuid)" "$VDI" amend -o parent-uuid=$new C.vdi
ok "C opens again" "$VDI" info C.vdi
exits "a new parent link for an image whose chain opens" 1 "$VDI" amend -o parent-uuid=$(uuid_of other.vdi uuid) C.vdi
grep -q "opens with its parent; a new link breaks that; use --force" "$T/last.err"
_result $? "needs --force"
exits "parent UUIDs of an image without parent" 1 "$VDI" amend -o parent-uuid=$new other.vdi
exits "an unknown -o key" 1 "$VDI" amend -o colour=red other.vdi
exits "a bad UUID" 1 "$VDI" amend -o uuid=nope other.vdi
exits "nothing to change" 1 "$VDI" amend other.vdi

# info -U reads an image a writer holds, and warns.
"$QEMU_IO" -f vdi -c 'sleep 30000' other.vdi >/dev/null 2>&1 &
holder=$!
for _ in $(seq 50); do "$VDI" info other.vdi >/dev/null 2>&1 || break; sleep 0.1; done
exits "info of an image a writer holds" 1 "$VDI" info other.vdi
grep -q "in use by another process" "$T/last.err"
_result $? "says it is in use"
ok "info -U reads it" "$VDI" info -U --output=json other.vdi
is "its size" "$(json_get last.out 'j["virtual-size"]')" 4194304
grep -q "^vdi: info: warning: other.vdi is read without a lock (--force-share); a writer may be changing it$" "$T/last.err"
_result $? "and warns that it may be changing"
ok "--force-share, the long form" "$VDI" info --force-share other.vdi
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null

done_testing
