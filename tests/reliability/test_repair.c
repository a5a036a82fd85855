/* vdi_repair on deliberately damaged images: after the repair vdi_check
 * and qemu-img check are clean, every block that was reachable reads back
 * as before (compared with a raw copy of the disk), and each change is
 * reported. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "vdi.h"

#define MiB (1ull << 20)
#define BMAP MiB /* where vdi_create puts the block map */
#define DATA (2 * MiB)
#define DISK (8 * MiB)

static char said[8192];

static void collect(void *opaque, const char *msg)
{
	(void)opaque;
	strncat(said, msg, sizeof(said) - strlen(said) - 2);
	strcat(said, "\n");
}

/* Blocks 0..3 written with distinct patterns, in that order. */
static const char *make(const char *name)
{
	const char *p = tpath(name);
	unsigned char *buf = malloc(MiB);
	struct vdi_image *img;
	int i;

	unlink(p);
	cr_assert_eq(vdi_create(p, DISK, NULL), 0);
	cr_assert_eq(vdi_open(p, 0, &img), 0);
	for (i = 0; i < 4; i++) {
		pattern(buf, MiB, (uint64_t)i + 1);
		cr_assert_eq(vdi_pwrite(img, buf, MiB, (uint64_t)i * MiB),
			     (ssize_t)MiB);
	}
	cr_assert_eq(vdi_close(img), 0);
	free(buf);
	return p;
}

/* The virtual disk, block by block; a block that cannot be read is left
 * as 0xEE bytes. */
static unsigned char *snapshot(const char *p)
{
	unsigned char *d = malloc(DISK);
	struct vdi_image *img;
	uint64_t off;

	cr_assert_eq(vdi_open(p, VDI_OPEN_RDONLY, &img), 0, "%s", vdi_errmsg());
	for (off = 0; off < DISK; off += MiB)
		if (vdi_pread(img, d + off, MiB, off) != (ssize_t)MiB)
			memset(d + off, 0xEE, MiB);
	vdi_close(img);
	return d;
}

static void clean(const char *p)
{
	struct vdi_check_result r;
	struct vdi_image *img;

	cr_assert_eq(vdi_open(p, VDI_OPEN_RDONLY, &img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_check(img, &r, NULL, NULL), 0);
	vdi_close(img);
	cr_assert_eq(r.corruptions, 0, "corruption left:\n%s", said);
	cr_assert_eq(r.leaks, 0, "leaks left:\n%s", said);
	if (have_qemu("qemu-img"))
		cr_assert_eq(sh("qemu-img check -q %s", p), 0);
}

static int repair(const char *p, unsigned what, struct vdi_repair_result *rr)
{
	said[0] = 0;
	return vdi_repair(p, what, rr, collect, NULL);
}

/* Blocks [from, to) of two snapshots are equal. */
static void same(const unsigned char *a, const unsigned char *b, int from,
		 int to)
{
	for (int i = from; i < to; i++)
		cr_assert_eq(memcmp(a + (uint64_t)i * MiB, b + (uint64_t)i * MiB,
				    MiB), 0, "block %d changed", i);
}

Test(repair, clean_image_is_left_alone)
{
	const char *p = make("clean.vdi");
	struct vdi_repair_result rr;
	unsigned char *a = snapshot(p), *b;

	cr_assert_eq(repair(p, VDI_REPAIR_ALL, &rr), 0, "%s", said);
	cr_assert_eq(rr.before.corruptions + rr.before.leaks, 0);
	b = snapshot(p);
	same(a, b, 0, 8);
	clean(p);
	free(a);
	free(b);
}

Test(repair, allocated_count)
{
	const char *p = make("count.vdi");
	struct vdi_repair_result rr;

	poke32(p, 0x184, 7);
	cr_assert_eq(repair(p, VDI_REPAIR_LEAKS, &rr), 1, "%s", said);
	cr_assert_eq(rr.before.allocated_mismatch, 1);
	cr_assert(strstr(said, "repaired: the header's allocated-block count "
				"was 7, the block map has 4"), "%s", said);
	cr_assert_eq(peek32(p, 0x184), 4);
	clean(p);
}

Test(repair, leak_at_end_is_cut)
{
	const char *p = make("leak.vdi");
	struct vdi_repair_result rr;
	unsigned char *a = snapshot(p), *b, junk[4096];
	struct stat st;

	/* Block 3's entry freed: its data is a leak at the end. */
	pattern(junk, sizeof(junk), 99);
	poke32(p, BMAP + 12, 0xFFFFFFFF);
	poke32(p, 0x184, 3);
	memset(a + 3 * MiB, 0, MiB);
	cr_assert_eq(repair(p, VDI_REPAIR_LEAKS, &rr), 1, "%s", said);
	cr_assert_eq(rr.before.leaks, 1);
	cr_assert_eq(rr.leaks_fixed, 1);
	cr_assert(strstr(said, "leaked bytes cut off the end"), "%s", said);
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq((uint64_t)st.st_size, DATA + 3 * MiB);
	b = snapshot(p);
	same(a, b, 0, 8);
	clean(p);
	free(a);
	free(b);
}

Test(repair, leak_in_the_middle_is_filled)
{
	const char *p = make("midleak.vdi");
	struct vdi_repair_result rr;
	unsigned char *a = snapshot(p), *b;

	poke32(p, BMAP + 4, 0xFFFFFFFF); /* block 1 (physical 1) freed */
	poke32(p, 0x184, 3);
	memset(a + MiB, 0, MiB);
	cr_assert_gt(repair(p, VDI_REPAIR_LEAKS, &rr), 0, "%s", said);
	cr_assert_eq(rr.leaks_left, 0);
	cr_assert(strstr(said, "moved from physical block 3 into unused "
				"physical block 1"), "%s", said);
	cr_assert_eq(peek32(p, 0x184), 3, "the count: slots 0..2 in use");
	b = snapshot(p);
	same(a, b, 0, 8);
	clean(p);
	free(a);
	free(b);
}

Test(repair, past_eof_freed)
{
	const char *p = make("eof.vdi");
	struct vdi_repair_result rr;
	unsigned char *a, *b;

	poke32(p, BMAP + 20, 1000); /* block 5 -> far past the end */
	poke32(p, 0x184, 5);
	a = snapshot(p);
	cr_assert_eq(a[5 * MiB], 0xEE, "block 5 cannot be read before");
	memset(a + 5 * MiB, 0, MiB);
	cr_assert_eq(repair(p, VDI_REPAIR_LEAKS, &rr), 0, "-r leaks leaves "
		     "corruption alone: %s", said);
	cr_assert_eq(peek32(p, BMAP + 20), 1000);
	cr_assert_eq(repair(p, VDI_REPAIR_ALL, &rr), 2, "%s", said);
	cr_assert(strstr(said, "repaired: block 5 mapped to physical block "
				"1000, past the end of the file"), "%s", said);
	cr_assert_eq(peek32(p, BMAP + 20), 0xFFFFFFFF);
	b = snapshot(p);
	same(a, b, 0, 8);
	clean(p);
	free(a);
	free(b);
}

Test(repair, duplicate_keeps_first)
{
	const char *p = make("dup.vdi");
	struct vdi_repair_result rr;
	unsigned char *a = snapshot(p), *b;

	poke32(p, BMAP + 24, 1); /* block 6 -> physical 1, block 1's */
	poke32(p, 0x184, 5);
	b = snapshot(p);
	cr_assert_eq(memcmp(b + 6 * MiB, a + MiB, MiB), 0, "6 reads 1's data");
	free(b);
	cr_assert_eq(repair(p, VDI_REPAIR_ALL, &rr), 2, "%s", said);
	cr_assert(strstr(said, "repaired: block 6 shared physical block 1 "
				"with block 1"), "%s", said);
	b = snapshot(p);
	same(a, b, 0, 8); /* block 6 reads zeros again, block 1 its data */
	clean(p);
	free(a);
	free(b);
}

Test(repair, out_of_range_moved)
{
	const char *p = make("range.vdi");
	struct vdi_repair_result rr;
	unsigned char *a = snapshot(p), *b, *blk = malloc(MiB);
	int fd;

	/* Block 3's data copied to physical 9 (inside the file, beyond the
	 * 8-block count), its entry pointed there; physical 3 freed by
	 * cutting the file after physical 9. */
	pattern(blk, MiB, 4);
	cr_assert_eq(truncate(p, (off_t)(DATA + 10 * MiB)), 0);
	fd = open(p, O_WRONLY);
	cr_assert_eq(pwrite(fd, blk, MiB, (off_t)(DATA + 9 * MiB)), (ssize_t)MiB);
	close(fd);
	poke32(p, BMAP + 12, 9);
	b = snapshot(p);
	same(a, b, 0, 8);
	free(b);
	cr_assert_eq(repair(p, VDI_REPAIR_ALL, &rr), 1 + (int)rr.leaks_fixed,
		     "%s", said);
	cr_assert_eq(rr.corruptions_fixed, 1, "%s", said);
	cr_assert_eq(rr.leaks_fixed, 6, "physical 4..9 cut off: %s", said);
	cr_assert(strstr(said, "repaired: block 3 mapped to physical block 9, "
				"not below the block count 8; its data moved "
				"to physical block 3"), "%s", said);
	cr_assert_eq(peek32(p, BMAP + 12), 3);
	b = snapshot(p);
	same(a, b, 0, 8);
	clean(p);
	free(a);
	free(b);
	free(blk);
}

Test(repair, refuses_an_image_in_use)
{
	const char *p = make("busy.vdi");
	struct vdi_repair_result rr;
	struct vdi_image *img;

	cr_assert_eq(vdi_open(p, 0, &img), 0);
	cr_assert_eq(repair(p, VDI_REPAIR_ALL, &rr), -EBUSY);
	vdi_close(img);
	cr_assert_eq(repair(p, 0, &rr), -EINVAL);
}

QEMU_ORACLE_TEST(repair)
