#!/bin/bash
# The examples of docs/vdi-tool.md ("Examples") and of vdi(1) (EXAMPLES)
# run as written: each document's lines in order, in an empty folder of
# its own, with this vdi first on PATH; each line must exit 0.  (README's
# block is tests/cli/readme.sh.)
#   examples.sh PATH-TO-vdi SOURCE-ROOT
. "$(dirname "$0")/lib.sh"
need_qemu
SRC=${2:?usage: $0 VDI SOURCE-ROOT}
command -v jq >/dev/null || skip_all "jq not found"

mkdir "$T/bin"
ln -s "$(cd "$(dirname "$VDI")" && pwd)/$(basename "$VDI")" "$T/bin/vdi"

run_lines() { # NAME FILE-OF-LINES
	local name=$1 n=0 line
	mkdir "$T/$name"
	while IFS= read -r line; do
		case $line in '' | '#'*) continue ;; esac
		n=$((n + 1))
		ok "$name: $line" env PATH="$T/bin:$PATH" bash -c "cd '$T/$name' && $line"
	done <"$2"
	[ "$n" -ge 10 ]
	_result $? "$name: $n example lines found"
}

sed -n '/^## Examples$/,/^## /p' "$SRC/docs/vdi-tool.md" |
	sed -n '/^```sh$/,/^```$/p' | grep -v '^```' >"$T/docs.txt"
run_lines docs "$T/docs.txt"

sed -n '/^# EXAMPLES$/,/^# VERSION$/p' "$SRC/man/vdi.1.scd" |
	awk '/^```$/ { inside = !inside; next } inside' >"$T/man.txt"
run_lines man "$T/man.txt"

done_testing
