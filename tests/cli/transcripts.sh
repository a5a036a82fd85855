#!/bin/bash
# Every transcript of README.md and docs/*.md is what the tool prints.
#
# A transcript is a fenced block without a language whose first line
# starts with "$ ": each "$ " line is a command, the lines up to the next
# one are what it prints (standard output, then standard error).  The
# commands of one block run in order, with this vdi first on PATH, in an
# empty folder of their own, after the block's set-up.  Each command is
# one TAP line: it passes when its output is the doc's, line for line,
# and its exit status is the one the doc implies:
#   - a command followed by "$ echo $?" must exit with the status that
#     line shows (it is not run: its output is that status);
#   - otherwise a command that prints an error ("vdi: ..." but not
#     "vdi: ...: warning: ...") must exit 1, as every error does;
#   - any other command must exit 0.
#
# The set-up is a hidden comment right before the block, one line
#   <!-- transcript setup: COMMANDS -->
# or several, the comment ending on a line of its own:
#   <!-- transcript setup:
#   COMMANDS
#   -->
# run by bash in the block's folder, a line at a time: each line must exit
# 0 ("#" starts a comment).  A block without one starts in an empty folder.  Besides vdi and the usual commands, the
# set-up may use two helpers, for the states the tool itself never leaves
# an image in (sizes as numfmt --from=iec reads them: 3M, 4096):
#   write_data FILE OFFSET LENGTH   LENGTH random bytes at OFFSET
#                                   (the file is made or grown as needed)
#   put32 FILE OFFSET VALUE         VALUE, 32-bit little-endian, at byte
#                                   OFFSET (a block-map entry, a header
#                                   count: docs/format.md gives offsets)
# A set-up that fails fails the block.  A marker that is not closed, is
# empty, does not stand right before a transcript, or is not spelt
# "transcript setup:" fails the test with the line it is on; so does a
# plain block with "$ " lines that does not start with one.
#
# Matched loosely, because they legitimately vary (the rule is applied to
# the doc's line and the tool's before they are compared):
#   - "Disk size: A -> B" (vdi compact's report): the space the file
#     takes on disk (st_blocks) depends on the file system; only the
#     shape is compared (two sizes with an arrow).
#   transcripts.sh PATH-TO-vdi SOURCE-ROOT
. "$(dirname "$0")/lib.sh"
SRC=${2:?usage: $0 VDI SOURCE-ROOT}

mkdir "$T/bin"
ln -s "$(cd "$(dirname "$VDI")" && pwd)/$(basename "$VDI")" "$T/bin/vdi"

# The set-up helpers (see above).
write_data() {
	local off len
	off=$(numfmt --from=iec "$2") && len=$(numfmt --from=iec "$3") || return 1
	head -c "$len" /dev/urandom |
		dd of="$1" bs=64K seek="$off" oflag=seek_bytes conv=notrunc status=none
}
put32() {
	local v=$(($3))
	# shellcheck disable=SC2059
	printf "$(printf '\\%03o' $((v & 255)) $((v >> 8 & 255)) \
		$((v >> 16 & 255)) $((v >> 24 & 255)))" |
		dd of="$1" bs=1 seek="$(($2))" conv=notrunc status=none
}
export -f write_data put32

# extract FILE: its transcripts, one record per line:
#   B <tab> LINE        a transcript starts (LINE: its fence's line)
#   S <tab> TEXT        a line of its set-up
#   C <tab> TEXT        a command (without the "$ ")
#   O <tab> TEXT        a line the last command prints
#   E <tab> MESSAGE     an error in the page's markup
extract() {
	awk '
	function err(n, msg) { print "E\tline " n ": " msg }
	function stray() {
		err(marker, "transcript setup not right before a transcript block")
		nsetup = 0
	}
	BEGIN { FS = "\n" }
	# The lines of a marker of several lines.
	insetup && $0 == "-->" { insetup = 0; next }
	insetup && /^```/ {
		err(marker, "transcript setup without its closing \"-->\"")
		insetup = 0
		nsetup = 0
	}
	insetup { setup[nsetup++] = $0; next }
	!inside && /^<!-- *transcript/ {
		if (nsetup)
			stray()
		marker = NR
		if ($0 ~ /^<!-- transcript setup:[ \t]*$/) {
			insetup = 1
			next
		}
		if ($0 !~ /^<!-- transcript setup: .*[^ ].* -->$/) {
			err(NR, "malformed marker: write \"<!-- transcript setup: COMMANDS -->\", or put COMMANDS on lines of their own and \"-->\" on the last")
			next
		}
		line = $0
		sub(/^<!-- transcript setup: /, "", line)
		sub(/ -->$/, "", line)
		setup[nsetup++] = line
		next
	}
	!inside && /^```/ {
		inside = 1
		plain = ($0 == "```")
		first = 1
		fence = NR
		attached = nsetup	# the marker ends on the line before
		nsetup = 0
		next
	}
	inside && /^```/ {
		inside = 0
		if (first && attached)
			err(marker, "transcript setup not right before a transcript block")
		next
	}
	inside && first {
		first = 0
		is_tr = plain && /^\$ /
		if (is_tr) {
			print "B\t" fence
			for (i = 0; i < attached; i++)
				print "S\t" setup[i]
		} else if (attached) {
			err(marker, "transcript setup not right before a transcript block")
		}
	}
	inside {
		if (is_tr)
			print (/^\$ / ? "C\t" substr($0, 3) : "O\t" $0)
		else if (plain && /^\$ /)
			err(NR, "a \"$ \" command in a block that does not start with one")
		next
	}
	nsetup { stray() }
	END {
		if (insetup)
			err(marker, "transcript setup without its closing \"-->\"")
		else if (nsetup)
			stray()
	}' "$1"
}

# loose: the loose matches above, on standard input.
loose() {
	sed -E 's/^(Disk size: )[0-9.]+ [KMGTPE]?i?B -> [0-9.]+ [KMGTPE]?i?B$/\1<size> -> <size>/'
}

# check_command NAME DIR COMMAND EXPECTED-OUTPUT-FILE STATUS: run it and
# compare.  STATUS: the exit status wanted, or "implied" (see above).
# The status is left in $T/status for a following "echo $?".
check_command() {
	local name=$1 dir=$2 cmd=$3 want=$4 status=$5 rc
	env PATH="$T/bin:$PATH" bash -c "cd '$dir' && $cmd" >"$T/got" 2>&1
	rc=$?
	echo "$rc" >"$T/status"
	if [ "$status" = implied ]; then
		status=0
		grep -v '^vdi: .*: warning: ' "$want" | grep -q '^vdi: ' && status=1
	fi
	if loose <"$T/got" | cmp -s - <(loose <"$want") && [ "$rc" = "$status" ]; then
		_result 0 "$name"
		return
	fi
	_result 1 "$name"
	[ "$rc" = "$status" ] || echo "# exit status $rc, the doc implies $status"
	diff -u --label doc --label vdi "$want" "$T/got" | sed 's/^/# /'
}

# run_transcript PAGE LINE FILE-OF-RECORDS: one transcript, its set-up
# first.
ntranscripts=0 ncommands=0
run_transcript() {
	local rel=$1 line=$2 dir tag text cmd="" n=0 i
	local -a cmds=()
	ntranscripts=$((ntranscripts + 1))
	dir=$T/tr$ntranscripts
	mkdir "$dir"
	# The set-up, line by line: each must exit 0.
	while IFS=$'\t' read -r tag text; do
		[ "$tag" = S ] || continue
		case $text in '' | '#'*) continue ;; esac
		if ! env PATH="$T/bin:$PATH" bash -c "cd '$dir' && $text" \
			>"$T/setup.out" 2>&1; then
			_result 1 "$rel:$line: the transcript's set-up fails: $text"
			sed 's/^/# out: /' "$T/setup.out" | head -20
			return
		fi
	done <"$3"
	# Split into commands, each with the file of what it prints.
	while IFS=$'\t' read -r tag text; do
		case $tag in
		C)
			n=$((n + 1))
			cmds[n]=$text
			: >"$T/want.$n" ;;
		O) printf '%s\n' "$text" >>"$T/want.$n" ;;
		esac
	done <"$3"
	for ((i = 1; i <= n; i++)); do
		ncommands=$((ncommands + 1))
		cmd=${cmds[i]}
		if [ "$cmd" = 'echo $?' ]; then
			continue # checked with the command before it
		fi
		if [ $i -lt $n ] && [ "${cmds[i + 1]}" = 'echo $?' ]; then
			check_command "$rel:$line: \$ $cmd (exit $(head -n 1 "$T/want.$((i + 1))"))" "$dir" "$cmd" "$T/want.$i" \
				"$(head -n 1 "$T/want.$((i + 1))")"
		else
			check_command "$rel:$line: \$ $cmd" "$dir" "$cmd" "$T/want.$i" implied
		fi
	done
}

counts=
for page in "$SRC"/README.md "$SRC"/docs/*.md; do
	[ -f "$page" ] || continue
	rel=${page#"$SRC"/}
	extract "$page" >"$T/records"
	while IFS=$'\t' read -r tag text; do
		[ "$tag" = E ] && _result 1 "$rel: $text"
	done <"$T/records"
	before=$ntranscripts
	# One file of records per transcript.
	awk -v base="$T/block." '
		/^B\t/ { n++; f = base n; print substr($0, 3) >f; next }
		/^[SCO]\t/ && n { print >f }' "$T/records"
	for ((i = 1; ; i++)); do
		[ -f "$T/block.$i" ] || break
		run_transcript "$rel" "$(head -n 1 "$T/block.$i")" "$T/block.$i"
		rm -f "$T/block.$i"
	done
	[ $ntranscripts -gt $before ] && counts="$counts $rel: $((ntranscripts - before))"
done

# The extraction must find what is there: docs/vdi-tool.md alone holds
# nine transcripts.
[ "$ntranscripts" -ge 9 ]
_result $? "$ntranscripts transcripts ($ncommands commands) found:$counts"

done_testing
