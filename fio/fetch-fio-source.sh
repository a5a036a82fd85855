#!/bin/sh
# fetch-fio-source.sh OUTDIR
#
# Put the source of the *installed* fio (same Debian version, Debian patches
# applied) under OUTDIR and run its ./configure there, so that the fio engine
# vdi.so can be compiled against exactly the headers and config-host.h of the
# fio binary that will dlopen() it.  Prints the absolute path of the
# configured tree as the last line of standard output; everything else goes
# to standard error.
#
# Nothing is written to the system's apt state: apt-get runs with a private
# configuration (its own sources list, lists and cache directories) whose
# deb-src entries mirror the machine's deb entries.  The downloaded source
# package is kept in ${XDG_CACHE_HOME:-$HOME/.cache}/libvdi/fio-source, so a
# fresh build directory does not download it again.
#
# Environment:
#   FIO_DEB_VERSION   override the version to fetch (default: the installed one)
#   LIBVDI_CACHE_DIR  override the download cache directory
#
# Exit status: 0 on success, 1 on any failure (with a message on stderr).

set -eu

prog=fetch-fio-source
say() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
outdir=$1

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found (not a Debian system?)"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found"
command -v dpkg-source >/dev/null 2>&1 ||
	die "dpkg-source not found: install the package dpkg-dev"

# ---- what is installed ------------------------------------------------------

if [ -n "${FIO_DEB_VERSION:-}" ]; then
	version=$FIO_DEB_VERSION
	srcpkg=fio
else
	dpkg-query -W -f '${Status}' fio 2>/dev/null | grep -q 'install ok installed' ||
		die "the Debian package fio is not installed"
	# The source version differs from the binary one after a binNMU
	# ("+b1"); ${source:Version} strips that.
	version=$(dpkg-query -W -f '${source:Version}' fio)
	srcpkg=$(dpkg-query -W -f '${source:Package}' fio)
fi
[ -n "$version" ] || die "cannot tell the version of the installed fio"
[ -n "$srcpkg" ] || srcpkg=fio
# Debian version without epoch and revision: 1:3.33-3 -> 3.33
upstream=${version#*:}
upstream=${upstream%-*}
say "installed fio: source package $srcpkg version $version"

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
tree=$outdir/$srcpkg-$version
stamp=$tree/.libvdi-source

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$srcpkg $version" ] &&
   [ -f "$tree/config-host.h" ]; then
	say "using the configured tree in $tree"
	echo "$tree"
	exit 0
fi

# ---- private apt configuration ----------------------------------------------

cache=${LIBVDI_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/libvdi/fio-source}
mkdir -p "$cache" || die "cannot create the cache directory $cache"
cache=$(cd "$cache" && pwd)
aptdir=$cache/apt
mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" \
	"$aptdir/state" "$cache/pkg"
srclist=$aptdir/sources.list

# Turn the machine's "deb" entries into "deb-src" entries, one-line format.
# deb822 files (*.sources): stanzas of "Field: value" lines separated by blank
# lines; a Signed-By naming a file is kept, an inline key block is dropped
# (apt then falls back to its trusted keyrings).
deb822_to_list() {
	awk '
	function flush() {
		if (types ~ /(^|[ \t])deb([ \t]|$)/ && uris != "" && suites != "" &&
		    enabled !~ /^[Nn]o/) {
			opts = ""
			if (signed ~ /^\//) opts = " [signed-by=" signed "]"
			nu = split(uris, U, /[ \t]+/)
			ns = split(suites, S, /[ \t]+/)
			for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
				if (U[i] != "" && S[j] != "")
					print "deb-src" opts " " U[i] " " S[j] " " comps
		}
		types = uris = suites = comps = signed = enabled = ""
		field = ""
	}
	BEGIN { flush() }
	/^#/ { next }
	/^[ \t]*$/ { flush(); next }
	/^[ \t]/ { next }          # continuation line (inline key block)
	{
		field = tolower($0); sub(/:.*/, "", field)
		val = $0; sub(/^[^:]*:[ \t]*/, "", val); sub(/[ \t]+$/, "", val)
		if (field == "types") types = val
		else if (field == "uris") uris = val
		else if (field == "suites") suites = val
		else if (field == "components") comps = val
		else if (field == "signed-by") signed = val
		else if (field == "enabled") enabled = val
	}
	END { flush() }' "$1"
}

# One-line format: "deb [opts] uri suite comps..." -> "deb-src ..."
list_to_list() {
	sed -n 's/^[ \t]*deb[ \t]\{1,\}/deb-src /p' "$1"
}

: >"$srclist.new"
if [ -f /etc/apt/sources.list ]; then
	list_to_list /etc/apt/sources.list >>"$srclist.new"
fi
for f in /etc/apt/sources.list.d/*.list; do
	[ -f "$f" ] && list_to_list "$f" >>"$srclist.new"
done
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] && deb822_to_list "$f" >>"$srclist.new"
done
sort -u "$srclist.new" >"$srclist"
rm -f "$srclist.new"
[ -s "$srclist" ] || die "no deb entries found in /etc/apt/sources.list{,.d}"
say "private sources list $srclist:"
sed 's/^/    /' "$srclist" >&2

set -- \
	-o Dir::Etc::SourceList="$srclist" \
	-o Dir::Etc::SourceParts=/dev/null \
	-o Dir::State="$aptdir/state" \
	-o Dir::State::Lists="$aptdir/lists" \
	-o Dir::State::status=/var/lib/dpkg/status \
	-o Dir::Cache="$aptdir/cache" \
	-o Dir::Cache::pkgcache= \
	-o Dir::Cache::srcpkgcache= \
	-o Debug::NoLocking=1 \
	-o APT::Get::Only-Source=1 \
	-o Acquire::Languages=none \
	-o Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false
# apt drops privileges to _apt for downloads; that user cannot write into a
# cache under $HOME.  Downloads stay verified against the signed indexes.
if [ "$(id -u)" -eq 0 ]; then
	set -- "$@" -o APT::Sandbox::User=root
fi

# One fetch at a time per cache (parallel meson setups share it).
exec 9>"$cache/.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
fi

dsc=$(ls "$cache/pkg/${srcpkg}_${version#*:}.dsc" 2>/dev/null || true)
if [ -z "$dsc" ]; then
	say "apt-get update (private lists in $aptdir/lists)"
	# A third-party entry that has no sources must not stop us: only the
	# result of "apt-get source" below decides.
	apt-get "$@" -q update >&2 || say "warning: apt-get update reported errors"
	say "apt-get source --download-only $srcpkg=$version"
	(cd "$cache/pkg" && apt-get "$@" -q source --download-only "$srcpkg=$version" >&2) ||
		die "cannot download the source of $srcpkg $version (is a deb-src mirror reachable?)"
	dsc=$cache/pkg/${srcpkg}_${version#*:}.dsc
	[ -f "$dsc" ] || die "apt-get source left no $dsc"
else
	say "using the downloaded $dsc"
fi

# ---- unpack and configure -----------------------------------------------------

rm -rf "$tree" "$tree.tmp"
say "dpkg-source -x $dsc"
# apt-get checked every file against the hashes of the signed Sources index.
dpkg-source --no-check -x "$dsc" "$tree.tmp" >&2 ||
	die "dpkg-source could not unpack $dsc"

# fio's configure: feature probes only.  Debian builds with the defaults plus
# a few --disable switches; none of them changes the layout of the structures
# an engine uses (thread_data, io_u, fio_file, ioengine_ops).
say "running ./configure in $tree"
(cd "$tree.tmp" && ./configure >configure.out 2>&1) || {
	tail -n 30 "$tree.tmp/configure.out" >&2
	die "fio's ./configure failed (log: $tree.tmp/configure.out)"
}
[ -f "$tree.tmp/config-host.h" ] || die "fio's ./configure wrote no config-host.h"
printf '%s %s\n' "$srcpkg" "$version" >"$tree.tmp/.libvdi-source"
mv "$tree.tmp" "$tree"
say "fio $upstream source ready in $tree"
echo "$tree"
