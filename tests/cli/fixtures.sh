#!/bin/bash
# Real VirtualBox- and QEMU-made images from ../shared/fixtures/vbox: the
# raw disk vdi convert reads out of each has the SHA-256 listed in that
# folder's README; info, map and check agree with qemu-img on them.
# Usage: fixtures.sh VDI [NAME...]: only the named fixtures (meson runs
# one test per fixture, as hashing the 8 GiB one takes a while).
. "$(dirname "$0")/lib.sh"
shift

F=${FIXTURES_DIR:-}
[ -n "$F" ] && [ -d "$F" ] || skip_all "no fixtures folder (${F:-FIXTURES_DIR unset})"

# name -> expected virtual SHA-256, from the fixtures README.
declare -A sha=(
	[pyVBox/TestHD-vbox4.0.8-2011.vdi]=ebfb4ef19ae410f190327b5ebd312711263bc7579970e87d9c1e2d84e06b3c25
	[pyVBox/TestHD-sunvbox-2009.vdi]=bb9f8df61474d25e71fa00722318cd387396ca1736605e1248821cc0de3d3af8
	[tritium-os/test-vbox-convertfromraw-floppy.vdi]=7addf94295c91a65df70ae0d330a4ffb044f4e94921f2042fee086947fcccdbd
	[tritium-os/test-qemu-created-hdr384.vdi]=d3b47b8355761a9fc98634f746d6b3a0c014359a89eafe5e94b759006d7d8a9d
	[tritium-os/test-qemu-created-then-vbox-upgraded-hdr400.vdi]=d3b47b8355761a9fc98634f746d6b3a0c014359a89eafe5e94b759006d7d8a9d
)


# SHA-256 of a file; holes (found with SEEK_DATA) are hashed from a zero
# buffer instead of being read through the kernel, which halves the time
# for the 8 GiB disk.
sha256() {
	if command -v python3 >/dev/null; then
		python3 -c '
import hashlib, os, sys
h = hashlib.sha256()
zero = bytes(1 << 24)
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
pos = 0
while pos < size:
    try:
        data = os.lseek(fd, pos, os.SEEK_DATA)
    except OSError:
        data = size
    while pos < data:
        n = min(len(zero), data - pos)
        h.update(zero[:n] if n < len(zero) else zero)
        pos += n
    if pos >= size:
        break
    end = os.lseek(fd, pos, os.SEEK_HOLE)
    while pos < end:
        b = os.pread(fd, min(1 << 24, end - pos), pos)
        if not b:
            raise SystemExit("short read")
        h.update(b)
        pos += len(b)
print(h.hexdigest())' "$1"
	else
		sha256sum <"$1" | cut -d' ' -f1
	fi
}

names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${!sha[@]}")
for name in "${names[@]}"; do
	if [ -z "${sha[$name]:-}" ]; then
		_result 1 "$name: not a fixture this test knows"
		continue
	fi
	img=$F/$name
	if [ ! -f "$img" ]; then
		_result 1 "$name: fixture missing"
		continue
	fi
	rm -f "$T/disk.raw"
	ok "$name: convert -O raw" "$VDI" convert -O raw "$img" "$T/disk.raw"
	is "$name: SHA-256 of the disk" "$(sha256 "$T/disk.raw")" "${sha[$name]}"
	exits "$name: vdi check" 0 "$VDI" check "$img"
	have_qemu_img "$name: info and map as qemu-img's" || continue
	command -v python3 >/dev/null || {
		_result 1 "$name: python3 not found (compares qemu-img's JSON)"
		continue
	}
	"$VDI" info --output=json "$img" >"$T/v.json"
	# -U: no locks, so a test that has the same read-only file open at the
	# same time (libvdi readers hold a whole-file shared lock, which QEMU
	# takes for "deny all") does not make qemu-img refuse it.
	"$QEMU_IMG" info -U --output=json "$img" >"$T/q.json"
	is "$name: virtual size as qemu-img" "$(json_get "$T/v.json" 'j["virtual-size"]')" \
		"$(json_get "$T/q.json" 'j["virtual-size"]')"
	"$VDI" map --output=json "$img" >"$T/v.map"
	"$QEMU_IMG" map -U --output=json "$img" >"$T/q.map"
	[ -s "$T/q.map" ] && cmp -s "$T/q.map" "$T/v.map"
	_result $? "$name: map identical to qemu-img map"
done

# The header fields that tell the eras apart.
img=$F/tritium-os/test-qemu-created-hdr384.vdi
if [[ " ${names[*]} " == *" tritium-os/test-qemu-created-hdr384.vdi "* ]] && [ -f "$img" ] && command -v python3 >/dev/null; then
	"$VDI" info --output=json "$img" >"$T/v.json"
	is "hdr384: header size" "$(json_get "$T/v.json" 'j["format-specific"]["data"]["header-size"]')" 384
	is "hdr384: data offset" "$(json_get "$T/v.json" 'j["format-specific"]["data"]["offset-data"]')" 8704
fi
img=$F/tritium-os/test-vbox-convertfromraw-floppy.vdi
if [[ " ${names[*]} " == *" tritium-os/test-vbox-convertfromraw-floppy.vdi "* ]] && [ -f "$img" ] && command -v python3 >/dev/null; then
	"$VDI" info --output=json "$img" >"$T/v.json"
	is "floppy: description" "$(json_get "$T/v.json" 'j["format-specific"]["data"]["description"]')" \
		"Converted image from floppy2.flp"
	is "floppy: virtual size" "$(json_get "$T/v.json" 'j["virtual-size"]')" 1474560
fi

done_testing
