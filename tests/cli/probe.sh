#!/bin/bash
# Inputs in other image formats (issue 10, "Data loss" 4): vdi convert
# names and refuses them unless -f raw is given, and vdi info names them.
# The inputs are real images made by qemu-img create, one per format QEMU
# probes for (and a fixed VHD, which QEMU's probe does not see).
. "$(dirname "$0")/lib.sh"
need_qemu

sha() { sha256sum "$1" | cut -d' ' -f1; }

# refused DESC PATTERN FILE CMD...: CMD exits 1, says PATTERN (an extended
# regular expression) on stderr, and leaves FILE as it was.
refused() {
	local desc=$1 pattern=$2 file=$3 before
	shift 3
	before=$(sha "$file")
	exits "$desc" 1 "$@"
	if grep -Eq -- "$pattern" "$T/last.err"; then
		_result 0 "$desc: the message says '$pattern'"
	else
		_result 1 "$desc: the message says '$pattern'"
		sed 's/^/# err: /' "$T/last.err" | head -5
	fi
	is "$desc: $(basename "$file") is untouched" "$(sha "$file")" "$before"
}

# make_image NAME FORMAT [qemu-img create options...]
formats=()
# (Five tries: qemu-img's LUKS key derivation first times 2^15 rounds of
# PBKDF2 by the thread's CPU time and fails with "Unable to get accurate
# CPU usage" when that reads 0 ms, as it can where the rounds take a few
# ms (qemu-devel, January 2025). A CI run failed "all nine images were
# made" with three tries; LUKS is the one image here whose making
# depends on timing, and its rounds use SHA-512 below, which CPUs with
# SHA extensions do not compute in hardware, so they take longer.)
make_image() {
	local name=$1 fmt=$2 try
	shift 2
	for try in 1 2 3 4 5; do
		if "$QEMU_IMG" create -q -f "$fmt" "$@" "$T/$name" 4M \
			>"$T/mk.err" 2>&1; then
			formats+=("$name:$fmt")
			return
		fi
	done
	echo "# skip $name: qemu-img create -f $fmt failed: $(head -1 "$T/mk.err")"
}
make_image q.qcow2 qcow2
make_image q1.qcow qcow
make_image q.qed qed
make_image sparse.vmdk vmdk
make_image desc.vmdk vmdk -o subformat=monolithicFlat
make_image dyn.vhd vpc
make_image fixed.vhd vpc -o subformat=fixed
make_image q.vhdx vhdx
make_image q.luks luks --object secret,id=s0,data=secret \
	-o key-secret=s0,iter-time=10,hash-alg=sha512
is "all nine images were made" "${#formats[@]}" 9

for entry in "${formats[@]}"; do
	name=${entry%%:*} fmt=${entry#*:}
	case $fmt in
	qcow2) what="a qcow2 image" ;;
	qcow) what="a qcow \(version 1\) image" ;;
	qed) what="a QED image" ;;
	vmdk) what="a VMDK image" ;;
	vpc) what="a VHD image \(qemu-img's vpc\)" ;;
	vhdx) what="a VHDX image" ;;
	luks) what="a LUKS-encrypted image" ;;
	esac
	refused "convert $name" "$name is $what; libvdi reads VDI and raw" \
		"$T/$name" "$VDI" convert "$T/$name" "$T/out.raw"
	[ ! -e "$T/out.raw" ]
	_result $? "convert $name: no output file"
	refused "info $name" "$name is $what; libvdi reads VDI and raw" \
		"$T/$name" "$VDI" info "$T/$name"
	ok "convert -f raw $name copies its bytes" "$VDI" convert -f raw \
		"$T/$name" "$T/out.raw"
	ok "convert -f raw $name: the same bytes" cmp "$T/$name" "$T/out.raw"
	rm -f "$T/out.raw"
done

# The other ways in: a VDI output, -f vdi, and the other commands, which
# open the file as VDI and say what it is when that fails.
refused "convert -O vdi q.qcow2" "q\.qcow2 is a qcow2 image" "$T/q.qcow2" \
	"$VDI" convert -O vdi "$T/q.qcow2" "$T/out.vdi"
[ ! -e "$T/out.vdi" ]
_result $? "convert -O vdi q.qcow2: no output file"
refused "convert -f vdi q.vhdx" "q\.vhdx is a VHDX image" "$T/q.vhdx" \
	"$VDI" convert -f vdi "$T/q.vhdx" "$T/out.raw"
refused "check q.qed" "q\.qed is a QED image" "$T/q.qed" \
	"$VDI" check "$T/q.qed"
refused "map sparse.vmdk" "sparse\.vmdk is a VMDK image" "$T/sparse.vmdk" \
	"$VDI" map "$T/sparse.vmdk"

# A VMDK descriptor as VMware writes it, with Windows line ends.
printf '# Disk DescriptorFile\r\nversion=1\r\nCID=fffffffe\r\n' >"$T/win.vmdk"
refused "convert a CRLF VMDK descriptor" "win\.vmdk is a VMDK image" \
	"$T/win.vmdk" "$VDI" convert "$T/win.vmdk" "$T/out.raw"
# Text that only looks a little like one is a raw disk; so is a file
# whose first bytes are zeros.
printf '# notes\nversion=10\n' >"$T/notes.raw"
ok "a text file is still converted as raw" "$VDI" convert \
	"$T/notes.raw" "$T/notes.out"
ok "the same bytes" cmp "$T/notes.raw" "$T/notes.out"
head -c 1048576 /dev/zero >"$T/zero.raw"
ok "a zero file is converted as raw" "$VDI" convert -O vdi "$T/zero.raw" \
	"$T/zero.vdi"

done_testing
