#!/bin/sh
# The library exports exactly what the header declares: the dynamic
# symbols of libvdi.so, the global list in libvdi.map and the functions
# declared in vdi.h must be the same set, every symbol must carry, as its
# default version, the version node the map lists it under (LIBVDI_0.1,
# LIBVDI_0.2, ...), and the soname must be libvdi.so.0.
#   symbols.sh LIBVDI.SO LIBVDI.MAP VDI.H
set -u
lib=${1:?usage: $0 LIBVDI.SO LIBVDI.MAP VDI.H}
map=${2:?}
header=${3:?}
NM=${NM:-nm}
READELF=${READELF:-readelf}
T=$(mktemp -d "${TMPDIR:-/tmp}/abi-symbols.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
status=0

# Functions declared in a header: a declaration starts a line with its
# return type and ends the name with "(" (typedefs of function pointers,
# "(*name)", do not match).
header_functions() {
	grep -E '^[A-Za-z_][A-Za-z0-9_ ]*[ *]vdi_[a-z0-9_]+\(' "$1" |
		sed -E 's/^.*[ *](vdi_[a-z0-9_]+)\(.*$/\1/' | sort -u
}

# "name node" for each name listed under "global:" in a version script.
map_nodes() {
	awk '/^[A-Za-z_][A-Za-z0-9_.]* *\{/ { node = $1 }
	     /global:/ { g = 1; next }
	     /local:|^}/ { g = 0 }
	     g && match($0, /vdi_[a-z0-9_]+/) { print substr($0, RSTART, RLENGTH), node }' "$1" |
		sort -u
}

# The names listed under "global:" in a version script.
map_globals() {
	map_nodes "$1" | cut -d' ' -f1 | sort -u
}

# Compare two sorted lists; print what differs.
same() { # name-a file-a name-b file-b
	if cmp -s "$2" "$4"; then
		return 0
	fi
	echo "FAIL: $1 and $3 differ:" >&2
	comm -23 "$2" "$4" | sed "s/^/  only in $1: /" >&2
	comm -13 "$2" "$4" | sed "s/^/  only in $3: /" >&2
	return 1
}

header_functions "$header" >"$T/header"
map_globals "$map" >"$T/map"
# Defined dynamic symbols other than the version node itself (type A).
$NM -D --defined-only "$lib" >"$T/nm" || exit 1
awk '$2 != "A" { print $3 }' "$T/nm" | sed 's/@.*//' | sort -u >"$T/exported"

# The parsers must find something, or equal empty lists would pass.
for f in header map exported; do
	n=$(wc -l <"$T/$f")
	if [ "$n" -lt 20 ] || ! grep -qx vdi_open "$T/$f"; then
		echo "FAIL: only $n names found in the $f list (no vdi_open?)" >&2
		status=1
	fi
done
# ... and must notice a difference: a header with one more function.
{ cat "$header"; echo 'int vdi_not_exported(void);'; } >"$T/extra.h"
header_functions "$T/extra.h" >"$T/extra"
if cmp -s "$T/extra" "$T/header"; then
	echo "FAIL: the header parser missed an added declaration" >&2
	status=1
fi

same vdi.h "$T/header" libvdi.map "$T/map" || status=1
same libvdi.map "$T/map" "libvdi.so (nm -D)" "$T/exported" || status=1

# Every exported symbol carries its node as the default version ("@@"),
# and the nodes are LIBVDI_0.1 and later.
map_nodes "$map" >"$T/nodes"
awk '$2 != "A" { split($3, v, "@@"); print v[1], v[2] }' "$T/nm" | sort -u >"$T/versions"
same "libvdi.map (nodes)" "$T/nodes" "libvdi.so (versions)" "$T/versions" || status=1
if ! grep -q ' LIBVDI_0\.1$' "$T/nodes" || grep -qv ' LIBVDI_0\.[0-9][0-9]*$' "$T/nodes"; then
	echo "FAIL: version nodes are not LIBVDI_0.1, LIBVDI_0.2...:" $(cut -d' ' -f2 "$T/nodes" | sort -u) >&2
	status=1
fi

soname=$($READELF -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ "$soname" != libvdi.so.0 ]; then
	echo "FAIL: soname is '$soname', not libvdi.so.0" >&2
	status=1
fi

[ $status -eq 0 ] &&
	echo "ok: $(wc -l <"$T/exported") symbols, header = map = nm -D, each @@ its node ($(cut -d' ' -f2 "$T/nodes" | sort | uniq -c | awk '{ printf "%s%s %s", s, $1, $2; s = ", " }')), soname $soname"
exit $status
