#!/bin/bash
# Error handling and help: every failure is one line "vdi: ..." on stderr
# and exit status 1; help and version go to stdout with status 0.
. "$(dirname "$0")/lib.sh"

one_error() { # DESCRIPTION PATTERN COMMAND...: exit 1, one "vdi: " line matching PATTERN
	local desc=$1 pat=$2
	shift 2
	exits "$desc" 1 "$@"
	is "$desc: one line on stderr" "$(err_lines)" 1
	grep -q "^vdi: .*$pat" "$T/last.err"
	_result $? "$desc: the line starts 'vdi: ' and mentions '$pat'"
	case $2 in
	frobnicate | -*) ;; # no command to name
	*)
		grep -q "^vdi: $2: " "$T/last.err"
		_result $? "$desc: the line starts 'vdi: $2: '" ;;
	esac
	! grep -q '  ' "$T/last.err"
	_result $? "$desc: no doubled spaces"
	[ "$(err_lines)" = 1 ] && grep -q "^vdi: .*$pat" "$T/last.err" ||
		sed 's/^/# err: /' "$T/last.err"
	is "$desc: nothing on stdout" "$(cat "$T/last.out")" ""
}

"$VDI" create -q "$T/ok.vdi" 1M
printf 'not a disk image\n' >"$T/text.txt"
head -c 4096 /dev/zero >"$T/zero.raw"

for cmd in info check map; do
	one_error "$cmd: missing file" "nope.vdi" "$VDI" $cmd "$T/nope.vdi"
	one_error "$cmd: non-VDI file" "text.txt" "$VDI" $cmd "$T/text.txt"
	one_error "$cmd: zero-filled file" "zero.raw" "$VDI" $cmd "$T/zero.raw"
	one_error "$cmd: no file given" "expected" "$VDI" $cmd
	one_error "$cmd: unknown option" "--bogus" "$VDI" $cmd --bogus "$T/ok.vdi"
	one_error "$cmd: bad --output" "xml" "$VDI" $cmd --output=xml "$T/ok.vdi"
	one_error "$cmd: -f qcow2" "qcow2" "$VDI" $cmd -f qcow2 "$T/ok.vdi"
done
one_error "convert: missing file" "nope.vdi" "$VDI" convert "$T/nope.vdi" "$T/out.raw"
one_error "convert: -f vdi on a text file" "text.txt" "$VDI" convert -f vdi "$T/text.txt" "$T/out.raw"
[ ! -e "$T/out.raw" ]
_result $? "convert failures leave no output"

one_error "create: bad size 12Q" "12Q" "$VDI" create "$T/q.vdi" 12Q
grep -q 'K, M, G, T' "$T/last.err"
_result $? "the size error says which suffixes work"
one_error "create: negative size" "-5" "$VDI" create "$T/q.vdi" -- -5
one_error "create: size with junk" "10Mb" "$VDI" create "$T/q.vdi" 10Mb
one_error "create: size too large" "16E" "$VDI" create "$T/q.vdi" 16E
one_error "create: fraction of a byte" "0.3K" "$VDI" create "$T/q.vdi" 0.3K
one_error "create: missing size" "SIZE" "$VDI" create "$T/q.vdi"
one_error "create: too many arguments" "too many" "$VDI" create "$T/q.vdi" 1M 2M
one_error "create: bad uuid" "zz" "$VDI" create -o uuid=zz "$T/q.vdi" 1M
one_error "create: -o without value" "block_size" "$VDI" create -o block_size "$T/q.vdi" 1M
one_error "create: stray comma" "written ',,'" "$VDI" create -o static=on, "$T/q.vdi" 1M
one_error "create: comma in a value" "',,' stands for a comma" "$VDI" create -o static=on,,,,block_size=1M "$T/q.vdi" 1M
one_error "create: a single comma inside a value" "write that comma as ',,'" "$VDI" create -o description=a,b "$T/q.vdi" 1M
one_error "amend: a single comma inside a value" "write that comma as ',,'" "$VDI" amend -o description=a,b "$T/ok.vdi"
one_error "create: leading comma" "empty option" "$VDI" create -o ,static "$T/q.vdi" 1M
for args in "create $T/q.vdi -1M" "create -1M $T/q.vdi" "create -q $T/q.vdi -1M" \
	    "discard $T/ok.vdi -1M 1M" "zero $T/ok.vdi 0 -.5M"; do
	set -- $args
	one_error "$args: negative size" "'-.*': a size cannot be negative" "$VDI" "$@"
done
one_error "resize: malformed shrink" "'-10X'" "$VDI" resize "$T/ok.vdi" -10X
one_error "create: description too long" "255" "$VDI" create \
	-o "description=$(printf '%0300d' 0)" "$T/q.vdi" 1M
one_error "create: in a missing directory" "q.vdi" "$VDI" create -q "$T/no/such/q.vdi" 1M
[ ! -e "$T/q.vdi" ]
_result $? "create failures leave no file"
one_error "create: -o needs a value" "-o" "$VDI" create "$T/q.vdi" 1M -o
one_error "unknown command" "frobnicate" "$VDI" frobnicate
one_error "unknown global option" "--frob" "$VDI" --frob

exits "no arguments" 1 "$VDI"
grep -q '^Usage: vdi' "$T/last.err"
_result $? "no arguments prints the usage on stderr"

exits "--help" 0 "$VDI" --help
for cmd in create info check map convert; do
	grep -q "^  $cmd " "$T/last.out"
	_result $? "--help lists $cmd"
done
for cmd in create info check map convert; do
	exits "$cmd --help" 0 "$VDI" $cmd --help
	grep -q "^Usage: vdi $cmd" "$T/last.out"
	_result $? "$cmd --help shows its usage"
done
for cmd in create info check map convert compact resize discard zero commit; do
	"$VDI" $cmd --help >"$T/help1"
	exits "help $cmd" 0 "$VDI" help $cmd
	cmp -s "$T/help1" "$T/last.out"
	_result $? "vdi help $cmd prints what $cmd --help does"
done
one_error "help of an unknown command" "frob" "$VDI" help frob
exits "--version" 0 "$VDI" --version
grep -Eq '^vdi version [0-9]+\.[0-9]+\.[0-9]+' "$T/last.out"
_result $? "--version prints the version"

done_testing
