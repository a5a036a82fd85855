#!/bin/bash
# bash completion (completion/vdi) with the real bash-completion: the
# subcommands, a subcommand's options as its --help lists them, the
# formats after -O, the values of --output and -r, and files.
#   completion.sh PATH-TO-vdi PATH-TO-completion-script
. "$(dirname "$0")/lib.sh"
SCRIPT=${2:?usage: $0 VDI COMPLETION-SCRIPT}
SCRIPT=$(cd "$(dirname "$SCRIPT")" && pwd)/$(basename "$SCRIPT")
BC=/usr/share/bash-completion/bash_completion
[ -r "$BC" ] || skip_all "bash-completion not installed"

mkdir "$T/bin" "$T/dir"
ln -s "$(cd "$(dirname "$VDI")" && pwd)/$(basename "$VDI")" "$T/bin/vdi"
touch "$T/dir/disk.vdi" "$T/dir/disk.raw"

# complete WORD... : the candidates for the last word, sorted, one line.
complete() {
	(cd "$T/dir" && PATH="$T/bin:$PATH" bash -c '
		. "$1"; . "$2"; shift 2
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		_vdi vdi "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
		printf "%s\n" "${COMPREPLY[@]}"' _ "$BC" "$SCRIPT" "$@") |
		LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//'
}

is "subcommands starting with c" "$(complete vdi c)" "check commit compact compare convert create"
is "the new subcommands" "$(complete vdi re)" "rebase resize"
is "help completes subcommands" "$(complete vdi help me)" "measure"
is "convert -O formats" "$(complete vdi convert -O '')" "raw vdi"
is "info -f: vdi only" "$(complete vdi info -f '')" "vdi"
is "--output values" "$(complete vdi info --output '')" "human json"
is "check -r values" "$(complete vdi check -r '')" "all leaks"
is "-o keys" "$(complete vdi create -o bl)" "block_size="
is "amend -o keys" "$(complete vdi amend -o parent)" "parent-modification-uuid= parent-uuid="
is "compare options from its --help" "$(complete vdi compare -)" "--help -F -f -h -p -q -s"
c=$(complete vdi info --)
case " $c " in *" --force-share "*" --no-parent "*) r=0 ;; *) r=1 ;; esac
_result $r "info's long options include --force-share and --no-parent ($c)"
is "files" "$(complete vdi info di)" "disk.raw disk.vdi"

done_testing
