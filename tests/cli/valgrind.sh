#!/bin/bash
# Every vdi command under valgrind's memcheck: no invalid access, no use of
# uninitialised memory, no definite or indirect leak, on success and on the
# usual error paths (a missing file, a refused resize, a full disk).
#
# Memcheck cannot see io_uring reads fill a buffer (see valgrind.supp): the
# two places where vdi convert looks at bytes read through a ring are
# suppressed, and one convert without the suppressions shows how many
# reports that hides.
#
# Only in a build without sanitizers (valgrind and ASan do not mix): meson
# passes -Db_sanitize as VDI_SANITIZE, and VALGRIND (empty: not found).
. "$(dirname "$0")/lib.sh"

VALGRIND=${VALGRIND-$(command -v valgrind || true)}
SUPP=$(dirname "$0")/valgrind.supp
case ${VDI_SANITIZE:-none} in
none) ;;
*) skip_all "built with -Db_sanitize=$VDI_SANITIZE: valgrind does not run sanitized programs" ;;
esac
[ -n "$VALGRIND" ] && [ -x "$VALGRIND" ] || skip_all "valgrind not found"
# Whether valgrind runs at all here, without memcheck: a memcheck error in
# vdi is a failure below, never a reason to skip.
"$VALGRIND" -q --tool=none "$(command -v true)" >/dev/null 2>&1 ||
	skip_all "valgrind does not run here"

MEMCHECK=(--error-exitcode=99 --leak-check=full
	--errors-for-leak-kinds=definite,indirect
	--show-leak-kinds=definite,indirect --num-callers=30)

# vg STATUS DESCRIPTION ARGS...: `vdi ARGS` under memcheck must exit with
# STATUS (never 99, memcheck's) and leave an empty report.  Set PREFIX to
# run it through a wrapper (a function taking the command).
vg() {
	local want=$1 desc=$2 rc
	shift 2
	${PREFIX:-} "$VALGRIND" -q "${MEMCHECK[@]}" --suppressions="$SUPP" \
		--log-file="$T/vg.log" "$VDI" "$@" >"$T/last.out" 2>"$T/last.err"
	rc=$?
	if [ $rc = "$want" ] && [ ! -s "$T/vg.log" ]; then
		_result 0 "$desc"
		return
	fi
	_result 1 "$desc"
	echo "# vdi $*: exit $rc (expected $want)"
	sed 's/^/# err: /' "$T/last.err" | head -5
	sed 's/^/# valgrind: /' "$T/vg.log" | head -60
}

# Run a command with a file size limit of 12 MiB, SIGXFSZ ignored: past it
# writes fail with EFBIG.
limited() { (trap '' XFSZ; ulimit -f 12288; exec "$@"); }

VDI=$(realpath "$VDI") && cd "$T" || exit 1

vg 0 "--version" --version

# ---- create, and data to work on
vg 0 "create" create a.vdi 16M
vg 0 "create -o static=on,block_size=2M" create -q -o static=on,block_size=2M s.vdi 8M
head -c 3M /dev/urandom >r.raw
truncate -s 16M r.raw
head -c 1M /dev/urandom | dd of=r.raw bs=1M seek=9 conv=notrunc status=none

# ---- convert, both ways
vg 0 "convert raw to VDI" convert -O vdi r.raw c.vdi
vg 0 "convert VDI to raw" convert c.vdi back.raw
cmp -s back.raw r.raw
_result $? "the round trip reads the same"
vg 0 "convert -p to a static VDI" convert -p -O vdi -o static=on c.vdi cs.vdi
vg 0 "convert -m 1 VDI to VDI" convert -m 1 -O vdi cs.vdi c2.vdi

# ---- read-only commands
vg 0 "info" info c.vdi
vg 0 "info --output=json" info --output=json c.vdi
vg 0 "check" check c.vdi
vg 0 "check --output=json" check --output=json c.vdi
vg 0 "map" map c.vdi
vg 0 "map --output=json" map --output=json c.vdi

# ---- differencing images: create -b, copy-up, commit
vg 0 "create -b" create -b c.vdi snap.vdi
vg 0 "info --backing-chain --output=json" info --backing-chain --output=json snap.vdi
vg 0 "zero (copies a parent block up)" zero snap.vdi 100 5000
vg 0 "discard in a differencing image" discard snap.vdi 2M 1M
vg 0 "map of a differencing image" map --output=json snap.vdi
vg 0 "convert a differencing image" convert snap.vdi flat.raw
vg 0 "commit" commit snap.vdi
vg 0 "check after commit" check c.vdi

# ---- maintenance
vg 0 "discard" discard c.vdi 1M 1M
vg 0 "zero" zero c.vdi 0 4096
vg 0 "zero --all of a static image" zero --all s.vdi
vg 0 "compact" compact c.vdi
vg 0 "compact --output=json" compact --output=json c.vdi
vg 0 "resize +4M" resize c.vdi +4M
vg 0 "resize --shrink" resize --shrink c.vdi 16M
vg 0 "resize a static image" resize s.vdi +4M
vg 0 "resize past the block map's room" resize c.vdi 1T

# ---- repairs: a leaked block at the end, an entry past the end
head -c 1M /dev/urandom >>c.vdi
vg 3 "check finds the leak" check c.vdi
vg 0 "check -r leaks" check -r leaks c.vdi
vg 0 "check after the repair" check c.vdi
bmap=$("$VDI" info --output=json c.vdi | sed -n 's/.*"offset-bmap": \([0-9]*\).*/\1/p')
printf '\000\000\001\000' | dd of=c.vdi bs=1 seek="$bmap" conv=notrunc status=none
vg 2 "check finds the corruption" check c.vdi
vg 0 "check -r all" check -r all c.vdi

# ---- error paths
printf 'not a disk image\n' >text.txt
vg 1 "info of a missing file" info nope.vdi
vg 1 "check of a text file" check text.txt
vg 1 "convert of a missing file" convert nope.vdi out.raw
vg 1 "create with a bad size" create q.vdi 12Q
vg 1 "resize refused without --shrink" resize c.vdi 1M
vg 1 "commit of an image without parent" commit c.vdi
vg 1 "differencing image whose parent changed" info snap.vdi
head -c 16M /dev/urandom >big.raw
PREFIX=limited vg 1 "convert onto a full disk (EFBIG)" convert -O vdi big.raw full.vdi
PREFIX=limited vg 1 "create of a static image that does not fit" \
	create -q -o static=on full.vdi 32M

# ---- what the suppressions hide: the same convert without them
rm -f "$T/raw-vg.log"
"$VALGRIND" -q "${MEMCHECK[@]}" --log-file="$T/raw-vg.log" "$VDI" convert \
	-O vdi r.raw nosupp.vdi >/dev/null 2>&1
rc=$?
n=$(grep -c 'uninitialised value' "$T/raw-vg.log" 2>/dev/null)
# The run must have happened: memcheck's exit status 99 with reports, or
# 0 and an empty log without; the log written and the copy right.  (An
# empty or missing log alone would make the count below 0 for nothing.)
[ -f "$T/raw-vg.log" ] &&
	{ { [ $rc = 99 ] && [ "${n:-0}" != 0 ]; } || { [ $rc = 0 ] && [ "${n:-0}" = 0 ]; }; } &&
	"$VDI" convert nosupp.vdi nosupp.raw && cmp -s nosupp.raw r.raw
_result $? "without valgrind.supp, convert ran under memcheck (exit $rc, log $([ -f "$T/raw-vg.log" ] && echo written || echo missing))"
other=$(grep -E '^==[0-9]+== [A-Z]' "$T/raw-vg.log" | grep -vc \
	-e 'uninitialised value' -e 'Use --track-origins' -e 'HEAP SUMMARY' \
	-e 'in use at exit' -e 'total heap usage' -e 'All heap blocks' \
	-e 'ERROR SUMMARY' -e 'For lists of')
echo "# without valgrind.supp, convert raw to VDI: $n reports of uninitialised" \
	"bytes read through io_uring"
[ "$n" != 0 ] ||
	echo "# (none: this valgrind sees io_uring reads; valgrind.supp may go)"
is "without valgrind.supp, nothing but those reports" "$other" 0

done_testing
