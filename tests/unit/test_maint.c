/* Offline maintenance: compact and resize, checked against a raw model
 * and against QEMU. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "vdi.h"

#define MiB (1ull << 20)

static void write_raw(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	cr_assert(f);
	cr_assert_eq(fwrite(buf, 1, len, f), len);
	fclose(f);
}

/* The VDI reads exactly as `model` (libvdi), and QEMU agrees. */
static void assert_disk(const char *p, const unsigned char *model, size_t len)
{
	struct vdi_image *img;
	struct vdi_check_result cr;
	unsigned char *buf = malloc(len);

	cr_assert_eq(vdi_open(p, VDI_OPEN_RDONLY, &img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_get_size(img), len);
	cr_assert_eq(vdi_pread(img, buf, len, 0), (ssize_t)len);
	cr_assert_eq(memcmp(buf, model, len), 0, "contents");
	cr_assert_eq(vdi_check(img, &cr, NULL, NULL), 0);
	cr_assert_eq(cr.corruptions + cr.leaks, 0, "vdi check clean");
	vdi_close(img);
	free(buf);
	if (have_qemu("qemu-img")) {
		write_raw(tpath("model.raw"), model, len);
		cr_assert_eq(sh("qemu-img check -q %s", p), 0);
		cr_assert_eq(sh("qemu-img compare -q -f vdi -F raw %s %s", p,
				tpath("model.raw")), 0);
	}
}

/* What a vdi_progress_fn was called with. */
struct calls {
	unsigned n;
	uint64_t done[64], total[64];
};

static void record(void *opaque, uint64_t done, uint64_t total)
{
	struct calls *c = opaque;

	cr_assert_lt(c->n, 64, "too many progress calls");
	c->done[c->n] = done;
	c->total[c->n] = total;
	c->n++;
}

/* Calls with one total, `done` never going back, done <= total; and the
 * last call at the total when `finished`. */
static void assert_progress(const struct calls *c, uint64_t total,
			    bool finished)
{
	cr_assert_gt(c->n, 0, "no progress call");
	for (unsigned i = 0; i < c->n; i++) {
		cr_assert_eq(c->total[i], total, "call %u: total %llu, not %llu",
			     i, (unsigned long long)c->total[i],
			     (unsigned long long)total);
		cr_assert_leq(c->done[i], total);
		if (i)
			cr_assert_geq(c->done[i], c->done[i - 1], "went back");
	}
	if (finished)
		cr_assert_eq(c->done[c->n - 1], total, "ends at the total");
	else
		cr_assert_lt(c->done[c->n - 1], total, "stopped short");
}

Test(maint, compact)
{
	const char *p = tpath("c.vdi");
	unsigned char *model = calloc(1, 16 * MiB);
	struct vdi_compact_result res;
	struct vdi_image *img;
	struct stat st;

	unlink(p);
	cr_assert_eq(vdi_create(p, 16 * MiB, NULL), 0);
	cr_assert_eq(vdi_open(p, 0, &img), 0);
	pattern(model, 8 * MiB, 1);
	cr_assert_eq(vdi_pwrite(img, model, 8 * MiB, 0), (ssize_t)(8 * MiB));
	/* Block 2 ends up all zeros, written as data in two pieces. */
	memset(model + 2 * MiB, 0, MiB);
	cr_assert_eq(vdi_pwrite(img, model + 2 * MiB, MiB / 2, 2 * MiB), (ssize_t)(MiB / 2));
	cr_assert_eq(vdi_pwrite(img, model, MiB / 2, 2 * MiB + MiB / 2), (ssize_t)(MiB / 2));
	cr_assert_eq(vdi_write_zeroes(img, 2 * MiB + MiB / 2, MiB / 2), 0);
	/* Blocks 1 and 3 discarded: their slots punched (still theirs). */
	cr_assert_eq(vdi_discard(img, MiB, MiB), 0);
	cr_assert_eq(vdi_discard(img, 3 * MiB, MiB), 0);
	memset(model + MiB, 0, MiB);
	memset(model + 3 * MiB, 0, MiB);
	cr_assert_eq(vdi_close(img), 0);

	cr_assert_eq(vdi_compact(p, &res, NULL, NULL), 0, "%s", vdi_errmsg());
	cr_assert_eq(res.zero_blocks, 3, "block 2, and the punched 1 and 3");
	cr_assert_eq(res.blocks_moved, 3, "blocks 5..7 fill holes 1..3 (block 4 has 4)");
	cr_assert_eq(res.file_size_before, 2 * MiB + 8 * MiB);
	cr_assert_eq(res.file_size_after, 2 * MiB + 5 * MiB);
	stat(p, &st);
	cr_assert_eq((uint64_t)st.st_size, res.file_size_after);
	assert_disk(p, model, 16 * MiB);
	cr_assert_eq(peek32(p, 0x184), 5);
	free(model);
}

Test(maint, compact_refuses_static_and_corrupt)
{
	const char *p = tpath("cs.vdi");
	struct vdi_create_opts o = { .type = VDI_TYPE_STATIC };
	struct vdi_compact_result res;

	unlink(p);
	cr_assert_eq(vdi_create(p, 4 * MiB, &o), 0);
	cr_assert_eq(vdi_compact(p, &res, NULL, NULL), -ENOTSUP);
	cr_assert(strstr(vdi_errmsg(), "this one is static"), "%s", vdi_errmsg());
	unlink(p);
	cr_assert_eq(vdi_create(p, 4 * MiB, NULL), 0);
	poke32(p, MiB, 7); /* past the end of the file */
	cr_assert_eq(vdi_compact(p, &res, NULL, NULL), -EUCLEAN);
	cr_assert(strstr(vdi_errmsg(), "vdi check -r all"), "%s", vdi_errmsg());
}

Test(maint, grow_in_place)
{
	const char *p = tpath("g.vdi");
	unsigned char *model = calloc(1, 64 * MiB);
	struct vdi_image *img;

	unlink(p);
	cr_assert_eq(vdi_create(p, 16 * MiB, NULL), 0);
	cr_assert_eq(vdi_open(p, 0, &img), 0);
	pattern(model + 15 * MiB, MiB, 3);
	cr_assert_eq(vdi_pwrite(img, model + 15 * MiB, MiB, 15 * MiB), (ssize_t)MiB);
	cr_assert_eq(vdi_close(img), 0);
	cr_assert_eq(vdi_resize(p, 64 * MiB, 0), 0, "%s", vdi_errmsg());
	cr_assert_eq(peek32(p, 0x154), MiB, "the block map did not move");
	assert_disk(p, model, 64 * MiB);
	free(model);
}

/* A QEMU image has its block map right before the data: growing moves the
 * map to where the first data blocks were. */
Test(maint, grow_moves_the_block_map)
{
	const char *p = tpath("q.vdi");
	struct calls calls = { 0 };
	unsigned char *model;
	FILE *f;

	if (!have_qemu("qemu-img") || !have_qemu("qemu-io"))
		cr_skip_test("qemu-img not installed");
	cr_assert_eq(sh("qemu-img create -q -f vdi %s 8M && qemu-io -f vdi "
			"-c 'write -P 0x61 0 1M' -c 'write -P 0x62 3M 4k' "
			"-c 'write -P 0x63 7M 1M' %s >/dev/null", p, p), 0);
	cr_assert_eq(sh("qemu-img convert -O raw %s %s", p, tpath("q.raw")), 0);
	model = calloc(1, 1024 * MiB);
	f = fopen(tpath("q.raw"), "rb");
	cr_assert_eq(fread(model, 1, 8 * MiB, f), 8 * MiB);
	fclose(f);
	cr_assert_lt(peek32(p, 0x158) - peek32(p, 0x154), 1024 * 4, "little room");
	cr_assert_eq(vdi_resize_with_progress(p, 1024 * MiB, 0, record, &calls),
		     0, "%s", vdi_errmsg());
	cr_assert_eq(peek32(p, 0x180), 1024);
	assert_disk(p, model, 1024 * MiB);
	/* The 4 KiB map takes one slot: block 0's, which moves; then the
	 * rest.  0/2, 1/2, 2/2. */
	assert_progress(&calls, 2, true);
	cr_assert_eq(calls.n, 3);
	free(model);
}

Test(maint, shrink)
{
	const char *p = tpath("s.vdi");
	unsigned char *model = calloc(1, 8 * MiB);
	struct calls calls = { 0 }, refused = { 0 };
	struct vdi_image *img;

	unlink(p);
	cr_assert_eq(vdi_create(p, 8 * MiB, NULL), 0);
	cr_assert_eq(vdi_open(p, 0, &img), 0);
	pattern(model, 3 * MiB, 4);
	cr_assert_eq(vdi_pwrite(img, model, 3 * MiB, 0), (ssize_t)(3 * MiB));
	cr_assert_eq(vdi_pwrite(img, model + 7 * MiB, 4096, 7 * MiB), 4096);
	cr_assert_eq(vdi_close(img), 0);
	cr_assert_eq(vdi_resize(p, 4 * MiB, 0), -EINVAL, "shrinking not asked for");
	cr_assert(strstr(vdi_errmsg(), "shrinking must be asked for"), "%s", vdi_errmsg());
	cr_assert_eq(vdi_resize_with_progress(p, 2 * MiB + 512, VDI_RESIZE_SHRINK,
					      record, &refused), -ENOTEMPTY);
	cr_assert(strstr(vdi_errmsg(), "block 2 holds data past it"), "%s", vdi_errmsg());
	/* Blocks 2 and 7 to read, and the rest: stopped after block 2. */
	assert_progress(&refused, 3, false);
	/* Block 7 holds only zeros: it may go. */
	cr_assert_eq(vdi_resize_with_progress(p, 3 * MiB, VDI_RESIZE_SHRINK,
					      record, &calls), 0, "%s",
		     vdi_errmsg());
	assert_disk(p, model, 3 * MiB);
	assert_progress(&calls, 2, true); /* block 7 read, the rest */
	free(model);
}

Test(maint, grow_static)
{
	const char *p = tpath("st.vdi");
	struct vdi_create_opts o = { .type = VDI_TYPE_STATIC };
	unsigned char *model = calloc(1, 8 * MiB);
	struct vdi_image *img;

	unlink(p);
	cr_assert_eq(vdi_create(p, 4 * MiB, &o), 0);
	cr_assert_eq(vdi_resize(p, 8 * MiB, 0), 0, "%s", vdi_errmsg());
	cr_assert_eq(peek32(p, 0x184), 8, "new blocks allocated too");
	cr_assert_eq(vdi_open(p, 0, &img), 0);
	pattern(model + 6 * MiB, MiB, 5);
	cr_assert_eq(vdi_pwrite(img, model + 6 * MiB, MiB, 6 * MiB), (ssize_t)MiB);
	cr_assert_eq(vdi_close(img), 0);
	assert_disk(p, model, 8 * MiB);
	free(model);
}

/* A repair that moves a block: block 1's entry freed (its slot 1 leaked
 * in the middle) and the header count lowered to match; the block of the
 * highest slot (4) moves into slot 1, and the file is cut after slot 3.
 * Progress: the check, one copy, the rest. */
Test(maint, repair_progress)
{
	const char *p = tpath("r.vdi");
	unsigned char *model = calloc(1, 8 * MiB);
	struct vdi_repair_result res;
	struct calls calls = { 0 };
	struct vdi_image *img;
	struct stat st;

	unlink(p);
	cr_assert_eq(vdi_create(p, 8 * MiB, NULL), 0);
	cr_assert_eq(vdi_open(p, 0, &img), 0);
	pattern(model, 5 * MiB, 6);
	cr_assert_eq(vdi_pwrite(img, model, 5 * MiB, 0), (ssize_t)(5 * MiB));
	cr_assert_eq(vdi_close(img), 0);
	poke32(p, MiB + 4, 0xFFFFFFFF); /* block 1: free */
	poke32(p, 0x184, 4);
	memset(model + MiB, 0, MiB);
	cr_assert_eq(vdi_repair_with_progress(p, VDI_REPAIR_LEAKS, &res, NULL,
					      NULL, record, &calls), 2,
		     "%s", vdi_errmsg());
	cr_assert_eq(res.leaks_fixed, 2, "one block moved, one cut off");
	cr_assert_eq(peek32(p, MiB + 16), 1, "block 4 now in slot 1");
	stat(p, &st);
	cr_assert_eq((uint64_t)st.st_size, 2 * MiB + 4 * MiB);
	assert_disk(p, model, 8 * MiB);
	assert_progress(&calls, 3, true);
	cr_assert_eq(calls.done[0], 1, "the check first");
	cr_assert_eq(calls.n, 3);
	free(model);
}

QEMU_ORACLE_TEST(maint)
