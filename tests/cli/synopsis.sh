#!/bin/bash
# vdi(1)'s SYNOPSIS says what each command's --help says: the same usage
# lines, option for option (markup aside), and every command has its
# section.
#   synopsis.sh PATH-TO-vdi PATH-TO-vdi.1.scd
. "$(dirname "$0")/lib.sh"
need_python
MAN=${2:?usage: $0 VDI VDI.1.SCD}

cmds=$("$VDI" --help | sed -n 's/^  \([a-z]*\) .*/\1/p')
n=$(echo $cmds | wc -w)
[ "$n" -ge 14 ]
_result $? "vdi --help lists $n commands"

# The usage lines of --help, continuation lines joined, one per line.
for c in $cmds; do
	"$VDI" $c --help | python3 -c '
import re, sys
res = []
for line in sys.stdin:
    l = line.strip()
    if not l:
        if res: break
        continue
    l = l[7:] if l.startswith("Usage: ") else l
    if l.startswith("vdi "): res.append(l)
    else: res[-1] += " " + l
print("\n".join(re.sub(r"\s+", " ", r) for r in res))'
done >"$T/help"
# The SYNOPSIS lines of the page, markup removed.
sed -n '/^# SYNOPSIS/,/^# DESCRIPTION/p' "$MAN" | grep '^\*vdi [a-z]' |
	grep -v '^\*vdi help\*' | sed 's/[*_]//g; s/  */ /g' >"$T/man"
is "the page has as many usage lines as --help" "$(wc -l <"$T/man")" "$(wc -l <"$T/help")"
while IFS= read -r line; do
	grep -qxF -- "$line" "$T/man"
	_result $? "SYNOPSIS has: $line"
done <"$T/help"
for c in $cmds; do
	grep -q "^## .*\b$c\b" "$MAN"
	_result $? "the page has a section for $c"
done

done_testing
