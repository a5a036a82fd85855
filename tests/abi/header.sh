#!/bin/sh
# vdi.h must compile on its own, first of all includes, as strict C11 and
# as C++11, without a warning.
#   header.sh INCLUDE-DIR      (CC and CXX come from the environment)
# Exit 0 pass, 1 fail, 77 skip (no C++ compiler: the C part still ran).
set -u
inc=${1:?usage: $0 INCLUDE-DIR}
CC=${CC:-cc}
CXX=${CXX-}
T=$(mktemp -d "${TMPDIR:-/tmp}/abi-header.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
status=0

# The flags must bite: a pedantic error in the test file itself must fail,
# or a pass below would prove nothing.
printf '#include <vdi.h>\nstatic int empty[0];\n' >"$T/bad.c"
if $CC -std=c11 -pedantic -Werror -Wall -Wextra -fsyntax-only -I"$inc" "$T/bad.c" 2>/dev/null; then
	echo "FAIL: the compiler accepted a zero-length array with -pedantic -Werror" >&2
	exit 1
fi

# Alone, twice (the include guard), and with nothing else defined.
cat >"$T/alone.c" <<'EOT'
#include <vdi.h>
#include <vdi.h>

/* Use a little of everything so that the declarations are checked. */
int check_header(struct vdi_image *img, struct vdi_queue *q);
int check_header(struct vdi_image *img, struct vdi_queue *q)
{
	struct vdi_info info;
	struct vdi_extent ext;
	struct vdi_completion c;
	static struct vdi_create_opts defaults;
	struct vdi_create_opts o = defaults;
	int r;

	o.type = VDI_TYPE_DYNAMIC;
	o.block_size = VDI_DEFAULT_BLOCK_SIZE;
	r = vdi_get_info(img, &info) + vdi_map_extent(img, 0, &ext) +
	    vdi_queue_reap(q, &c, 0, 1, 0) + vdi_create("x", 0, &o);

	return r + (int)VDI_VERSION_MAJOR + (int)VDI_VERSION_MINOR +
	       (int)(VDI_BMAP_FREE - VDI_BMAP_ZERO);
}
EOT
if $CC -std=c11 -pedantic -Werror -Wall -Wextra -Wstrict-prototypes \
	-Wmissing-prototypes -fsyntax-only -I"$inc" "$T/alone.c"; then
	echo "ok: vdi.h compiles alone as C11 with -pedantic -Werror -Wall -Wextra"
else
	echo "FAIL: vdi.h as C11" >&2
	status=1
fi

if [ -z "$CXX" ]; then
	echo "SKIP: no C++ compiler" >&2
	[ $status -eq 0 ] && exit 77
	exit $status
fi
if $CXX -x c++ -std=c++11 -pedantic -Werror -Wall -Wextra -fsyntax-only \
	-I"$inc" "$T/alone.c"; then
	echo "ok: vdi.h compiles alone as C++11"
else
	echo "FAIL: vdi.h as C++11" >&2
	status=1
fi
# extern "C": a C++ translation unit must refer to the C names.
printf '#include <vdi.h>\nconst char *(*p)(void) = vdi_errmsg;\n' >"$T/link.cc"
if $CXX -std=c++11 -c -o "$T/link.o" -I"$inc" "$T/link.cc" &&
   nm "$T/link.o" | grep -qw 'U vdi_errmsg'; then
	echo "ok: C++ code calls the unmangled C symbols"
else
	echo "FAIL: vdi.h lacks extern \"C\" (C++ refers to a mangled name)" >&2
	status=1
fi
exit $status
