#!/bin/bash
# README's examples run as written: the shell block of "The `vdi` tool",
# line by line in an empty folder with this vdi first on PATH (each line
# must exit 0, in order), as a new user would paste them.
#   readme.sh PATH-TO-vdi PATH-TO-README.md
. "$(dirname "$0")/lib.sh"
README=${2:?usage: $0 VDI README}

# The first ```sh block after the section's heading.
sed -n '/^## The `vdi` tool/,/^## /p' "$README" |
	sed -n '/^```sh$/,/^```$/p' | sed '1d;$d' >"$T/block.sh"
n=$(grep -c . "$T/block.sh")
[ "$n" -ge 10 ]
_result $? "README's vdi block found ($n lines)"

mkdir "$T/bin" "$T/work"
ln -s "$(cd "$(dirname "$VDI")" && pwd)/$(basename "$VDI")" "$T/bin/vdi"
while IFS= read -r line; do
	[ -n "$line" ] || continue
	ok "README: $line" env PATH="$T/bin:$PATH" bash -c "cd '$T/work' && $line"
done <"$T/block.sh"

# What the block did, checked: the snapshot's change reached base.vdi,
# which still holds disk.raw's data elsewhere.
if [ -n "$QEMU_IMG" ]; then
	head -c 1M /dev/zero >"$T/zero1m"
	"$QEMU_IMG" convert -f vdi -O raw "$T/work/base.vdi" "$T/base.raw"
	cmp -s -n 1048576 "$T/base.raw" "$T/zero1m"
	_result $? "the committed zeros are in base.vdi"
	cmp -s -i 25165824 "$T/base.raw" "$T/work/disk.raw"
	_result $? "base.vdi holds disk.raw's data past the discarded range"
fi

done_testing
