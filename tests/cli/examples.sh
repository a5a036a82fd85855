#!/bin/bash
# Every shell example of README.md, docs/*.md and the man pages of
# sections 1 and 7 (man/*.1.scd, man/*.7.scd.in) runs as written: the
# examples of one section, in order, in an empty folder of their own;
# each command line (a line ending in "\" goes on) must exit 0.
#
# An example is a ```sh block of a Markdown page, or a fenced block of
# the EXAMPLES section of a man page.  (Other fenced blocks are synopses,
# output, or transcripts of a session with its "$ " prompts and output,
# which transcripts.sh runs and compares.)
# A block that is not to be run says why on the line just before it:
#   <!-- example: not run: REASON -->      (Markdown)
#   ; example: not run: REASON             (scdoc: a comment)
# and shows as a TAP skip with that reason.  A marker without a reason,
# or a marker that does not stand before a block, fails.  A man page's block
# is taken as scdoc prints it, which a reader copies: there a backslash
# escapes the next character, so a line continuation is "\\" in the page.
#
# The folder stands for the top of a clone after `ninja -C build`: it
# holds a link `build` to the build tree.  On PATH come first this vdi
# and, for the examples of installed tools, an `nbdkit` that finds the
# plugin named `vdi` in the build tree, as an installed one is found in
# nbdkit's plugin directory (nbdkit-shim.sh: it also keeps track of the
# servers an example starts); libvdi-fio(7)'s engine path is the built
# engine.  Sections that need fio, nbdkit, qemu-img, nbdinfo or jq
# are skipped, saying so, when those are not there.
#   examples.sh PATH-TO-vdi SOURCE-ROOT BUILD-ROOT
. "$(dirname "$0")/lib.sh"
SRC=${2:?usage: $0 VDI SOURCE-ROOT BUILD-ROOT}
BUILD=${3:?usage: $0 VDI SOURCE-ROOT BUILD-ROOT}
BUILD=$(cd "$BUILD" && pwd)

mkdir "$T/bin"
ln -s "$(cd "$(dirname "$VDI")" && pwd)/$(basename "$VDI")" "$T/bin/vdi"
if [ -n "${NBDKIT:-}" ] && [ -n "${NBDKIT_VDI_PLUGIN:-}" ]; then
	ln -s "$(cd "$(dirname "$0")" && pwd)/nbdkit-shim.sh" "$T/bin/nbdkit"
	export REAL_NBDKIT=$NBDKIT NBDKIT_VDI_PLUGIN EXAMPLE_SERVERS=$T/servers
fi
: >"$T/servers"
# A sanitized fio engine or plugin loads into fio or nbdkit only with the
# sanitizer runtimes preloaded there (tests/fio): fio on PATH preloads
# them, the nbdkit shim too.
if [ -n "${VDI_FIO_PRELOAD:-}" ]; then
	export EXAMPLE_PRELOAD=$VDI_FIO_PRELOAD
	if real_fio=$(command -v fio); then
		printf '#!/bin/sh\nLD_PRELOAD="$EXAMPLE_PRELOAD" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" exec %s "$@"\n' \
			"$real_fio" >"$T/bin/fio"
		chmod +x "$T/bin/fio"
	fi
fi

skip() { # DESCRIPTION REASON: one TAP skip
	_tap_n=$((_tap_n + 1))
	echo "ok $_tap_n - $1 # SKIP $2"
}

# extract FILE KIND: the blocks of FILE, one record per line:
#   B <tab> SECTION <tab> LINE    a block starts (LINE: its fence's line)
#   S <tab> REASON                 ... and is not run, for REASON
#   L <tab> TEXT                   a line of a block to run
#   E <tab> TEXT                   an error in the page's markup
# KIND: md or man.
extract() {
	awk -v kind="$2" '
	function marker(line,   m) {
		if (kind == "md" && match(line, /^<!-- example: not run: .* -->$/))
			return substr(line, 24, length(line) - 27)
		if (kind == "man" && match(line, /^; example: not run: /))
			return substr(line, 21)
		return ""
	}
	function is_marker(line) {
		return (kind == "md" && line ~ /^<!-- example:/) ||
		       (kind == "man" && line ~ /^; example:/)
	}
	BEGIN { FS = "\n" }
	!inside && /^```/ {
		fence = $0
		run = (kind == "md" && fence ~ /^```(sh|bash|shell)$/) ||
		      (kind == "man" && section ~ /^# EXAMPLES?$/ && fence == "```")
		inside = 1
		if (run) {
			print "B\t" section "\t" NR
			if (is_marker(prev)) {
				reason = marker(prev)
				if (reason == "")
					print "E\tline " NR - 1 ": a marker without a reason"
				else
					print "S\t" reason
			}
		} else if (is_marker(prev)) {
			print "E\tline " NR - 1 ": a marker before a block that is no example"
		}
		prev = $0
		next
	}
	inside && /^```/ { inside = 0; run = 0; prev = $0; next }
	# A man page shows a literal block as scdoc prints it: a backslash
	# escapes the next character ("\\" at the end of a line in the
	# page is the "\" a reader sees and copies).
	function unescape(t,   out, i, c) {
		out = ""
		for (i = 1; i <= length(t); i++) {
			c = substr(t, i, 1)
			if (c == "\\")
				c = substr(t, ++i, 1)
			out = out c
		}
		return out
	}
	inside {
		if (run)
			print "L\t" (kind == "man" ? unescape($0) : $0)
		prev = $0
		next
	}
	/^#/ { section = $0 }
	{
		if (is_marker(prev) && $0 !~ /^```/)
			print "E\tline " NR - 1 ": a marker not right before a block"
		prev = $0
	}' "$1"
}

# refuse LINES...: an example that builds, installs, benchmarks or runs
# this test suite must be marked as not run: say which command (empty:
# none), and the section is not run.
refuse() {
	local text=$* word
	for word in 'meson setup' 'meson test' 'meson install' 'ninja ' \
		    'sudo ' 'scripts/' 'bench/' 'git clone'; do
		case $text in *"$word"*) echo "$word"; return ;; esac
	done
}

# needs LINES...: what the lines need that may be missing (empty: nothing).
needs() {
	local text=$*
	case $text in *fio\ * | *external:*)
		[ -n "${VDI_FIO_SKIP:-}" ] && { echo "fio engine: $VDI_FIO_SKIP"; return; }
		[ -n "${VDI_FIO_ENGINE:-}" ] && command -v fio >/dev/null ||
			{ echo "fio or the engine not built"; return; } ;;
	esac
	case $text in *nbdkit*)
		[ -n "${VDI_FIO_SKIP:-}" ] && { echo "plugin: $VDI_FIO_SKIP"; return; }
		[ -x "$T/bin/nbdkit" ] || { echo "nbdkit or the plugin not built"; return; } ;;
	esac
	case $text in *nbdinfo*)
		command -v nbdinfo >/dev/null || { echo "nbdinfo not found"; return; } ;;
	esac
	case $text in *jq\ *)
		command -v jq >/dev/null || { echo "jq not found"; return; } ;;
	esac
	case $text in *qemu-img* | *qemu-io*)
		if [ -z "$QEMU_IMG" ] || [ -z "$QEMU_IO" ]; then
			[ "${LIBVDI_REQUIRE_QEMU:-0}" = 1 ] && return
			echo "qemu-img or qemu-io not found"
		fi ;;
	esac
}

# run_section NAME FILE-OF-LINES: the lines, in order, in a new folder.
# Continuation lines are joined; comments and blank lines are left out.
# Servers an example starts with -P FILE.pid are stopped afterwards, by
# the pid they wrote, should a later line that stops them not run.
nsections=0
run_section() {
	local name=$1 dir line cmd="" why pid pidfile
	nsections=$((nsections + 1))
	dir=$T/ex$nsections
	why=$(refuse "$(cat "$2")")
	if [ -n "$why" ]; then
		_result 1 "$name: runs '$why': mark it '<!-- example: not run: REASON -->'"
		return
	fi
	why=$(needs "$(cat "$2")")
	if [ -n "$why" ]; then
		skip "$name" "$why"
		return
	fi
	mkdir "$dir"
	ln -s "$BUILD" "$dir/build"
	while IFS= read -r line || [ -n "$line" ]; do
		if [ -n "$cmd" ]; then
			cmd="$cmd"$'\n'"$line"
		else
			case $line in '' | '#'*) continue ;; esac
			cmd=$line
		fi
		case $line in *\\) continue ;; esac
		# One TAP line: a command of several lines is named on one.
		ok "$name: ${cmd//$'\n'/ }" env PATH="$T/bin:$PATH" bash -c "cd '$dir' && $cmd"
		cmd=""
	done <"$2"
	# A server the example stopped may take a moment to exit.
	while read -r pidfile; do
		pid=$(cat "$pidfile" 2>/dev/null) || continue
		for _ in $(seq 50); do
			grep -qaF "EXAMPLE_SERVERS=$T/servers" "/proc/$pid/environ" \
				2>/dev/null || continue 2
			sleep 0.1
		done
		kill "$pid" 2>/dev/null
		_result 1 "$name: stops the server it starts (nbdkit $pid was left running)"
	done <"$T/servers"
	: >"$T/servers"
}

# The pages, and what kind each is.
pages=()
for f in "$SRC"/README.md "$SRC"/docs/*.md "$SRC"/man/*.1.scd \
	 "$SRC"/man/*.7.scd "$SRC"/man/*.1.scd.in "$SRC"/man/*.7.scd.in; do
	[ -f "$f" ] && pages+=("$f")
done

nblocks=0 nrun=0 nskipped=0
for page in "${pages[@]}"; do
	rel=${page#"$SRC"/}
	case $page in *.md) kind=md ;; *) kind=man ;; esac
	extract "$page" "$kind" >"$T/records"
	while IFS=$'\t' read -r tag a b; do
		[ "$tag" = E ] && _result 1 "$rel: $a"
	done <"$T/records"
	# One file of lines per section; a skipped block adds nothing to it.
	rm -f "$T"/sec.*
	order=()
	skipping=0
	while IFS=$'\t' read -r tag a b; do
		case $tag in
		B)
			nblocks=$((nblocks + 1))
			skipping=0
			key=$(printf '%s' "$a" | md5sum | cut -c1-12)
			if [ ! -e "$T/sec.$key" ]; then
				: >"$T/sec.$key"
				order+=("$key")
				printf '%s\n' "$a" >"$T/name.$key"
			fi
			cur=$key ;;
		S)
			skipping=1
			nskipped=$((nskipped + 1))
			skip "$rel $(sed 's/^#* *//' "$T/name.$cur"): a block" "not run: $a" ;;
		L)
			[ $skipping = 1 ] && continue
			printf '%s\n' "$a" >>"$T/sec.$cur" ;;
		esac
	done <"$T/records"
	for key in "${order[@]}"; do
		[ -s "$T/sec.$key" ] || continue
		nrun=$((nrun + 1))
		sed -i "s|@FIO_ENGINE@|${VDI_FIO_ENGINE:-@FIO_ENGINE@}|g" "$T/sec.$key"
		run_section "$rel $(sed 's/^#* *//' "$T/name.$key")" "$T/sec.$key"
	done
done

# The extraction must find what is there: the pages hold many examples,
# and most of them run.
[ "$nblocks" -ge 30 ] && [ "$nrun" -ge 10 ]
_result $? "$nblocks example blocks found; $nrun sections run, $nskipped blocks marked not run"

done_testing
