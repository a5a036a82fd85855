/* vdi_check on clean and deliberately damaged images, with qemu-img check
 * as the second opinion where it sees the same problem. */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "vdi.h"

#define MiB (1ull << 20)
#define BMAP MiB /* where vdi_create puts the block map */

static char problems[4096];

static void collect(void *opaque, const char *msg)
{
	(void)opaque;
	strncat(problems, msg, sizeof(problems) - strlen(problems) - 2);
	strcat(problems, "\n");
}

/* A 4-block image with blocks 0..3 written, in that order. */
static const char *make(const char *name)
{
	const char *p = tpath(name);
	struct vdi_image *img;
	int i;

	unlink(p);
	cr_assert_eq(vdi_create(p, 4 * MiB, NULL), 0);
	cr_assert_eq(vdi_open(p, 0, &img), 0);
	for (i = 0; i < 4; i++)
		cr_assert_eq(vdi_pwrite(img, "d", 1, (uint64_t)i * MiB), 1);
	cr_assert_eq(vdi_close(img), 0);
	return p;
}

static struct vdi_check_result check(const char *p)
{
	struct vdi_check_result r;
	struct vdi_image *img;

	problems[0] = 0;
	cr_assert_eq(vdi_open(p, VDI_OPEN_RDONLY, &img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_check(img, &r, collect, NULL), 0);
	vdi_close(img);
	return r;
}

Test(check, clean)
{
	struct vdi_check_result r = check(make("clean.vdi"));

	cr_assert_eq(r.corruptions, 0, "%s", problems);
	cr_assert_eq(r.leaks, 0, "%s", problems);
	cr_assert_eq(r.blocks_mapped, 4);
	cr_assert_eq(r.image_end_offset, 2 * MiB + 4 * MiB);
}

Test(check, duplicate)
{
	const char *p = make("dup.vdi");
	struct vdi_check_result r;

	poke32(p, BMAP + 4, 0); /* block 1 -> physical 0, like block 0 */
	r = check(p);
	cr_assert_eq(r.duplicates, 1);
	cr_assert_eq(r.leaks, 1, "physical block 1 is now unused");
	cr_assert(strstr(problems, "physical block 0 is used by blocks 0 and 1"),
		  "%s", problems);
	cr_assert_gt(r.corruptions, 0);
}

Test(check, past_eof)
{
	const char *p = make("eof.vdi");
	struct vdi_check_result r;

	poke32(p, BMAP + 8, 1000);
	r = check(p);
	cr_assert_eq(r.past_eof, 1);
	cr_assert(strstr(problems, "block 2 maps to physical block 1000, past the end"),
		  "%s", problems);
	cr_assert_eq(r.out_of_range, 1, "1000 is not below 4 blocks either");
	if (have_qemu("qemu-img"))
		cr_assert_eq(sh("qemu-img check -q %s 2>/dev/null", p), 2,
			     "QEMU sees an index too large too");
}

Test(check, out_of_range_inside_file)
{
	const char *p = make("range.vdi");
	struct vdi_check_result r;

	poke(p, 2 * MiB + 6 * MiB - 1, "x", 1); /* the file holds 6 blocks */
	poke(p, 2 * MiB + 4 * MiB, "y", 1);     /* physical 4 holds data */
	poke32(p, BMAP + 12, 5); /* block 3 -> physical 5: in the file */
	r = check(p);
	cr_assert_eq(r.out_of_range, 1);
	cr_assert_eq(r.past_eof, 0);
	cr_assert_eq(r.leaks, 2, "physical 3 and 4 unused: %s", problems);
}

Test(check, allocated_mismatch)
{
	const char *p = make("count.vdi");
	struct vdi_check_result r;

	poke32(p, 0x184, 7);
	r = check(p);
	cr_assert_eq(r.allocated_mismatch, 1);
	cr_assert(strstr(problems, "header says 7 blocks are allocated, the block map has 4"),
		  "%s", problems);
	if (have_qemu("qemu-img"))
		cr_assert_eq(sh("qemu-img check -q %s 2>/dev/null", p), 2);
}

Test(check, leak_at_end)
{
	const char *p = make("leak.vdi");
	struct vdi_check_result r;

	poke(p, 2 * MiB + 5 * MiB - 1, "x", 1); /* data in a 5th block */
	r = check(p);
	cr_assert_eq(r.corruptions, 0, "%s", problems);
	cr_assert_eq(r.leaks, 1);
	cr_assert_eq(r.leaked_bytes, MiB);
	cr_assert_eq(r.holes, 0);
}

Test(check, hole_at_end_is_no_leak)
{
	const char *p = make("hole.vdi");
	struct vdi_check_result r;

	cr_assert_eq(truncate(p, (off_t)(2 * MiB + 5 * MiB)), 0);
	r = check(p);
	cr_assert_eq(r.corruptions + r.leaks, 0, "%s", problems);
	cr_assert_eq(r.holes, 1, "a block of the file without data");
}

QEMU_ORACLE_TEST(check)
