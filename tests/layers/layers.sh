#!/bin/sh
# The engine's layers run one way (docs/design.md, "Layers").  Fails when:
#  - a file in engine/N-name/ includes a header of a folder numbered above
#    N, another layer's private.h, or an internal header by its bare name
#    (which would slip past this check);
#  - an object of layer N calls (has an undefined reference to) a function
#    or uses a variable that a file of a layer above N defines;
#  - a source file sits in engine/ outside the layer folders;
#  - a front end (cli/, fio/, nbd/, examples/) includes an engine header
#    other than the public vdi.h.
#   layers.sh SOURCE_ROOT LIBVDI_INTERNAL.A
set -u
export LC_ALL=C
root=${1:?usage: $0 SOURCE_ROOT LIBVDI_INTERNAL.A}
archive=${2:?}
case $archive in /*) ;; *) archive=$PWD/$archive ;; esac
NM=${NM:-nm}
T=$(mktemp -d "${TMPDIR:-/tmp}/layers.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
status=0
fail() {
	echo "FAIL: $*" >&2
	status=1
}

cd "$root/engine" || exit 1

# ---- includes ----------------------------------------------------------------
for f in *.c *.h; do
	[ -e "$f" ] && fail "engine/$f is outside the layer folders"
done
includes=0
for f in [0-9]-*/*.[ch]; do
	dir=${f%%/*}
	rank=${dir%%-*}
	grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
		sed 's/^\([0-9]*\):.*"\(.*\)".*/\1 \2/' >"$T/inc"
	while read -r line inc; do
		includes=$((includes + 1))
		case $inc in
		vdi.h)
			;;
		[0-9]-*/*)
			idir=${inc%%/*}
			irank=${idir%%-*}
			if [ ! -f "$inc" ]; then
				fail "engine/$f:$line includes \"$inc\", which does not exist"
			elif [ "$irank" -gt "$rank" ]; then
				fail "engine/$f:$line includes \"$inc\": layer $rank ($dir) may not include layer $irank ($idir)"
			elif [ "${inc#*/}" = private.h ] && [ "$idir" != "$dir" ]; then
				fail "engine/$f:$line includes \"$inc\", the private header of another layer"
			fi
			;;
		*)
			fail "engine/$f:$line includes \"$inc\": name internal headers with their folder (\"N-layer/$inc\")"
			;;
		esac
	done <"$T/inc"
done

# ---- front ends: vdi.h only --------------------------------------------------
for fe in cli fio nbd examples; do
	[ -d "$root/$fe" ] || continue
	for f in "$root/$fe"/*.[ch]; do
		[ -e "$f" ] || continue
		grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" |
			sed 's/^\([0-9]*\):.*"\(.*\)".*/\1 \2/' >"$T/inc"
		while read -r line inc; do
			base=${inc##*/}
			case $inc in
			vdi.h)
				continue ;;
			*engine/* | [0-9]-*/*)
				fail "$fe/${f##*/}:$line includes \"$inc\": front ends use only vdi.h"
				continue ;;
			esac
			if [ ! -e "$(dirname "$f")/$inc" ] &&
			   ls [0-9]-*/"$base" >/dev/null 2>&1; then
				fail "$fe/${f##*/}:$line includes \"$inc\", an engine header: front ends use only vdi.h"
			fi
		done <"$T/inc"
	done
done

# ---- calls: undefined references of each object ----------------------------
# nm -A names each object (a path in a thin archive) before its symbols;
# meson names objects by their source path: 2-image_chain.c.o.
member='{ n = split($1, p, ":"); m = p[n - 1]; sub(/.*\//, "", m); print $NF, m }'
$NM -A --defined-only "$archive" | awk "\$(NF-1) ~ /^[TDBRGSVW]\$/ $member" |
	sort -u >"$T/defs" || exit 1
$NM -A -u "$archive" | awk "$member" | sort -u >"$T/undefs" || exit 1
# name member-using member-defining
join "$T/undefs" "$T/defs" >"$T/edges"
calls=$(wc -l <"$T/edges")
while read -r sym user def; do
	urank=${user%%-*}
	drank=${def%%-*}
	if [ "$drank" -gt "$urank" ]; then
		u=$(echo "$user" | sed 's/_/\//; s/\.o$//')
		d=$(echo "$def" | sed 's/_/\//; s/\.o$//')
		fail "engine/$u uses $sym, defined in engine/$d: layer $urank may not call layer $drank"
	fi
done <"$T/edges"

# The parsers must have found something, or an empty list would pass.
if [ "$includes" -lt 40 ] || [ "$calls" -lt 40 ]; then
	fail "only $includes includes and $calls calls between engine files found"
fi

[ $status -eq 0 ] &&
	echo "ok: $includes includes and $calls cross-file references in engine/, all to the same layer or below; front ends include only vdi.h"
exit $status
