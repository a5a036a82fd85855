/* libFuzzer entry point: arbitrary bytes as a VDI image file.  Runs the
 * whole path a damaged file may take: open (read-only and read-write),
 * info, check, the map walk, reads, writes read back, a flush, repair, and
 * a check after the repair.  The file lives in a memfd, opened by path as
 * /proc/self/fd/N.  Built with clang's -fsanitize=fuzzer when the meson
 * option `fuzz` is on; fuzz_replay.c runs the same function over the seed
 * corpus in the normal suite.  Images are opened with VDI_OPEN_NO_PARENT,
 * so that a differencing image is exercised alone (no parent could be
 * found next to /proc/self/fd/N anyway).
 *
 * Oracles besides the sanitizers: bytes written and flushed read back the
 * same, and after vdi_repair(VDI_REPAIR_ALL) vdi_check finds no
 * corruption.  A breach calls abort(). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Most bytes read or written per call, and most extents walked: keeps one
 * input fast whatever sizes its header claims. */
#define IO_LEN 4096
#define MAX_EXTENTS 256
#define MAX_FILE (1ll << 30)

static int memfd = -1;
static char path[64];

static void breach(const char *what)
{
	fprintf(stderr, "fuzz_image: %s\n", what);
	abort();
}

static void read_only_pass(void)
{
	static unsigned char buf[IO_LEN];
	struct vdi_check_result cr;
	struct vdi_extent ext;
	struct vdi_image *img;
	struct vdi_info info;
	uint64_t size, off = 0;
	int i;

	if (vdi_open(path, VDI_OPEN_RDONLY | VDI_OPEN_NO_PARENT, &img) < 0)
		return;
	vdi_get_info(img, &info);
	vdi_check(img, &cr, NULL, NULL);
	size = vdi_get_size(img);
	for (i = 0; i < MAX_EXTENTS && off < size; i++) {
		if (vdi_map_extent(img, off, &ext) < 0 || ext.length == 0)
			break;
		if (ext.start != off || ext.length > size - off)
			breach("map extent does not continue the walk");
		off += ext.length;
	}
	if (size >= IO_LEN) {
		vdi_pread(img, buf, IO_LEN, 0);
		vdi_pread(img, buf, IO_LEN, size - IO_LEN);
		vdi_pread(img, buf, IO_LEN, (size / 2) & ~(uint64_t)511);
	}
	vdi_close(img);
}

static void write_pass(void)
{
	static unsigned char w[IO_LEN], r[IO_LEN];
	uint64_t size, offs[2];
	struct vdi_image *img;
	int i;

	if (vdi_open(path, VDI_OPEN_NO_PARENT, &img) < 0)
		return;
	size = vdi_get_size(img);
	if (size < IO_LEN) {
		vdi_close(img);
		return;
	}
	offs[0] = 512;
	offs[1] = size - IO_LEN;
	for (i = 0; i < 2; i++) {
		memset(w, 0xC0 + i, sizeof(w));
		if (offs[i] > size - IO_LEN ||
		    vdi_pwrite(img, w, IO_LEN, offs[i]) != IO_LEN)
			continue;
		if (vdi_pread(img, r, IO_LEN, offs[i]) == IO_LEN &&
		    memcmp(w, r, IO_LEN))
			breach("a completed write does not read back");
	}
	vdi_flush(img);
	vdi_close(img);
}

static void repair_pass(void)
{
	struct vdi_repair_result rr;
	struct vdi_check_result cr;
	struct vdi_image *img;

	if (vdi_repair(path, VDI_REPAIR_ALL, &rr, NULL, NULL) < 0)
		return;
	if (vdi_open(path, VDI_OPEN_RDONLY | VDI_OPEN_NO_PARENT, &img) < 0)
		breach("a repaired image does not open");
	if (vdi_check(img, &cr, NULL, NULL) == 0 && cr.corruptions)
		breach("corruption left after vdi_repair(VDI_REPAIR_ALL)");
	vdi_close(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stat st;

	if (memfd < 0) {
		memfd = memfd_create("fuzz.vdi", MFD_CLOEXEC);
		if (memfd < 0)
			breach("memfd_create failed");
		snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	}
	if (ftruncate(memfd, 0) < 0 ||
	    (size && pwrite(memfd, data, size, 0) != (ssize_t)size))
		breach("cannot fill the memfd");
	read_only_pass();
	write_pass();
	/* A block-map entry with a huge index makes the next allocation go
	 * past it (by design: docs/design.md, invariant 3), so the write pass
	 * may leave a sparse file of terabytes, whose check then needs
	 * gigabytes (one owner slot per physical block).  Known and reported;
	 * not what this harness looks for. */
	if (fstat(memfd, &st) == 0 && st.st_size > MAX_FILE)
		return 0;
	repair_pass();
	return 0;
}
