#!/bin/bash
# The C examples of the section-3 man pages (man/*.3.scd) build and run
# as printed.  The fenced block of a page's EXAMPLE (or EXAMPLES) section
# must be a complete program: it is compiled alone against the built
# library, as a reader would compile the copy they paste,
#   $CC -std=c11 -pedantic -Wall -Wextra -Werror -I engine/include ... -lvdi
# (with the sanitizers of the build, if any), and run in an empty folder
# of its own, where it must exit 0.  No fragment is wrapped: a block
# without a main() fails.
#
# What the program needs and what it leaves are said in scdoc comments
# (not printed) on the lines just before the block, after the page's own
# words for the reader:
#   ; example setup: COMMAND    run in the folder first (e.g. making the
#                               image the program opens)
#   ; example check: COMMAND    run in the folder afterwards; the
#                               program's standard output is in
#                               example.out there
#   ; example: not run: REASON  the block is not run (a TAP skip)
# The program is taken as the page shows it: in scdoc a backslash escapes
# the next character, in literal blocks too, so the page's source says
# "\\n" where the reader sees and copies "\n".
#
# Each COMMAND is one bash command line, run with the built vdi first on
# PATH, and must exit 0.  A marker with another keyword, an empty one, or
# one not in the run of comment lines right before an EXAMPLE block
# fails the test, naming its line.
#   test-man.sh PATH-TO-vdi SOURCE-ROOT PATH-TO-libvdi.so
# From the environment: CC (the build's compiler), SANITIZE (meson's
# b_sanitize: none, or the sanitizers the library was built with).
set -u
VDI=${1:?usage: $0 VDI SOURCE-ROOT LIBVDI}
SRC=${2:?usage: $0 VDI SOURCE-ROOT LIBVDI}
LIB=${3:?usage: $0 VDI SOURCE-ROOT LIBVDI}
CC=${CC:-cc}
LIBDIR=$(cd "$(dirname "$LIB")" && pwd)

T=$(mktemp -d "${TMPDIR:-/tmp}/example-man.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
n=0 failed=0
result() { # STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=1
	fi
}
# show LABEL FILE: the file as TAP comments (a last line without its
# newline gets one).
show() { awk -v l="$1" 'NR <= 30 { print "# " l ": " $0 }' "$2"; }

mkdir "$T/bin"
ln -s "$(cd "$(dirname "$VDI")" && pwd)/$(basename "$VDI")" "$T/bin/vdi"
san=
[ "${SANITIZE:-none}" != none ] && san=-fsanitize=$SANITIZE

# extract PAGE: its EXAMPLE blocks, one record per line:
#   B <tab> LINE      a block starts (LINE: its fence's line)
#   S <tab> COMMAND   its set-up       K <tab> COMMAND   a check
#   X <tab> REASON    not run          L <tab> TEXT      a line of it
#   E <tab> MESSAGE   an error in the page's markup
extract() {
	awk '
	function err(l, msg) { print "E\tline " l ": " msg }
	# What scdoc prints for a line of a literal block: a backslash
	# escapes the next character (\\n in the page is \n on screen).
	function unescape(t,   out, i, c) {
		out = ""
		for (i = 1; i <= length(t); i++) {
			c = substr(t, i, 1)
			if (c == "\\")	# at the end: the line goes on
				c = substr(t, ++i, 1)
			out = out c
		}
		return out
	}
	BEGIN { FS = "\n" }
	!inside && /^# / { section = $0 }
	!inside && /^; example/ {
		kw = $0
		if (match(kw, /^; example (setup|check): +[^ ]/)) {
			cmd = kw
			sub(/^; example (setup|check): +/, "", cmd)
			rec[nrec] = (kw ~ /^; example setup/ ? "S" : "K") "\t" cmd
		} else if (match(kw, /^; example: not run: +[^ ]/)) {
			cmd = kw
			sub(/^; example: not run: +/, "", cmd)
			rec[nrec] = "X\t" cmd
		} else {
			err(NR, "malformed marker: \"; example setup: COMMAND\", \"; example check: COMMAND\" or \"; example: not run: REASON\"")
			next
		}
		if (!nrec)
			first = NR
		nrec++
		next
	}
	!inside && /^```/ {
		inside = 1
		run = section ~ /^# EXAMPLES?$/
		if (run) {
			print "B\t" NR
			for (i = 0; i < nrec; i++)
				print rec[i]
		} else if (nrec) {
			err(first, "example markers before a block outside EXAMPLE")
		}
		nrec = 0
		next
	}
	inside && /^```/ { inside = 0; next }
	inside { if (run) print "L\t" unescape($0); next }
	nrec && !/^;/ {
		err(first, "example markers not right before an EXAMPLE block")
		nrec = 0
	}
	END { if (nrec) err(first, "example markers not right before an EXAMPLE block") }
	' "$1"
}

# run_example NAME RECORDS: build, set up, run, check.
nprog=0
run_example() {
	local name=$1 rec=$2 dir tag text i
	nprog=$((nprog + 1))
	dir=$T/run$nprog
	if grep -q '^X' "$rec"; then
		n=$((n + 1))
		echo "ok $n - $name # SKIP not run: $(sed -n 's/^X\t//p' "$rec" | head -n 1)"
		return
	fi
	sed -n 's/^L\t//p' "$rec" >"$T/ex$nprog.c"
	if ! grep -q '^int main(' "$T/ex$nprog.c"; then
		result 1 "$name: not a complete program (no \"int main(\"); see the header of $0"
		return
	fi
	# shellcheck disable=SC2086
	$CC -std=c11 -pedantic -Wall -Wextra -Werror $san -I"$SRC/engine/include" \
		-o "$T/ex$nprog" "$T/ex$nprog.c" -L"$LIBDIR" -lvdi -Wl,-rpath,"$LIBDIR" \
		>"$T/cc.out" 2>&1
	result $? "$name: compiles with -std=c11 -pedantic -Wall -Wextra -Werror"
	if [ -s "$T/cc.out" ]; then
		show cc "$T/cc.out"
		return
	fi
	[ -x "$T/ex$nprog" ] || return
	mkdir "$dir"
	while IFS=$'\t' read -r tag text; do
		[ "$tag" = S ] || continue
		env PATH="$T/bin:$PATH" bash -c "cd '$dir' && $text" >"$T/setup.out" 2>&1
		i=$?
		result $i "$name: set-up: $text"
		[ $i -eq 0 ] || { show out "$T/setup.out"; return; }
	done <"$rec"
	(cd "$dir" && timeout 30 "$T/ex$nprog" >example.out 2>"$T/run.err")
	i=$?
	result $i "$name: runs in an empty folder (exit $i)"
	show stdout "$dir/example.out"
	show stderr "$T/run.err"
	while IFS=$'\t' read -r tag text; do
		[ "$tag" = K ] || continue
		env PATH="$T/bin:$PATH" bash -c "cd '$dir' && $text" >"$T/check.out" 2>&1
		i=$?
		result $i "$name: check: $text"
		[ $i -eq 0 ] || show out "$T/check.out"
	done <"$rec"
}

for page in "$SRC"/man/*.3.scd; do
	rel=${page#"$SRC"/}
	extract "$page" >"$T/records"
	while IFS=$'\t' read -r tag text; do
		[ "$tag" = E ] && result 1 "$rel: $text"
	done <"$T/records"
	awk -v base="$T/block." '
		/^B\t/ { k++; f = base k; print substr($0, 3) >f; next }
		/^[SKXL]\t/ && k { print >f }' "$T/records"
	for ((k = 1; ; k++)); do
		[ -f "$T/block.$k" ] || break
		run_example "$rel:$(head -n 1 "$T/block.$k")" "$T/block.$k"
		rm -f "$T/block.$k"
	done
done

# The extraction must find what is there: six pages have a program.
[ "$nprog" -ge 6 ]
result $? "$nprog example programs found in man/*.3.scd"

echo "1..$n"
exit $failed
