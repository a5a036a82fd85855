/* Differencing images: reads through the chain, copy-on-write, zero
 * blocks hiding the parent, parent lookup, mismatches, commit. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "0-base/fault.h"
#include "2-image/image.h" /* the disk view (vdi_disk_get) */
#include "3-durable/durable.h" /* vdi_is_staged */
#include "util.h"
#include "vdi.h"

#define MiB (1ull << 20)
#define SIZE (8 * MiB)

static unsigned char *model;

/* base.vdi with data in blocks 0..3, then child.vdi made from it. */
static void make_pair(const char *base, const char *child)
{
	struct vdi_create_opts o = { .parent = base };
	struct vdi_image *img;

	unlink(base);
	unlink(child);
	model = calloc(1, SIZE);
	pattern(model, 4 * MiB, 11);
	cr_assert_eq(vdi_create(base, SIZE, NULL), 0);
	cr_assert_eq(vdi_open(base, 0, &img), 0);
	cr_assert_eq(vdi_pwrite(img, model, 4 * MiB, 0), (ssize_t)(4 * MiB));
	cr_assert_eq(vdi_close(img), 0);
	cr_assert_eq(vdi_create(child, 0, &o), 0, "%s", vdi_errmsg());
}

static void assert_reads(const char *path, const char *parent,
			 const unsigned char *want)
{
	struct vdi_image *img;
	unsigned char *buf = malloc(SIZE);

	cr_assert_eq(vdi_open_parent(path, VDI_OPEN_RDONLY, parent, &img), 0,
		     "%s", vdi_errmsg());
	cr_assert_eq(vdi_pread(img, buf, SIZE, 0), (ssize_t)SIZE);
	cr_assert_eq(memcmp(buf, want, SIZE), 0, "%s reads as expected", path);
	vdi_close(img);
	free(buf);
}

Test(chain, create_and_read_through)
{
	const char *base = tpath("base.vdi"), *child = tpath("child.vdi");
	struct vdi_image *img;
	struct vdi_info info;

	make_pair(base, child);
	cr_assert_eq(peek32(child, 0x4C), VDI_TYPE_DIFF);
	for (int i = 0; i < 16; i += 4)
		cr_assert_eq(peek32(child, 0x1A8 + i), peek32(base, 0x188 + i),
			     "link UUID is the parent's creation UUID");
	for (int i = 0; i < 16; i += 4)
		cr_assert_eq(peek32(child, 0x1B8 + i), peek32(base, 0x198 + i),
			     "parent-modification UUID is the parent's");
	assert_reads(child, NULL, model);
	cr_assert_eq(vdi_open(child, VDI_OPEN_RDONLY, &img), 0);
	cr_assert_not_null(vdi_get_parent(img), "parent found in the directory");
	cr_assert_str_eq(vdi_get_filename(vdi_get_parent(img)), base);
	vdi_get_info(img, &info);
	cr_assert_eq(info.blocks_mapped, 0, "the child holds no data yet");
	vdi_close(img);
	free(model);
}

Test(chain, copy_on_write_and_zero_blocks)
{
	const char *base = tpath("b2.vdi"), *child = tpath("c2.vdi");
	unsigned char *base_model, patch[4096];
	struct vdi_image *img;
	struct vdi_check_result cr;

	make_pair(base, child);
	base_model = malloc(SIZE);
	memcpy(base_model, model, SIZE);
	cr_assert_eq(vdi_open(child, 0, &img), 0, "%s", vdi_errmsg());
	pattern(patch, sizeof(patch), 99);
	/* Part of block 1: the rest of it must come from the parent. */
	cr_assert_eq(vdi_pwrite(img, patch, sizeof(patch), MiB + 12345), 4096);
	memcpy(model + MiB + 12345, patch, sizeof(patch));
	/* Block 2 discarded: a zero entry hides the parent's data. */
	cr_assert_eq(vdi_discard(img, 2 * MiB, MiB), 0);
	memset(model + 2 * MiB, 0, MiB);
	/* Zeros over part of block 3. */
	cr_assert_eq(vdi_write_zeroes(img, 3 * MiB + 100, 1000), 0);
	memset(model + 3 * MiB + 100, 0, 1000);
	/* A block the parent does not have. */
	cr_assert_eq(vdi_pwrite(img, patch, sizeof(patch), 6 * MiB), 4096);
	memcpy(model + 6 * MiB, patch, sizeof(patch));
	cr_assert_eq(vdi_check(img, &cr, NULL, NULL), 0);
	cr_assert_eq(cr.corruptions + cr.leaks, 0);
	cr_assert_eq(vdi_close(img), 0);
	assert_reads(child, NULL, model);
	assert_reads(base, NULL, base_model);
	cr_assert_eq(peek32(child, MiB + 4 * 2), VDI_BMAP_ZERO);
	cr_assert_eq(peek32(child, MiB + 4 * 0), VDI_BMAP_FREE, "block 0 still shared");
	free(model);
	free(base_model);
}

Test(chain, three_levels_and_explicit_parent)
{
	const char *base = tpath("b3.vdi"), *mid = tpath("m3.vdi");
	const char *top = tpath("t3.vdi");
	struct vdi_create_opts o = { .parent = mid };
	struct vdi_image *img;
	unsigned char patch[512];

	make_pair(base, mid);
	cr_assert_eq(vdi_open(mid, 0, &img), 0);
	pattern(patch, sizeof(patch), 5);
	cr_assert_eq(vdi_pwrite(img, patch, 512, 5 * MiB), 512);
	memcpy(model + 5 * MiB, patch, 512);
	cr_assert_eq(vdi_close(img), 0);
	unlink(top);
	cr_assert_eq(vdi_create(top, 0, &o), 0, "%s", vdi_errmsg());
	assert_reads(top, NULL, model);
	assert_reads(top, mid, model);
	cr_assert_eq(vdi_open_parent(top, VDI_OPEN_RDONLY, base, &img), -EINVAL,
		     "the grandparent is not the parent");
	cr_assert(strstr(vdi_errmsg(), "but the image links to"), "%s", vdi_errmsg());
	free(model);
}

Test(chain, parent_changed_or_missing)
{
	const char *base = tpath("b4.vdi"), *child = tpath("c4.vdi");
	struct vdi_image *img;

	make_pair(base, child);
	cr_assert_eq(vdi_open(base, 0, &img), 0);
	cr_assert_eq(vdi_pwrite(img, "x", 1, 0), 1);
	cr_assert_eq(vdi_close(img), 0);
	cr_assert_eq(vdi_open(child, VDI_OPEN_RDONLY, &img), -ESTALE);
	cr_assert(strstr(vdi_errmsg(), "was modified after"), "%s", vdi_errmsg());
	unlink(base);
	cr_assert_eq(vdi_open(child, VDI_OPEN_RDONLY, &img), -ENOENT);
	cr_assert(strstr(vdi_errmsg(), "no parent with UUID"), "%s", vdi_errmsg());
	free(model);
}

Test(chain, commit)
{
	const char *base = tpath("b5.vdi"), *child = tpath("c5.vdi");
	struct vdi_image *img;
	unsigned char patch[8192];

	make_pair(base, child);
	cr_assert_eq(vdi_open(child, 0, &img), 0);
	pattern(patch, sizeof(patch), 7);
	cr_assert_eq(vdi_pwrite(img, patch, sizeof(patch), MiB - 4096), 8192);
	memcpy(model + MiB - 4096, patch, sizeof(patch));
	cr_assert_eq(vdi_discard(img, 3 * MiB, MiB), 0);
	memset(model + 3 * MiB, 0, MiB);
	cr_assert_eq(vdi_close(img), 0);
	cr_assert_eq(vdi_commit(child, NULL, NULL, NULL), 0, "%s", vdi_errmsg());
	assert_reads(base, NULL, model);
	assert_reads(child, NULL, model);
	if (have_qemu("qemu-img"))
		cr_assert_eq(sh("qemu-img check -q %s", base), 0);
	cr_assert_eq(vdi_commit(base, NULL, NULL, NULL), -EINVAL,
		     "a base image has nothing to commit");
	free(model);
}

/* Fault hook: from the n-th data write on, fail them all with EIO. */
static struct {
	enum vdi_io_kind kind;
	int left;
} stop_at;

static int fail_nth(void *opaque, enum vdi_io_kind kind, uint64_t off,
		    size_t len, const struct iovec *iov, int iovcnt, int res)
{
	(void)opaque, (void)len, (void)iov, (void)iovcnt;
	(void)off;
	if (kind == stop_at.kind && (stop_at.left == 0 || --stop_at.left == 0))
		return -EIO;
	return res;
}

static const struct vdi_fault_hook fail_hook = { .io = fail_nth };

/* The child with a patch over blocks 0 and 1 (so the model changes). */
static void write_patch(const char *child)
{
	struct vdi_image *img;
	unsigned char patch[8192];

	cr_assert_eq(vdi_open(child, 0, &img), 0, "%s", vdi_errmsg());
	pattern(patch, sizeof(patch), 8);
	cr_assert_eq(vdi_pwrite(img, patch, sizeof(patch), MiB - 4096), 8192);
	memcpy(model + MiB - 4096, patch, sizeof(patch));
	cr_assert_eq(vdi_close(img), 0);
}

/* Stopped between the parent's header (new modification UUID) and the
 * child's (recording it), the two disagree: a plain open refuses the
 * child, a sibling made from the old parent is refused for good, and the
 * commit run again recognises its own UUID and finishes.  The seam reports
 * errors after the real write, so that state is made by putting the
 * child's old header back after a commit that stopped at its first data
 * write: step 2 changes nothing else in the child. */
Test(chain, commit_stopped_between_headers_resumes)
{
	const char *base = tpath("b7.vdi"), *child = tpath("c7.vdi"),
		   *sibling = tpath("s7.vdi");
	struct vdi_create_opts o = { .parent = base };
	struct vdi_image *img;
	unsigned char old_header[512];
	FILE *f;

	make_pair(base, child);
	cr_assert_eq(vdi_create(sibling, 0, &o), 0, "%s", vdi_errmsg());
	write_patch(child);
	f = fopen(child, "rb");
	cr_assert(f && fread(old_header, 1, 512, f) == 512);
	fclose(f);
	stop_at.kind = VDI_IO_WRITE;
	stop_at.left = 1;
	vdi_fault_set(&fail_hook);
	cr_assert_lt(vdi_commit(child, NULL, NULL, NULL), 0);
	vdi_fault_set(NULL);
	poke(child, 0, old_header, 512);

	cr_assert_eq(vdi_open(child, VDI_OPEN_RDONLY, &img), -ESTALE, "%s",
		     vdi_errmsg());
	cr_assert_eq(vdi_open(sibling, VDI_OPEN_RDONLY, &img), -ESTALE,
		     "the parent's change is visible to its other children");
	cr_assert_eq(vdi_commit(child, NULL, NULL, NULL), 0, "%s", vdi_errmsg());
	assert_reads(base, NULL, model);
	assert_reads(child, NULL, model);
	cr_assert_eq(vdi_open(sibling, VDI_OPEN_RDONLY, &img), -ESTALE);
	free(model);
}

/* Stopped while copying, the images already agree: the commit runs again
 * as if new. */
Test(chain, commit_stopped_while_copying_resumes)
{
	const char *base = tpath("b8.vdi"), *child = tpath("c8.vdi");
	struct vdi_image *img;

	make_pair(base, child);
	write_patch(child);
	stop_at.kind = VDI_IO_WRITE;
	stop_at.left = 1;
	vdi_fault_set(&fail_hook);
	cr_assert_lt(vdi_commit(child, NULL, NULL, NULL), 0);
	vdi_fault_set(NULL);
	cr_assert_eq(stop_at.left, 0, "a data write was reached");
	cr_assert_eq(vdi_open(child, VDI_OPEN_RDONLY, &img), 0, "%s",
		     vdi_errmsg());
	vdi_close(img);
	cr_assert_eq(vdi_commit(child, NULL, NULL, NULL), 0, "%s", vdi_errmsg());
	assert_reads(base, NULL, model);
	assert_reads(child, NULL, model);
	if (have_qemu("qemu-img"))
		cr_assert_eq(sh("qemu-img check -q %s", base), 0);
	free(model);
}

/* A parent changed by someone else is still refused by commit. */
Test(chain, commit_refuses_a_parent_changed_by_others)
{
	const char *base = tpath("b9.vdi"), *child = tpath("c9.vdi");
	struct vdi_image *img;

	make_pair(base, child);
	cr_assert_eq(vdi_open(base, 0, &img), 0);
	cr_assert_eq(vdi_pwrite(img, "y", 1, 0), 1);
	cr_assert_eq(vdi_close(img), 0);
	cr_assert_eq(vdi_commit(child, NULL, NULL, NULL), -ESTALE);
	cr_assert(strstr(vdi_errmsg(), "not by a commit of this image"), "%s",
		  vdi_errmsg());
	free(model);
}

/* VDI_OPEN_NO_PARENT: the child alone, parent gone. */
Test(chain, no_parent_opens_the_image_alone)
{
	const char *base = tpath("b10.vdi"), *child = tpath("c10.vdi");
	unsigned char *buf = malloc(2 * MiB), *full = malloc(MiB);
	struct vdi_check_result res;
	struct vdi_image *img;

	make_pair(base, child);
	write_patch(child); /* block 0 and 1 now in the child */
	unlink(base);
	cr_assert_eq(vdi_open(child, VDI_OPEN_RDONLY, &img), -ENOENT);
	cr_assert_eq(vdi_open(child, VDI_OPEN_RDONLY | VDI_OPEN_NO_PARENT, &img),
		     0, "%s", vdi_errmsg());
	cr_assert_null(vdi_get_parent(img));
	cr_assert_eq(vdi_pread(img, buf, 2 * MiB, 0), (ssize_t)(2 * MiB),
		     "blocks the child holds read: %s", vdi_errmsg());
	cr_assert_eq(memcmp(buf, model, 2 * MiB), 0);
	cr_assert_eq(vdi_pread(img, buf, 4096, 2 * MiB + 5), -ENOLINK);
	cr_assert(strstr(vdi_errmsg(), "block 2 is in the parent"), "%s",
		  vdi_errmsg());
	cr_assert_eq(vdi_check(img, &res, NULL, NULL), 0);
	cr_assert_eq(res.corruptions + res.leaks, 0);
	vdi_close(img);

	cr_assert_eq(vdi_open(child, VDI_OPEN_NO_PARENT, &img), 0, "%s",
		     vdi_errmsg());
	cr_assert_eq(vdi_pwrite(img, "z", 1, 5 * MiB), -ENOLINK,
		     "a partial write needs the parent's block");
	pattern(full, MiB, 3);
	cr_assert_eq(vdi_pwrite(img, full, MiB, 5 * MiB), (ssize_t)MiB,
		     "a whole block needs nothing from the parent: %s",
		     vdi_errmsg());
	cr_assert_eq(vdi_discard(img, 6 * MiB, MiB), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_close(img), 0);
	cr_assert_eq(vdi_open(child, VDI_OPEN_RDONLY | VDI_OPEN_NO_PARENT, &img), 0);
	cr_assert_eq(vdi_pread(img, buf, MiB, 5 * MiB), (ssize_t)MiB);
	cr_assert_eq(memcmp(buf, full, MiB), 0);
	cr_assert_eq(vdi_pread(img, buf, MiB, 6 * MiB), (ssize_t)MiB,
		     "a zero block hides the parent: %s", vdi_errmsg());
	vdi_close(img);
	free(buf);
	free(full);
	free(model);
}

/* Every level of a chain named, each image in its own directory, where
 * no search would find them. */
Test(chain, open_chain_names_every_level)
{
	const char *base = tpath("l0/base.vdi"), *mid = tpath("l1/mid.vdi"),
		   *top = tpath("l2/top.vdi");
	const char *both[2] = { mid, base }, *too_many[3] = { mid, base, base };
	struct vdi_create_opts o = { .parent = base };
	struct vdi_image *img;

	cr_assert_eq(sh("mkdir -p %s %s %s", tpath("l0"), tpath("l1"),
			tpath("l2")), 0);
	model = calloc(1, SIZE);
	pattern(model, SIZE, 21);
	cr_assert_eq(vdi_create(base, SIZE, NULL), 0);
	cr_assert_eq(vdi_open(base, 0, &img), 0);
	cr_assert_eq(vdi_pwrite(img, model, SIZE, 0), (ssize_t)SIZE);
	cr_assert_eq(vdi_close(img), 0);
	cr_assert_eq(vdi_create(mid, 0, &o), 0, "%s", vdi_errmsg());
	o.parent = mid;
	cr_assert_eq(vdi_create(top, 0, &o), 0, "%s", vdi_errmsg());

	cr_assert_eq(vdi_open_parent(top, VDI_OPEN_RDONLY, mid, &img), -ENOENT,
		     "the grandparent is not next to the parent");
	cr_assert_eq(vdi_open_chain(top, VDI_OPEN_RDONLY, both, 2, &img), 0,
		     "%s", vdi_errmsg());
	cr_assert_str_eq(vdi_get_filename(vdi_get_parent(vdi_get_parent(img))),
			 base);
	vdi_close(img);
	assert_reads(mid, base, model);
	/* Extra names are ignored by the library (the tool refuses them). */
	cr_assert_eq(vdi_open_chain(top, VDI_OPEN_RDONLY, too_many, 3, &img), 0);
	vdi_close(img);
	cr_assert_eq(vdi_open_chain(top, 0x80000000u, both, 2, &img), -EINVAL,
		     "internal flags are refused");
	free(model);
}

/* vdi_compact of a differencing image, as VirtualBox compacts one: blocks
 * equal to what the parent gives become free again, blocks of zeros over
 * the parent's data become zero entries, the rest move down; it reads the
 * same throughout, and its modification UUID stays. */
Test(chain, compact_a_child)
{
	const char *base = tpath("b11.vdi"), *child = tpath("c11.vdi");
	unsigned char *zeros = calloc(1, MiB), patch[4096];
	struct vdi_compact_result res;
	struct vdi_check_result cr;
	struct vdi_info before, after;
	struct vdi_image *img;

	make_pair(base, child);
	cr_assert_eq(vdi_open(child, 0, &img), 0);
	/* Block 0: the parent's own bytes, written whole. */
	cr_assert_eq(vdi_pwrite(img, model, MiB, 0), (ssize_t)MiB);
	/* Block 5: zeros where the parent has none (4 KiB: allocates). */
	cr_assert_eq(vdi_pwrite(img, zeros, 4096, 5 * MiB), 4096);
	/* Block 2: zeros over the parent's data, in two halves. */
	cr_assert_eq(vdi_pwrite(img, zeros, MiB / 2, 2 * MiB), (ssize_t)(MiB / 2));
	cr_assert_eq(vdi_pwrite(img, zeros, MiB / 2, 2 * MiB + MiB / 2),
		     (ssize_t)(MiB / 2));
	memset(model + 2 * MiB, 0, MiB);
	/* Block 3: really different. */
	pattern(patch, sizeof(patch), 12);
	cr_assert_eq(vdi_pwrite(img, patch, sizeof(patch), 3 * MiB + 100), 4096);
	memcpy(model + 3 * MiB + 100, patch, sizeof(patch));
	cr_assert_eq(vdi_close(img), 0);
	cr_assert_eq(vdi_open(child, VDI_OPEN_RDONLY, &img), 0);
	cr_assert_eq(vdi_get_info(img, &before), 0);
	cr_assert_eq(before.blocks_mapped, 4);
	vdi_close(img);

	cr_assert_eq(vdi_compact(child, &res, NULL, NULL), 0, "%s", vdi_errmsg());
	cr_assert_eq(res.parent_blocks, 2, "blocks 0 and 5");
	cr_assert_eq(res.zero_blocks, 1, "block 2");
	cr_assert_eq(res.blocks_moved, 1, "block 3 moves to the first slot");
	cr_assert_lt(res.file_size_after, res.file_size_before);
	assert_reads(child, NULL, model);
	cr_assert_eq(vdi_open(child, VDI_OPEN_RDONLY, &img), 0);
	cr_assert_eq(vdi_get_info(img, &after), 0);
	cr_assert_eq(after.blocks_mapped, 1);
	cr_assert_eq(memcmp(before.uuid_modify, after.uuid_modify, 16), 0,
		     "the content did not change: neither does the UUID");
	cr_assert_eq(vdi_check(img, &cr, NULL, NULL), 0);
	cr_assert_eq(cr.corruptions + cr.leaks, 0);
	vdi_close(img);
	free(zeros);
	free(model);
}

/* A whole-block write allocates without copying the parent's block up.
 * If it never lands (the kernel refuses it here), the block must still
 * read as the parent's, and a later partial write must keep the parent's
 * data around it, also on disk after a flush. */
static int refuse_first(void *opaque, enum vdi_ring_kind kind, unsigned ready)
{
	int *left = opaque;

	if (kind == VDI_RING_QUEUE && *left > 0) {
		--*left;
		return -ENOMEM;
	}
	return (int)ready;
}

Test(chain, failed_whole_block_write_keeps_the_parent)
{
	const char *base = tpath("b12.vdi"), *child = tpath("c12.vdi");
	unsigned char *full = malloc(MiB), *buf = malloc(SIZE), patch[4096];
	int left = 1;
	const struct vdi_fault_submit_hook refuse = { refuse_first, &left };
	struct vdi_image *img;

	make_pair(base, child);
	cr_assert_eq(vdi_open(child, 0, &img), 0, "%s", vdi_errmsg());
	pattern(full, MiB, 30);
	vdi_fault_set_submit(&refuse);
	cr_assert_eq(vdi_pwrite(img, full, MiB, MiB), -ENOMEM,
		     "the whole-block write is refused");
	vdi_fault_set_submit(NULL);
	cr_assert_eq(left, 0);
	cr_assert_eq(vdi_pread(img, buf, MiB, MiB), (ssize_t)MiB);
	cr_assert_eq(memcmp(buf, model + MiB, MiB), 0,
		     "the block still reads as the parent's");
	pattern(patch, sizeof(patch), 31);
	cr_assert_eq(vdi_pwrite(img, patch, sizeof(patch), MiB + 8192),
		     (ssize_t)sizeof(patch), "%s", vdi_errmsg());
	memcpy(model + MiB + 8192, patch, sizeof(patch));
	cr_assert_eq(vdi_pread(img, buf, SIZE, 0), (ssize_t)SIZE);
	cr_assert_eq(memcmp(buf, model, SIZE), 0, "parent around the patch");
	cr_assert_eq(vdi_flush(img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_close(img), 0, "%s", vdi_errmsg());
	assert_reads(child, NULL, model);
	free(full);
	free(buf);
	free(model);
}

QEMU_ORACLE_TEST(chain)

/* A flush while a copy-up runs outside the lock: it may drop the copy of
 * the map sector that the allocation made (the copy matched `map` then,
 * the new entry not being stored yet).  The allocation must make it again
 * before it stores the entry, so that the new block's entry reaches the
 * disk only after its data (staged), never straight away. */
static struct vdi_image *flush_img;
static int flushes_in_copy_up;

static int flush_on_copy_up(void *opaque, enum vdi_io_kind kind, uint64_t off,
			    size_t len, const struct iovec *iov, int iovcnt,
			    int res)
{
	/* The copy-up's write into the data area (the child's slots). */
	if (kind == VDI_IO_META && len >= MiB && !flushes_in_copy_up++)
		cr_assert_eq(vdi_flush(flush_img), 0, "%s", vdi_errmsg());
	return res;
}

Test(chain, flush_during_copy_up_keeps_the_entry_off_disk)
{
	const char *base = tpath("b13.vdi"), *child = tpath("c13.vdi");
	const struct vdi_fault_hook hook = { .io = flush_on_copy_up };
	unsigned char *full = malloc(MiB), patch[4096];

	make_pair(base, child);
	cr_assert_eq(vdi_open(child, 0, &flush_img), 0, "%s", vdi_errmsg());
	/* Block 2 whole: staged in map sector 0, which gets a copy. */
	pattern(full, MiB, 40);
	cr_assert_eq(vdi_pwrite(flush_img, full, MiB, 2 * MiB), (ssize_t)MiB);
	memcpy(model + 2 * MiB, full, MiB);
	cr_assert(vdi_is_staged(flush_img, 2));
	/* Part of block 1: copied up from the parent, the flush runs then. */
	pattern(patch, sizeof(patch), 41);
	vdi_fault_set(&hook);
	cr_assert_eq(vdi_pwrite(flush_img, patch, sizeof(patch), MiB + 100),
		     (ssize_t)sizeof(patch), "%s", vdi_errmsg());
	vdi_fault_set(NULL);
	memcpy(model + MiB + 100, patch, sizeof(patch));
	cr_assert_eq(flushes_in_copy_up, 1, "the hook ran once");
	cr_assert_eq(vdi_disk_get(flush_img, 2), 0, "block 2 flushed (slot 0)");
	cr_assert(vdi_is_staged(flush_img, 1),
		  "block 1's entry waits for the next flush");
	cr_assert_eq(vdi_disk_get(flush_img, 1), VDI_BMAP_FREE);
	cr_assert_eq(vdi_close(flush_img), 0, "%s", vdi_errmsg());
	cr_assert_eq(peek32(child, MiB + 4 * 1), 1, "block 1 in slot 1");
	assert_reads(child, NULL, model);
	free(full);
	free(model);
}
