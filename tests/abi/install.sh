#!/bin/sh
# Install into a scratch DESTDIR and use the result the way a user would:
# every file where docs/install.md says, the man pages (with their .so
# aliases) for every call in vdi.h, and the examples compiled outside the
# tree with nothing but `pkg-config --cflags --libs libvdi`, then run
# against the installed library.
#   install.sh MESON BUILD-ROOT SOURCE-ROOT
# From the environment: CC, PREFIX, BINDIR, LIBDIR, INCLUDEDIR, MANDIR,
# DATADIR (absolute, as meson configured them), VERSION, SANITIZE,
# HAVE_SCDOC, HAVE_FIO, NBDKIT_PLUGINDIR (empty: no nbdkit plugin).
set -u
MESON=${1:?usage: $0 MESON BUILD-ROOT SOURCE-ROOT}
BUILD=${2:?}
SRC=${3:?}
CC=${CC:-cc}
T=$(mktemp -d "${TMPDIR:-/tmp}/abi-install.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
R=$T/root
status=0
fail() { echo "FAIL: $*" >&2; status=1; }
pass() { echo "ok: $*"; }

if ! "$MESON" install -C "$BUILD" --destdir "$R" --no-rebuild >"$T/install.log" 2>&1; then
	cat "$T/install.log" >&2
	echo "FAIL: meson install" >&2
	exit 1
fi
(cd "$R" && find . ! -type d | sed 's|^\.||' | sort) >"$T/files"
echo "installed:"
sed 's/^/  /' "$T/files"

# Nothing lands outside the prefix, but the nbdkit plugin in nbdkit's
# plugin directory (where `nbdkit vdi` looks).
if grep -v "^$PREFIX/" "$T/files" |
   grep -v "^${NBDKIT_PLUGINDIR:-/nonexistent}/nbdkit-vdi-plugin.so\$" >"$T/outside"; then
	fail "installed outside $PREFIX: $(cat "$T/outside")"
fi

expect_file() { # path description
	if [ -f "$R$1" ]; then pass "$2: $1"; else fail "$2 missing: $1"; fi
}
expect_link() { # path target
	t=$(readlink "$R$1")
	if [ "$t" = "$2" ]; then pass "$1 -> $2"; else fail "$1 links to '$t', not $2"; fi
}

expect_file "$BINDIR/vdi" "the vdi tool"
[ -x "$R$BINDIR/vdi" ] || fail "$BINDIR/vdi is not executable"
expect_file "$LIBDIR/libvdi.so.$VERSION" "the library"
expect_link "$LIBDIR/libvdi.so.0" "libvdi.so.$VERSION"
expect_link "$LIBDIR/libvdi.so" libvdi.so.0
expect_file "$INCLUDEDIR/vdi.h" "the header"
cmp -s "$R$INCLUDEDIR/vdi.h" "$SRC/engine/include/vdi.h" ||
	fail "the installed vdi.h differs from engine/include/vdi.h"
expect_file "$LIBDIR/pkgconfig/libvdi.pc" "the pkg-config file"
expect_file "$DATADIR/doc/libvdi/examples/copy.c" "example source"
expect_file "$DATADIR/doc/libvdi/examples/async.c" "example source"
# bash completion, where bash-completion's pkg-config file says, under
# our prefix.
expect_file "$DATADIR/bash-completion/completions/vdi" "bash completion"
if [ "${HAVE_FIO:-0}" = 1 ]; then
	expect_file "$LIBDIR/fio/vdi.so" "the fio engine"
fi
if [ -n "${NBDKIT_PLUGINDIR:-}" ]; then
	expect_file "$NBDKIT_PLUGINDIR/nbdkit-vdi-plugin.so" "the nbdkit plugin"
	[ "${HAVE_SCDOC:-0}" = 1 ] && expect_file "$MANDIR/man1/nbdkit-vdi-plugin.1" "man page"
fi
# Installed binaries must not point back into the build tree.
for f in "$BINDIR/vdi" "$LIBDIR/libvdi.so.$VERSION"; do
	if readelf -d "$R$f" | grep -E 'RPATH|RUNPATH' | grep -q "$BUILD"; then
		fail "$f keeps an rpath into the build directory"
	fi
done

# A man page for every call declared in vdi.h, real or a .so alias that
# resolves to a real one.
if [ "${HAVE_SCDOC:-0}" = 1 ]; then
	for p in man1/vdi.1 man3/libvdi.3 man7/libvdi-fio.7; do
		expect_file "$MANDIR/$p" "man page"
	done
	n=0
	before=$status
	status=0
	for fn in $(grep -E '^[A-Za-z_][A-Za-z0-9_ ]*[ *]vdi_[a-z0-9_]+\(' \
			"$SRC/engine/include/vdi.h" |
		    sed -E 's/^.*[ *](vdi_[a-z0-9_]+)\(.*$/\1/' | sort -u); do
		n=$((n + 1))
		page=$R$MANDIR/man3/$fn.3
		if [ ! -f "$page" ]; then
			fail "no man page for $fn"
			continue
		fi
		# An alias is one ".so man3/PAGE.3" line naming a real page.
		real=$page
		first=$(head -n 1 "$page")
		case $first in
		'.so '*) real=$R$MANDIR/${first#.so } ;;
		esac
		if [ ! -f "$real" ] || head -n 1 "$real" | grep -q '^\.so '; then
			fail "$fn.3 is an alias of ${first#.so }, which is not a page"
			continue
		fi
		sed -n '/^\.SH NAME/,/^\.SH/p' "$real" | grep -qw "$fn" ||
			fail "the page of $fn does not name it under NAME"
		for s in SYNOPSIS DESCRIPTION 'RETURN VALUE' ERRORS 'SEE ALSO' VERSION; do
			grep -q "^\.SH $s\$" "$real" || fail "the page of $fn has no $s section"
		done
	done
	[ $n -ge 20 ] || fail "only $n functions found in vdi.h"
	[ $status -eq 0 ] && pass "man pages for all $n calls in vdi.h"
	[ $before -eq 0 ] || status=$before
else
	echo "(scdoc not found: man pages not checked)"
fi

# Build the examples against the installed tree only.  DESTDIR moves the
# prefix: PKG_CONFIG_SYSROOT_DIR puts the scratch root in front of the
# paths the .pc file gives.
export PKG_CONFIG_PATH="$R$LIBDIR/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$R"
v=$(pkg-config --modversion libvdi)
[ "$v" = "$VERSION" ] && pass "pkg-config libvdi is $v" || fail "pkg-config --modversion: '$v'"
req=$(pkg-config --print-requires-private libvdi | tr -d ' ' | sort | tr '\n' ' ')
[ "$req" = "liburing uuid " ] && pass "Requires.private: $req" || fail "Requires.private: '$req'"
flags=$(pkg-config --cflags --libs libvdi) || fail "pkg-config --cflags --libs libvdi"
pkg-config --static --libs libvdi >/dev/null || fail "pkg-config --static: the private requirements do not resolve"

san=
if [ "${SANITIZE:-none}" != none ]; then
	# A library built with sanitizers needs their runtime in the program.
	san="-fsanitize=$SANITIZE"
fi
for ex in copy async; do
	# shellcheck disable=SC2086
	if $CC -std=c11 -pedantic -Wall -Wextra -Werror $san -o "$T/$ex" "$SRC/examples/$ex.c" $flags; then
		pass "examples/$ex.c builds with: $CC $san $flags"
	else
		fail "examples/$ex.c does not build against the installed tree"
	fi
done
# README's C example, as a reader would copy it.
sed -n '/^## The C API/,/^## /p' "$SRC/README.md" |
	sed -n '/^```c$/,/^```$/p' | sed '1d;$d' >"$T/readme.c"
# shellcheck disable=SC2086
if [ -s "$T/readme.c" ] &&
   $CC -std=c11 -pedantic -Wall -Wextra -Werror $san -o "$T/readme" "$T/readme.c" $flags; then
	pass "README's C example builds against the installed tree"
else
	fail "README's C example does not build against the installed tree"
fi
[ $status -eq 0 ] || exit $status

readelf -d "$T/copy" | grep -q 'NEEDED.*\[libvdi\.so\.0\]' &&
	pass "copy needs libvdi.so.0 (the soname)" || fail "copy does not link to libvdi.so.0"

export LD_LIBRARY_PATH="$R$LIBDIR"
where=$(ldd "$T/copy" | sed -n 's/.*libvdi\.so\.0 => \([^ ]*\).*/\1/p')
[ "$where" = "$R$LIBDIR/libvdi.so.0" ] && pass "copy loads $where" ||
	fail "copy loads libvdi from '$where', not the installed tree"

head -c 3145728 /dev/urandom >"$T/in.raw"
if "$T/copy" "$T/in.raw" "$T/disk.vdi" && "$T/copy" "$T/disk.vdi" "$T/out.raw" &&
   cmp -s "$T/in.raw" "$T/out.raw"; then
	pass "copy, built outside the tree, round-trips 3 MiB"
else
	fail "the out-of-tree copy does not round-trip"
fi
if "$R$BINDIR/vdi" check -q "$T/disk.vdi"; then
	pass "the installed vdi checks the image: $("$R$BINDIR/vdi" --version)"
else
	fail "installed vdi check"
fi
if "$T/async" "$T/async.vdi" 8M >/dev/null; then
	pass "async, built outside the tree, writes and verifies 8 MiB"
else
	fail "the out-of-tree async"
fi
# The installed plugin serves an image with the installed library.  (Not
# in sanitizer builds: nbdkit would need the runtimes preloaded.)
if [ -n "${NBDKIT_PLUGINDIR:-}" ] && [ "${SANITIZE:-none}" = none ] &&
   command -v nbdkit >/dev/null && command -v nbdinfo >/dev/null; then
	size=$(nbdkit -U "$T/nbd.sock" "$R$NBDKIT_PLUGINDIR/nbdkit-vdi-plugin.so" \
		file="$T/disk.vdi" readonly=true --run 'nbdinfo --size "$uri"')
	[ "$size" = 3145728 ] && pass "nbdkit serves disk.vdi with the installed plugin" ||
		fail "nbdkit with the installed plugin: size '$size'"
fi
mkdir "$T/readme-run"
if (cd "$T/readme-run" && timeout 20 "$T/readme") >"$T/readme.out" 2>&1 &&
   grep -qx '32 writes and a flush completed' "$T/readme.out" &&
   "$R$BINDIR/vdi" check -q "$T/readme-run/disk.vdi" &&
   [ "$("$R$BINDIR/vdi" map --output=json "$T/readme-run/disk.vdi" |
	grep -c '"data": true')" = 1 ]; then
	pass "README's C example runs: $(cat "$T/readme.out")"
else
	fail "README's C example: $(cat "$T/readme.out")"
fi
exit $status
