/* The I/O core through the public API: data integrity, splitting and
 * merging, allocation, metadata coalescing, errors. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "2-image/image.h" /* disk_count: the sector copies held */
#include "util.h"
#include "vdi.h"

#define MiB (1ull << 20)

static struct vdi_image *mk(const char *name, uint64_t size, unsigned flags)
{
	struct vdi_image *img;
	const char *p = tpath(name);

	unlink(p);
	cr_assert_eq(vdi_create(p, size, NULL), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_open(p, flags, &img), 0, "%s", vdi_errmsg());
	return img;
}

static void reopen(struct vdi_image **img, const char *name, unsigned flags)
{
	cr_assert_eq(vdi_close(*img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_open(tpath(name), flags, img), 0, "%s", vdi_errmsg());
}

Test(io, fresh_image_reads_zeros_without_io)
{
	struct vdi_image *img = mk("z.vdi", 16 * MiB, 0);
	unsigned char *buf = malloc(16 * MiB);
	struct vdi_stats st;
	size_t i;

	memset(buf, 0xEE, 16 * MiB);
	cr_assert_eq(vdi_pread(img, buf, 16 * MiB, 0), (ssize_t)(16 * MiB));
	for (i = 0; i < 16 * MiB; i++)
		cr_assert_eq(buf[i], 0, "byte %zu", i);
	vdi_get_stats(img, &st);
	cr_assert_eq(st.sqes, 0, "no SQE for unallocated blocks");
	cr_assert_eq(st.data_read_bytes, 0);
	free(buf);
	vdi_close(img);
}

/* Write unaligned, block-crossing ranges; read them back before and after
 * reopening, buffered and O_DIRECT. */
static void roundtrip(unsigned flags)
{
	struct vdi_image *img = mk("rt.vdi", 8 * MiB, flags);
	unsigned char *w = malloc(8 * MiB), *r = malloc(8 * MiB);
	unsigned char *model = calloc(1, 8 * MiB);
	const struct { uint64_t off; size_t len; } ops[] = {
		{ 0, 4096 }, { MiB - 100, 300 }, { 3 * MiB + 7, 2 * MiB + 13 },
		{ 512, 512 }, { 7 * MiB, MiB }, { 1, 1 },
	};
	size_t i;

	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		pattern(w, ops[i].len, i + 1);
		cr_assert_eq(vdi_pwrite(img, w, ops[i].len, ops[i].off),
			     (ssize_t)ops[i].len, "%s", vdi_errmsg());
		memcpy(model + ops[i].off, w, ops[i].len);
	}
	cr_assert_eq(vdi_pread(img, r, 8 * MiB, 0), (ssize_t)(8 * MiB));
	cr_assert_eq(memcmp(r, model, 8 * MiB), 0, "same handle");
	reopen(&img, "rt.vdi", flags);
	memset(r, 0x5A, 8 * MiB);
	cr_assert_eq(vdi_pread(img, r + 3, 8 * MiB - 3, 3), (ssize_t)(8 * MiB - 3));
	cr_assert_eq(memcmp(r + 3, model + 3, 8 * MiB - 3), 0, "after reopen");
	cr_assert_eq(vdi_close(img), 0);
	if (have_qemu("qemu-img"))
		cr_assert_eq(sh("qemu-img check -q %s", tpath("rt.vdi")), 0);
	free(w);
	free(r);
	free(model);
}

Test(io, roundtrip_buffered) { roundtrip(0); }
Test(io, roundtrip_direct) { roundtrip(VDI_OPEN_DIRECT); }

/* O_DIRECT with the caller's buffers not aligned: each SQE goes through a
 * bounce buffer, and the queue keeps those buffers for the next SQEs
 * without clearing them.  A later, smaller write into a new block at the
 * end of the file (its edges read from past the end) and reads of every
 * size must see the model's bytes, never an earlier request's. */
Test(io, direct_bounce_buffers_hold_nothing_stale)
{
	struct vdi_image *img = mk("bb.vdi", 8 * MiB, VDI_OPEN_DIRECT);
	unsigned char *w = malloc(2 * MiB + 1), *r = malloc(8 * MiB + 1);
	unsigned char *model = calloc(1, 8 * MiB);
	const struct { uint64_t off; size_t len; } ops[] = {
		{ 5, MiB + 3000 },        /* fills a large bounce buffer */
		{ 2 * MiB + 100, 200 },   /* new block at the end of the file */
		{ 3 * MiB + 4000, 300 },  /* again, across a 4 KiB boundary */
		{ 6 * MiB - 7, 14 },      /* across a block boundary, new slots */
		{ 100, 50 },              /* into a written block */
	};
	struct vdi_queue *q;
	struct vdi_completion comp;
	size_t i, len;

	cr_assert_eq(vdi_queue_create(img, 4, 0, &q), 0, "%s", vdi_errmsg());
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		pattern(w + 1, ops[i].len, i + 11);
		cr_assert_eq(vdi_queue_write(q, w + 1, ops[i].len, ops[i].off,
					     NULL), 0);
		cr_assert_eq(vdi_queue_submit(q), 1);
		cr_assert_eq(vdi_queue_reap(q, &comp, 1, 1, NULL), 1);
		cr_assert_eq(comp.res, (int64_t)ops[i].len, "write %zu: %s", i,
			     vdi_errmsg());
		memcpy(model + ops[i].off, w + 1, ops[i].len);
		/* A read of the written block dirties the kept buffers
		 * with data before the next write takes one. */
		memset(r, 0xA5, 8 * MiB + 1);
		len = ops[i].len + 2000 < MiB ? ops[i].len + 2000 : MiB;
		cr_assert_eq(vdi_queue_read(q, r + 1, len, ops[i].off / 2,
					    NULL), 0);
		cr_assert_eq(vdi_queue_submit(q), 1);
		cr_assert_eq(vdi_queue_reap(q, &comp, 1, 1, NULL), 1);
		cr_assert_eq(comp.res, (int64_t)len);
		cr_assert_eq(memcmp(r + 1, model + ops[i].off / 2, len), 0,
			     "read after write %zu", i);
	}
	cr_assert_eq(vdi_queue_read(q, r + 1, 8 * MiB, 0, NULL), 0);
	cr_assert_eq(vdi_queue_submit(q), 1);
	cr_assert_eq(vdi_queue_reap(q, &comp, 1, 1, NULL), 1);
	cr_assert_eq(comp.res, (int64_t)(8 * MiB));
	for (i = 0; i < 8 * MiB; i++)
		cr_assert_eq(r[i + 1], model[i], "byte %zu: %#x, not %#x", i,
			     r[i + 1], model[i]);
	vdi_queue_destroy(q);
	cr_assert_eq(vdi_close(img), 0);
	free(w);
	free(r);
	free(model);
}

/* VDI_QUEUE_ONE_THREAD: the thread that made the queue uses it as any
 * other; a request submitted from another thread completes with EEXIST,
 * and the message names the flag; the owner goes on. */
struct other_thread {
	struct vdi_queue *q;
	int submit, reaped;
	int64_t res;
	char msg[512];
};

static void *submit_from_other_thread(void *arg)
{
	struct other_thread *o = arg;
	static unsigned char buf[4096];
	struct vdi_completion comp;

	memset(buf, 0x77, sizeof(buf));
	if (vdi_queue_write(o->q, buf, sizeof(buf), 0, (void *)2) < 0)
		return NULL;
	o->submit = vdi_queue_submit(o->q);
	snprintf(o->msg, sizeof(o->msg), "%s", vdi_errmsg());
	o->reaped = vdi_queue_reap(o->q, &comp, 1, 1, NULL);
	o->res = comp.res;
	return NULL;
}

Test(io, one_thread_queue)
{
	struct vdi_image *img = mk("ot.vdi", 4 * MiB, VDI_OPEN_DIRECT);
	struct other_thread o = { 0 };
	struct vdi_completion comp;
	unsigned char *buf, *back;
	pthread_t t;

	cr_assert_eq(posix_memalign((void **)&buf, 4096, 8192), 0);
	back = buf + 4096;
	cr_assert_eq(vdi_queue_create(img, 4, VDI_QUEUE_ONE_THREAD, &o.q), 0,
		     "%s", vdi_errmsg());
	if (!(vdi_queue_flags(o.q) & VDI_QUEUE_ONE_THREAD)) {
		vdi_queue_destroy(o.q);
		vdi_close(img);
		cr_skip_test("the kernel has no IORING_SETUP_DEFER_TASKRUN");
	}
	pattern(buf, 4096, 3);
	cr_assert_eq(vdi_queue_write(o.q, buf, 4096, MiB, (void *)1), 0);
	cr_assert_eq(vdi_queue_submit(o.q), 1);
	cr_assert_eq(vdi_queue_reap(o.q, &comp, 1, 1, NULL), 1);
	cr_assert_eq(comp.res, 4096, "%s", vdi_errmsg());

	cr_assert_eq(pthread_create(&t, NULL, submit_from_other_thread, &o), 0);
	pthread_join(t, NULL);
	/* Taken (vdi_queue_submit does not fail), and completed with the
	 * error the kernel gave. */
	cr_assert_eq(o.submit, 1);
	cr_assert(strstr(o.msg, "VDI_QUEUE_ONE_THREAD"), "message: %s", o.msg);
	cr_assert_eq(o.reaped, 1);
	cr_assert_eq(o.res, -EEXIST);

	cr_assert_eq(vdi_queue_read(o.q, back, 4096, MiB, (void *)3), 0);
	cr_assert_eq(vdi_queue_submit(o.q), 1);
	cr_assert_eq(vdi_queue_reap(o.q, &comp, 1, 1, NULL), 1);
	cr_assert_eq(comp.res, 4096);
	cr_assert_eq(memcmp(back, buf, 4096), 0);
	vdi_queue_destroy(o.q);
	cr_assert_eq(vdi_pread(img, back, 4096, 0), 4096);
	cr_assert_eq(back[0], 0, "the refused write left block 0 alone");
	cr_assert_eq(vdi_close(img), 0);
	free(buf);
}

Test(io, vectored)
{
	struct vdi_image *img = mk("v.vdi", 4 * MiB, 0);
	struct vdi_queue *q;
	unsigned char a[1000], b[MiB], c[3000], all[sizeof(a) + sizeof(b) + sizeof(c)];
	unsigned char back[sizeof(all)];
	struct iovec iov[3] = { { a, sizeof(a) }, { b, sizeof(b) }, { c, sizeof(c) } };
	struct vdi_completion comp;

	pattern(a, sizeof(a), 1);
	pattern(b, sizeof(b), 2);
	pattern(c, sizeof(c), 3);
	memcpy(all, a, sizeof(a));
	memcpy(all + sizeof(a), b, sizeof(b));
	memcpy(all + sizeof(a) + sizeof(b), c, sizeof(c));
	cr_assert_eq(vdi_queue_create(img, 4, 0, &q), 0);
	cr_assert_eq(vdi_queue_writev(q, iov, 3, MiB - 1500, (void *)7), 0);
	cr_assert_eq(vdi_queue_submit(q), 1);
	cr_assert_eq(vdi_queue_reap(q, &comp, 1, 1, NULL), 1);
	cr_assert_eq(comp.tag, (void *)7);
	cr_assert_eq(comp.res, (int64_t)sizeof(all));
	vdi_queue_destroy(q);
	cr_assert_eq(vdi_pread(img, back, sizeof(back), MiB - 1500), (ssize_t)sizeof(back));
	cr_assert_eq(memcmp(back, all, sizeof(all)), 0);
	vdi_close(img);
}

/* vdi_queue_submit_wait: a request that reaches the kernel is submitted
 * and waited for in one io_uring_enter, so its completion is ready when
 * the call returns (O_DIRECT: the read cannot finish during the submission
 * the way a page-cache hit can, so a submit without the wait would leave
 * it pending and take a second enter); a request with no I/O does not
 * wait for a completion that will never come; writes and flushes (a chain
 * of several SQEs) work the same. */
Test(io, submit_wait_is_one_enter)
{
	struct vdi_image *img = mk("sw.vdi", 32 * MiB, VDI_OPEN_DIRECT);
	struct vdi_completion comp;
	struct vdi_stats s0, s1;
	struct vdi_queue *q;
	unsigned char *buf, *back;
	unsigned i;

	cr_assert_eq(posix_memalign((void **)&buf, 4096, 16 * MiB), 0);
	cr_assert_eq(posix_memalign((void **)&back, 4096, 4096), 0);
	pattern(buf, 16 * MiB, 5);
	cr_assert_eq(vdi_queue_create(img, 4, 0, &q), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_queue_write(q, buf, 16 * MiB, 0, (void *)1), 0);
	cr_assert_eq(vdi_queue_submit_wait(q), 1);
	cr_assert_eq(vdi_queue_reap(q, &comp, 1, 1, NULL), 1);
	cr_assert_eq(comp.res, (int64_t)(16 * MiB));
	cr_assert_eq(vdi_queue_flush(q, (void *)2), 0);
	cr_assert_eq(vdi_queue_submit_wait(q), 1);
	cr_assert_eq(vdi_queue_reap(q, &comp, 1, 1, NULL), 1, "%s", vdi_errmsg());
	cr_assert_eq(comp.tag, (void *)2);
	cr_assert_eq(comp.res, 0);
	cr_assert_eq(vdi_queue_pending(q), 0);

	for (i = 0; i < 16; i++) {
		uint64_t off = (uint64_t)i * MiB + (i * 37 % 256) * 4096;

		vdi_get_stats(img, &s0);
		cr_assert_eq(vdi_queue_read(q, back, 4096, off, (void *)3), 0);
		cr_assert_eq(vdi_queue_submit_wait(q), 1);
		cr_assert_eq(vdi_queue_reap(q, &comp, 0, 1, NULL), 1,
			     "read %u: completion ready after the one enter", i);
		cr_assert_eq(comp.res, 4096);
		cr_assert_eq(memcmp(back, buf + off, 4096), 0, "read %u", i);
		vdi_get_stats(img, &s1);
		cr_assert_eq(s1.enters - s0.enters, 1, "read %u: one enter", i);
	}

	/* Past the data: a free block reads zeros without any I/O. */
	vdi_get_stats(img, &s0);
	cr_assert_eq(vdi_queue_read(q, back, 4096, 20 * MiB, (void *)4), 0);
	cr_assert_eq(vdi_queue_submit_wait(q), 1);
	cr_assert_eq(vdi_queue_reap(q, &comp, 0, 1, NULL), 1);
	cr_assert_eq(comp.res, 4096);
	vdi_get_stats(img, &s1);
	cr_assert_eq(s1.enters - s0.enters, 0, "no I/O, no enter");
	cr_assert_eq(vdi_queue_submit_wait(q), 0, "nothing queued");

	vdi_queue_destroy(q);
	cr_assert_eq(vdi_close(img), 0, "%s", vdi_errmsg());
	free(buf);
	free(back);
}

/* A request over blocks that are adjacent in the file goes out as one SQE. */
Test(io, contiguous_blocks_merge_into_one_sqe)
{
	struct vdi_image *img = mk("m.vdi", 16 * MiB, 0);
	unsigned char *buf = malloc(4 * MiB);
	struct vdi_stats s0, s1;

	pattern(buf, 4 * MiB, 9);
	vdi_get_stats(img, &s0);
	cr_assert_eq(vdi_pwrite(img, buf, 4 * MiB, 2 * MiB), (ssize_t)(4 * MiB));
	vdi_get_stats(img, &s1);
	cr_assert_eq(s1.blocks_allocated - s0.blocks_allocated, 4);
	cr_assert_eq(s1.sqes - s0.sqes - (s1.meta_writes - s0.meta_writes), 1,
		     "4 new blocks appended in order: one data SQE");
	vdi_get_stats(img, &s0);
	cr_assert_eq(vdi_pread(img, buf, 4 * MiB, 2 * MiB), (ssize_t)(4 * MiB));
	vdi_get_stats(img, &s1);
	cr_assert_eq(s1.sqes - s0.sqes - (s1.meta_writes - s0.meta_writes), 1,
		     "and one read SQE");
	/* Blocks 1 and 0 now follow 2..5 in the file: not contiguous. */
	cr_assert_eq(vdi_pwrite(img, buf, 2 * MiB, 0), (ssize_t)(2 * MiB));
	vdi_get_stats(img, &s0);
	cr_assert_eq(vdi_pread(img, buf, 4 * MiB, 0), (ssize_t)(4 * MiB));
	vdi_get_stats(img, &s1);
	cr_assert_eq(s1.sqes - s0.sqes - (s1.meta_writes - s0.meta_writes), 2,
		     "blocks 0-1 at the end, 2-3 at the start: two runs");
	free(buf);
	vdi_close(img);
}

/* 64 MiB written sequentially in 1 MiB requests, one batch: a handful of
 * metadata writes, not one or more per request. */
Test(io, metadata_is_coalesced_per_batch)
{
	struct vdi_image *img = mk("c.vdi", 128 * MiB, 0);
	struct vdi_queue *q;
	struct vdi_completion comp[64];
	unsigned char *buf = malloc(MiB);
	struct vdi_stats s0, s1;
	int i, got = 0;

	pattern(buf, MiB, 5);
	cr_assert_eq(vdi_queue_create(img, 64, 0, &q), 0);
	vdi_get_stats(img, &s0);
	for (i = 0; i < 64; i++)
		cr_assert_eq(vdi_queue_write(q, buf, MiB, (uint64_t)i * MiB, NULL), 0);
	cr_assert_eq(vdi_queue_submit(q), 64);
	while (got < 64) {
		int n = vdi_queue_reap(q, comp, 1, 64, NULL);

		cr_assert_gt(n, 0);
		for (i = 0; i < n; i++)
			cr_assert_eq(comp[i].res, (int64_t)MiB);
		got += n;
	}
	cr_assert_eq(vdi_queue_flush(q, NULL), 0);
	cr_assert_eq(vdi_queue_submit(q), 1);
	cr_assert_eq(vdi_queue_reap(q, comp, 1, 1, NULL), 1);
	cr_assert_eq(comp[0].res, 0);
	vdi_get_stats(img, &s1);
	cr_assert_eq(s1.blocks_allocated - s0.blocks_allocated, 64);
	/* Exactly three (docs/design.md): the header once per open, when the
	 * first write gives the image a new modification UUID (per batch, at
	 * the end of the submit), then the flush's chain: one block-map write
	 * (the 64 entries share a sector) and one header write. */
	cr_assert_eq(s1.meta_writes - s0.meta_writes, 3,
		     "%llu metadata writes for 64 allocations and a flush, "
		     "not 3 (header for the new UUID, map, header)",
		     (unsigned long long)(s1.meta_writes - s0.meta_writes));
	vdi_queue_destroy(q);
	cr_assert_eq(vdi_close(img), 0);
	if (have_qemu("qemu-img"))
		cr_assert_eq(sh("qemu-img check -q %s", tpath("c.vdi")), 0);
	free(buf);
}

Test(io, blocks_append_in_write_order)
{
	struct vdi_image *img = mk("o.vdi", 16 * MiB, 0);
	char b = 1;

	cr_assert_eq(vdi_pwrite(img, &b, 1, 9 * MiB), 1);
	cr_assert_eq(vdi_pwrite(img, &b, 1, 3 * MiB + 5), 1);
	cr_assert_eq(vdi_close(img), 0);
	cr_assert_eq(peek32(tpath("o.vdi"), MiB + 4 * 9), 0, "first write: block 0");
	cr_assert_eq(peek32(tpath("o.vdi"), MiB + 4 * 3), 1, "second: block 1");
	cr_assert_eq(peek32(tpath("o.vdi"), MiB + 4 * 4), VDI_BMAP_FREE);
	cr_assert_eq(peek32(tpath("o.vdi"), 0x184), 2, "blocks allocated");
}

Test(io, errors)
{
	struct vdi_image *img = mk("e.vdi", 4 * MiB, 0), *other;
	struct vdi_queue *q;
	char b[16] = { 0 };
	int i;

	cr_assert_eq(vdi_pwrite(img, b, 16, 4 * MiB - 8), -EINVAL);
	cr_assert(strstr(vdi_errmsg(), "past the end of the disk"), "%s", vdi_errmsg());
	cr_assert_eq(vdi_open(tpath("e.vdi"), 0, &other), -EBUSY);
	cr_assert(strstr(vdi_errmsg(), "in use by another process"), "%s", vdi_errmsg());
	cr_assert_eq(vdi_open(tpath("e.vdi"), VDI_OPEN_RDONLY, &other), -EBUSY,
		     "a reader waits for the writer");
	cr_assert_eq(vdi_queue_create(img, 2, 0, &q), 0);
	for (i = 0; i < 2; i++)
		cr_assert_eq(vdi_queue_read(q, b, 16, 0, NULL), 0);
	cr_assert_eq(vdi_queue_read(q, b, 16, 0, NULL), -EAGAIN, "queue full");
	cr_assert_eq(vdi_close(img), -EBUSY, "queue still open");
	vdi_queue_destroy(q);
	cr_assert_eq(vdi_close(img), 0);
	cr_assert_eq(vdi_close(NULL), 0);

	cr_assert_eq(vdi_open(tpath("e.vdi"), VDI_OPEN_RDONLY, &img), 0);
	cr_assert_eq(vdi_open(tpath("e.vdi"), VDI_OPEN_RDONLY, &other), 0,
		     "two readers");
	cr_assert_eq(vdi_pwrite(img, b, 16, 0), -EBADF);
	cr_assert(strstr(vdi_errmsg(), "read-only"), "%s", vdi_errmsg());
	vdi_close(other);
	vdi_close(img);
	cr_assert_eq(vdi_open(tpath("missing.vdi"), 0, &img), -ENOENT);
	cr_assert(strstr(vdi_errmsg(), "missing.vdi"), "%s", vdi_errmsg());
	cr_assert_eq(vdi_create(tpath("e.vdi"), MiB, NULL), -EEXIST);
}

/* An entry pointing past the end of the file: EIO for that block, other
 * blocks fine, and nothing allocated over or after it. */
Test(io, entry_past_eof_is_eio)
{
	struct vdi_image *img = mk("b.vdi", 8 * MiB, 0);
	char b[512];

	cr_assert_eq(vdi_pwrite(img, "x", 1, 0), 1);
	cr_assert_eq(vdi_close(img), 0);
	poke32(tpath("b.vdi"), MiB + 4 * 2, 40);
	cr_assert_eq(vdi_open(tpath("b.vdi"), 0, &img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_pread(img, b, 512, 2 * MiB), -EIO);
	cr_assert(strstr(vdi_errmsg(), "past the end of the file"), "%s", vdi_errmsg());
	cr_assert_eq(vdi_pwrite(img, b, 512, 2 * MiB), -EIO);
	cr_assert_eq(vdi_pread(img, b, 1, 0), 1);
	cr_assert_eq(b[0], 'x');
	cr_assert_eq(vdi_pwrite(img, "y", 1, 1), 1, "allocated blocks still written");
	/* Index 40 is further past the end of the file than 8 blocks could
	 * reach: no allocation after it. */
	cr_assert_eq(vdi_pwrite(img, b, 512, 5 * MiB), -EUCLEAN);
	cr_assert_eq(vdi_close(img), 0);
	cr_assert_eq(peek32(tpath("b.vdi"), MiB + 4 * 5), VDI_BMAP_FREE);
}

Test(io, static_image)
{
	const char *p = tpath("s.vdi");
	struct vdi_create_opts o = { .type = VDI_TYPE_STATIC };
	struct vdi_image *img;
	struct vdi_info info;
	struct vdi_stats st;
	char b[4096];

	unlink(p);
	cr_assert_eq(vdi_create(p, 4 * MiB, &o), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_open(p, 0, &img), 0);
	cr_assert_eq(vdi_get_info(img, &info), 0);
	cr_assert_eq(info.type, VDI_TYPE_STATIC);
	cr_assert_eq(info.blocks_allocated, 4);
	cr_assert_geq(info.file_size, 6 * MiB);
	pattern(b, sizeof(b), 3);
	cr_assert_eq(vdi_pwrite(img, b, sizeof(b), 3 * MiB), (ssize_t)sizeof(b));
	vdi_get_stats(img, &st);
	cr_assert_eq(st.blocks_allocated, 0);
	cr_assert_eq(vdi_close(img), 0);
	if (have_qemu("qemu-img"))
		cr_assert_eq(sh("qemu-img check -q %s", p), 0);
}

Test(io, create_options)
{
	const char *p = tpath("opt.vdi");
	const unsigned char u[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	struct vdi_create_opts o = { .block_size = 1 << 17, .description = "test disk",
				     .uuid = u };
	struct vdi_image *img;
	struct vdi_info info;

	unlink(p);
	cr_assert_eq(vdi_create(p, 1000001, &o), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_open(p, VDI_OPEN_RDONLY, &img), 0);
	vdi_get_info(img, &info);
	cr_assert_eq(info.block_size, 1 << 17);
	cr_assert_eq(info.disk_size, 1000448, "rounded up to 512");
	cr_assert_eq(info.blocks, 8);
	cr_assert_str_eq(info.description, "test disk");
	cr_assert_eq(memcmp(info.uuid_create, u, 16), 0);
	cr_assert_eq(peek32(p, 0x188), 0x01020304, "VirtualBox byte order");
	vdi_close(img);
	o.block_size = 5000;
	cr_assert_eq(vdi_create(tpath("bad.vdi"), MiB, &o), -EINVAL);
	cr_assert(strstr(vdi_errmsg(), "block size 5000"), "%s", vdi_errmsg());
	cr_assert_eq(access(tpath("bad.vdi"), F_OK), -1, "nothing left behind");
}

/* overwrite replaces an image; with VDI_CREATE_REFUSE_IN_USE not one
 * that is open elsewhere (a handle of this process counts: OFD locks
 * belong to open file descriptions), and the file is then untouched. */
Test(io, overwrite_refuses_an_image_in_use)
{
	const char *p = tpath("ow.vdi");
	struct vdi_create_opts o = { .overwrite = 1,
				     .flags = VDI_CREATE_REFUSE_IN_USE };
	struct vdi_image *img;
	struct stat st0, st1;
	char buf[512] = "kept";

	unlink(p);
	cr_assert_eq(vdi_create(p, 4 * MiB, &o), 0, "no file: created, %s",
		     vdi_errmsg());
	cr_assert_eq(vdi_open(p, 0, &img), 0);
	cr_assert_eq(vdi_pwrite(img, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	cr_assert_eq(vdi_flush(img), 0);
	stat(p, &st0);
	cr_assert_eq(vdi_create(p, 8 * MiB, &o), -EBUSY);
	cr_assert(strstr(vdi_errmsg(), "cannot replace it: it is in use by "
				       "another process"), "%s", vdi_errmsg());
	stat(p, &st1);
	cr_assert_eq(st1.st_ino, st0.st_ino, "the open image is still there");
	cr_assert_eq(st1.st_size, st0.st_size);
	cr_assert_eq(vdi_close(img), 0);
	/* A reader holds it too. */
	cr_assert_eq(vdi_open(p, VDI_OPEN_RDONLY, &img), 0);
	cr_assert_eq(vdi_create(p, 8 * MiB, &o), -EBUSY);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(vdi_pread(img, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	cr_assert_str_eq(buf, "kept");
	cr_assert_eq(vdi_close(img), 0);
	/* Nobody holds it: replaced. */
	cr_assert_eq(vdi_create(p, 8 * MiB, &o), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_open(p, VDI_OPEN_RDONLY, &img), 0);
	cr_assert_eq(vdi_get_size(img), 8 * MiB);
	vdi_close(img);
	/* Without the flag overwrite does not look (vdi create --force
	 * looks itself, holding the locks). */
	cr_assert_eq(vdi_open(p, 0, &img), 0);
	o.flags = 0;
	cr_assert_eq(vdi_create(p, 4 * MiB, &o), 0, "%s", vdi_errmsg());
	vdi_close(img);
	o.flags = 0x2;
	cr_assert_eq(vdi_create(p, 4 * MiB, &o), -EINVAL, "unknown flag");
}

Test(io, map_extents)
{
	struct vdi_image *img = mk("map.vdi", 8 * MiB + 512, 0);
	struct vdi_extent e;

	cr_assert_eq(vdi_pwrite(img, "a", 1, 2 * MiB), 1);
	cr_assert_eq(vdi_pwrite(img, "b", 1, 3 * MiB), 1);
	cr_assert_eq(vdi_map_extent(img, 0, &e), 0);
	cr_assert_eq(e.kind, VDI_EXTENT_UNALLOCATED);
	cr_assert_eq(e.length, 2 * MiB);
	cr_assert_eq(vdi_map_extent(img, 2 * MiB, &e), 0);
	cr_assert_eq(e.kind, VDI_EXTENT_DATA);
	cr_assert_eq(e.length, 2 * MiB, "blocks 2 and 3 contiguous in the file");
	cr_assert_eq(e.file_offset, 2 * MiB);
	cr_assert_eq(vdi_map_extent(img, 4 * MiB, &e), 0);
	cr_assert_eq(e.length, 4 * MiB + 512, "last extent ends at the disk size");
	cr_assert_eq(vdi_map_extent(img, 8 * MiB + 512, &e), -EINVAL);
	vdi_close(img);
}

/* Threads with their own queues write interleaved 4k pieces of the same
 * blocks (allocation races) and every byte lands where it should. */
struct worker {
	struct vdi_image *img;
	int id;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct vdi_queue *q;
	struct vdi_completion c[16];
	static _Thread_local unsigned char buf[16][4096];
	int i, inflight = 0;

	cr_assert_eq(vdi_queue_create(w->img, 16, 0, &q), 0);
	for (i = 0; i < 256; i++) {
		/* Piece i of thread id: 4k slot (i * 4 + id) of the disk. */
		uint64_t off = ((uint64_t)i * 4 + (uint64_t)w->id) * 4096;

		if (inflight == 16) {
			int n = vdi_queue_reap(q, c, 1, 16, NULL);

			cr_assert_gt(n, 0);
			inflight -= n;
		}
		pattern(buf[i % 16], 4096, off);
		cr_assert_eq(vdi_queue_write(q, buf[i % 16], 4096, off, NULL), 0);
		inflight++;
		if (i % 3 == 0)
			vdi_queue_submit(q);
	}
	vdi_queue_submit(q);
	while (inflight > 0) {
		int n = vdi_queue_reap(q, c, 1, 16, NULL), j;

		cr_assert_gt(n, 0);
		for (j = 0; j < n; j++)
			cr_assert_eq(c[j].res, 4096);
		inflight -= n;
	}
	vdi_queue_destroy(q);
	return NULL;
}

Test(io, threads_share_an_image)
{
	struct vdi_image *img = mk("t.vdi", 8 * MiB, 0);
	struct worker w[4];
	pthread_t th[4];
	unsigned char *got = malloc(4 * MiB), want[4096];
	int i;

	for (i = 0; i < 4; i++) {
		w[i] = (struct worker){ img, i };
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	reopen(&img, "t.vdi", 0);
	cr_assert_eq(vdi_pread(img, got, 4 * MiB, 0), (ssize_t)(4 * MiB));
	for (i = 0; i < 1024; i++) {
		pattern(want, 4096, (uint64_t)i * 4096);
		cr_assert_eq(memcmp(got + (size_t)i * 4096, want, 4096), 0,
			     "4k piece %d", i);
	}
	cr_assert_eq(vdi_close(img), 0);
	if (have_qemu("qemu-img"))
		cr_assert_eq(sh("qemu-img check -q %s", tpath("t.vdi")), 0);
	free(got);
}

/* Discard: whole blocks keep their slots, punched out of the file (their
 * space goes back, the count QEMU allocates at stays); partial blocks get
 * zeros; QEMU reads the result the same way. */
Test(io, discard_and_zeroes)
{
	struct vdi_image *img = mk("d.vdi", 8 * MiB, 0);
	unsigned char *buf = malloc(8 * MiB), *model = malloc(8 * MiB);
	struct vdi_check_result cr;
	struct vdi_stats st;
	struct stat sb0, sb1;
	FILE *f;

	pattern(model, 8 * MiB, 77);
	cr_assert_eq(vdi_pwrite(img, model, 8 * MiB, 0), (ssize_t)(8 * MiB));
	cr_assert_eq(vdi_flush(img), 0);
	stat(tpath("d.vdi"), &sb0);
	/* Blocks 2 and 3 whole, plus 100 bytes into block 5 and the head of 6. */
	cr_assert_eq(vdi_discard(img, 2 * MiB, 2 * MiB), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_write_zeroes(img, 6 * MiB - 100, 4196), 0);
	memset(model + 2 * MiB, 0, 2 * MiB);
	memset(model + 6 * MiB - 100, 0, 4196);
	cr_assert_eq(vdi_pread(img, buf, 8 * MiB, 0), (ssize_t)(8 * MiB));
	cr_assert_eq(memcmp(buf, model, 8 * MiB), 0);
	reopen(&img, "d.vdi", 0);
	cr_assert_eq(vdi_pread(img, buf, 8 * MiB, 0), (ssize_t)(8 * MiB));
	cr_assert_eq(memcmp(buf, model, 8 * MiB), 0, "after reopen");
	cr_assert_eq(vdi_check(img, &cr, NULL, NULL), 0);
	cr_assert_eq(cr.corruptions + cr.leaks, 0, "punched blocks are no leaks");
	cr_assert_eq(cr.holes, 0, "the punched slots still belong to blocks");
	cr_assert_eq(cr.blocks_mapped, 8);
	vdi_get_stats(img, &st);
	cr_assert_eq(st.blocks_allocated, 0, "a discard allocates nothing");
	cr_assert_eq(vdi_close(img), 0);
	stat(tpath("d.vdi"), &sb1);
	/* (A file system may add a block of its own bookkeeping.) */
	cr_assert_leq(sb1.st_blocks * 512, sb0.st_blocks * 512 - 2 * MiB + 16384,
		      "space of two blocks given back (%lld -> %lld)",
		      (long long)sb0.st_blocks * 512, (long long)sb1.st_blocks * 512);
	cr_assert_eq(peek32(tpath("d.vdi"), MiB + 4 * 2), 2, "keeps its slot");
	cr_assert_eq(peek32(tpath("d.vdi"), MiB + 4 * 3), 3, "keeps its slot");
	cr_assert_eq(peek32(tpath("d.vdi"), 0x184), 8, "blocks allocated");
	if (have_qemu("qemu-img")) {
		f = fopen(tpath("d.raw"), "wb");
		cr_assert_eq(fwrite(model, 1, 8 * MiB, f), 8 * MiB);
		fclose(f);
		cr_assert_eq(sh("qemu-img check -q %s", tpath("d.vdi")), 0);
		cr_assert_eq(sh("qemu-img compare -q -f vdi -F raw %s %s",
				tpath("d.vdi"), tpath("d.raw")), 0);
	}
	free(buf);
	free(model);
}

Test(io, discard_static_writes_zeros)
{
	const char *p = tpath("ds.vdi");
	struct vdi_create_opts o = { .type = VDI_TYPE_STATIC };
	struct vdi_image *img;
	unsigned char b[4096];

	unlink(p);
	cr_assert_eq(vdi_create(p, 4 * MiB, &o), 0);
	cr_assert_eq(vdi_open(p, 0, &img), 0);
	memset(b, 0xFF, sizeof(b));
	cr_assert_eq(vdi_pwrite(img, b, sizeof(b), MiB), (ssize_t)sizeof(b));
	cr_assert_eq(vdi_discard(img, MiB, MiB), 0);
	cr_assert_eq(vdi_pread(img, b, sizeof(b), MiB), (ssize_t)sizeof(b));
	cr_assert_eq(b[0] | b[4095], 0);
	cr_assert_eq(vdi_close(img), 0);
	cr_assert_eq(peek32(p, MiB + 4), 1, "a static image keeps its map");
}

/* An entry far past the end of the file fences allocation instead of
 * growing the file to wherever the entry points. */
Test(io, hostile_index_fences_allocation)
{
	struct vdi_image *img = mk("h.vdi", 8 * MiB, 0);
	struct stat sb;
	char b[512] = { 1 };

	cr_assert_eq(vdi_close(img), 0);
	poke32(tpath("h.vdi"), MiB + 4 * 3, 0xFFFFFF00);
	cr_assert_eq(vdi_open(tpath("h.vdi"), 0, &img), 0);
	cr_assert_eq(vdi_pwrite(img, b, sizeof(b), 0), -EUCLEAN);
	cr_assert(strstr(vdi_errmsg(), "vdi check -r all"), "%s", vdi_errmsg());
	cr_assert_eq(vdi_pread(img, b, sizeof(b), 3 * MiB), -EIO);
	cr_assert_eq(vdi_close(img), 0);
	cr_assert_eq(stat(tpath("h.vdi"), &sb), 0);
	cr_assert_leq(sb.st_size, 2 * MiB, "the file did not grow");
}

/* A 384-byte header (QEMU's) is written back as 384 bytes: the bytes
 * where a 400-byte header keeps its geometry are left alone. */
Test(io, header_384_written_back_as_384)
{
	const char *p = tpath("h384.vdi");
	struct vdi_image *img;
	struct vdi_info info;

	if (!have_qemu("qemu-img"))
		cr_skip_test("qemu-img not installed");
	unlink(p);
	cr_assert_eq(sh("qemu-img create -q -f vdi %s 4M", p), 0);
	cr_assert_eq(peek32(p, 0x48), 384);
	poke32(p, 0x1C8, 0xA5A5A5A5); /* past the header: must survive */
	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_pwrite(img, "abc", 3, MiB), 3);
	cr_assert_eq(vdi_close(img), 0);
	cr_assert_eq(peek32(p, 0x48), 384, "header size kept");
	cr_assert_eq(peek32(p, 0x1C8), 0xA5A5A5A5, "bytes after it untouched");
	cr_assert_eq(peek32(p, 0x184), 1, "the header itself was rewritten");
	cr_assert_eq(sh("qemu-img check -q %s", p), 0);
	cr_assert_eq(vdi_open(p, VDI_OPEN_RDONLY, &img), 0);
	vdi_get_info(img, &info);
	cr_assert_eq(info.header_size, 384);
	vdi_close(img);
}

/* block_extra: bytes stored before each block's data.  QEMU refuses such
 * images, so libvdi checks itself: data lands after the extra bytes, and
 * reads back after reopening. */
Test(io, block_extra_honoured)
{
	const char *p = tpath("extra.vdi");
	struct vdi_image *img;
	unsigned char w[3 * 4096], r[sizeof(w)], extra[512];
	int fd;

	unlink(p);
	cr_assert_eq(vdi_create(p, 8 * MiB, NULL), 0);
	poke32(p, 0x17C, 512); /* no block allocated yet: still consistent */
	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	pattern(w, sizeof(w), 21);
	/* Across the boundary of blocks 1 and 2 (allocated in that order). */
	cr_assert_eq(vdi_pwrite(img, w, sizeof(w), 2 * MiB - 4096), (ssize_t)sizeof(w));
	cr_assert_eq(vdi_close(img), 0);
	cr_assert_eq(vdi_open(p, VDI_OPEN_RDONLY, &img), 0);
	cr_assert_eq(vdi_pread(img, r, sizeof(r), 2 * MiB - 4096), (ssize_t)sizeof(r));
	cr_assert_eq(memcmp(r, w, sizeof(w)), 0);
	vdi_close(img);
	/* Physical block 0 (virtual 1) starts at the data offset; its data
	 * starts 512 bytes later, so the last 4 KiB of it ends there. */
	fd = open(p, O_RDONLY);
	cr_assert_eq(pread(fd, r, 4096, (off_t)(2 * MiB + 512 + MiB - 4096)), 4096);
	cr_assert_eq(memcmp(r, w, 4096), 0, "data after the extra bytes");
	cr_assert_eq(pread(fd, extra, 512, (off_t)(2 * MiB)), 512);
	close(fd);
	for (size_t i = 0; i < sizeof(extra); i++)
		cr_assert_eq(extra[i], 0, "extra bytes untouched");
}

QEMU_ORACLE_TEST(io)

/* The map is read and scanned a chunk (1 MiB, 262,144 entries) at a time,
 * and a chunk whose entries AND to FREE or ZERO is skipped: data entries
 * in later chunks, and a chunk holding only a zero entry, must still count
 * right. */
Test(io, block_map_scan_covers_every_chunk)
{
	const uint64_t chunk = 262144, blocks = 4 * chunk; /* 1 TiB */
	const uint32_t at[] = { 5, chunk + 7, 4 * chunk - 1 };
	const char *p = tpath("scan.vdi");
	struct vdi_image *img = mk("scan.vdi", blocks * MiB, 0);
	struct vdi_info in;
	char b = 7;
	unsigned i;

	for (i = 0; i < 3; i++)
		cr_assert_eq(vdi_pwrite(img, &b, 1, at[i] * MiB), 1);
	cr_assert_eq(vdi_write_zeroes(img, (2 * chunk + 3) * MiB, MiB), 0);
	/* Chunk 2 holds only that zero entry; chunk 3 two data entries,
	 * slot 3 (bit 0 set, as in FREE) among them. */
	cr_assert_eq(vdi_pwrite(img, &b, 1, (3 * chunk + 9) * MiB), 1);
	reopen(&img, "scan.vdi", 0);
	cr_assert_eq(vdi_get_info(img, &in), 0);
	cr_assert_eq(in.blocks_mapped, 4, "%u data entries found, not 4",
		     in.blocks_mapped);
	cr_assert_eq(peek32(p, MiB + 4 * (2 * chunk + 3)), VDI_BMAP_ZERO);
	cr_assert_eq(peek32(p, MiB + 4 * (3 * chunk + 9)), 3);
	/* The next block goes after the four, not onto one of them. */
	cr_assert_eq(vdi_pwrite(img, &b, 1, 11 * MiB), 1);
	cr_assert_eq(vdi_close(img), 0);
	cr_assert_eq(peek32(p, MiB + 4 * 11), 4);
	cr_assert_eq(peek32(p, 0x184), 5, "blocks allocated");
	/* Two entries far apart naming one slot: found, writes refused. */
	poke32(p, MiB + 4 * (3 * chunk + 500), 1);
	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_pwrite(img, &b, 1, (3 * chunk + 500) * MiB), -EUCLEAN);
	cr_assert_eq(vdi_pwrite(img, &b, 1, at[1] * MiB), -EUCLEAN);
	cr_assert_eq(vdi_pwrite(img, &b, 1, at[0] * MiB), 1);
	cr_assert_eq(vdi_close(img), 0);
	unlink(p);
}

/* One full map in memory: the disk view keeps a copy of a map sector only
 * while an allocation in it has not reached the disk, and entries set
 * meanwhile (a zero entry) reach the disk through that copy. */
Test(io, disk_view_copies_only_pending_sectors)
{
	const char *p = tpath("dv.vdi");
	struct vdi_image *img = mk("dv.vdi", 1024 * MiB, 0);
	unsigned char buf[512], back[512];

	pattern(buf, sizeof(buf), 9);
	cr_assert_eq(img->disk_count, 0);
	cr_assert_eq(vdi_write_zeroes(img, 2 * MiB, MiB), 0);
	cr_assert_eq(img->disk_count, 0, "a zero entry needs no copy");
	cr_assert_eq(vdi_pwrite(img, buf, sizeof(buf), 1 * MiB), 512);
	cr_assert_eq(vdi_pwrite(img, buf, sizeof(buf), 300 * MiB), 512);
	cr_assert_eq(img->disk_count, 2, "blocks 1 and 300: sectors 0 and 2");
	/* Set while sector 0 has a copy: it must reach the disk too. */
	cr_assert_eq(vdi_write_zeroes(img, 3 * MiB, MiB), 0);
	/* Not durable yet: no entry on disk points at the data. */
	cr_assert_eq(peek32(p, MiB + 4 * 1), VDI_BMAP_FREE);
	cr_assert_eq(peek32(p, MiB + 4 * 300), VDI_BMAP_FREE);
	cr_assert_eq(vdi_flush(img), 0);
	cr_assert_eq(img->disk_count, 0, "%u copies left after the flush",
		     img->disk_count);
	cr_assert_eq(peek32(p, MiB + 4 * 1), 0);
	cr_assert_eq(peek32(p, MiB + 4 * 300), 1);
	cr_assert_eq(peek32(p, MiB + 4 * 2), VDI_BMAP_ZERO);
	cr_assert_eq(peek32(p, MiB + 4 * 3), VDI_BMAP_ZERO);
	cr_assert_eq(peek32(p, MiB + 4 * 4), VDI_BMAP_FREE);
	cr_assert_eq(peek32(p, 0x184), 2, "blocks allocated");
	reopen(&img, "dv.vdi", 0);
	cr_assert_eq(vdi_pread(img, back, sizeof(back), 300 * MiB), 512);
	cr_assert_eq(memcmp(back, buf, sizeof(buf)), 0);
	cr_assert_eq(vdi_close(img), 0);
	if (have_qemu("qemu-img"))
		cr_assert_eq(sh("qemu-img check -q %s", p), 0);
	unlink(p);
}

/* Many sectors with allocations before a flush: the hash of sector copies
 * grows (64 buckets at first) and every entry still reaches the disk. */
Test(io, disk_view_hash_grows)
{
	const uint32_t n = 3000, step = 128; /* one block per map sector */
	const char *p = tpath("dvh.vdi");
	struct vdi_image *img = mk("dvh.vdi", (uint64_t)n * step * MiB, 0);
	char b = 1;
	uint32_t i;

	for (i = 0; i < n; i++)
		cr_assert_eq(vdi_pwrite(img, &b, 1, (uint64_t)i * step * MiB), 1);
	cr_assert_eq(img->disk_count, n);
	cr_assert_geq(img->disk_hash_mask + 1, n, "%u buckets",
		      img->disk_hash_mask + 1);
	for (i = 0; i < n; i += 499)
		cr_assert_eq(peek32(p, MiB + 4ull * i * step), VDI_BMAP_FREE);
	cr_assert_eq(vdi_flush(img), 0);
	cr_assert_eq(img->disk_count, 0);
	cr_assert_eq(vdi_close(img), 0);
	for (i = 0; i < n; i++)
		cr_assert_eq(peek32(p, MiB + 4ull * i * step), i,
			     "block %u", i * step);
	cr_assert_eq(peek32(p, 0x184), n, "blocks allocated");
	unlink(p);
}

/* This process's resident memory, in KiB. */
static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	cr_assert(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* A thin image holds in memory only the pages of its map that name
 * something (1,024 blocks a page), not 4 bytes per block of its size: a
 * 16 TiB image (a 64 MiB map) with three blocks far apart, opened, costs
 * a few MiB; its data reads back and the next block goes after them. */
Test(io, a_thin_image_holds_only_the_map_pages_it_uses)
{
	const uint64_t blocks = 16ull << 20; /* 16 TiB */
	const uint64_t at[] = { 3, blocks / 2 + 5, blocks - 1 };
	const char *p = tpath("thin.vdi");
	struct vdi_image *img = mk("thin.vdi", blocks * MiB, 0);
	long before, after;
	char b;

	for (unsigned i = 0; i < 3; i++) {
		b = (char)(i + 1);
		cr_assert_eq(vdi_pwrite(img, &b, 1, at[i] * MiB + 100), 1);
	}
	cr_assert_eq(vdi_close(img), 0);
	before = rss_kib();
	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	after = rss_kib();
	cr_assert_lt(after - before, 16 << 10,
		     "opening a 16 TiB image with 3 blocks took %ld KiB", after - before);
	for (unsigned i = 0; i < 3; i++) {
		cr_assert_eq(vdi_pread(img, &b, 1, at[i] * MiB + 100), 1);
		cr_assert_eq(b, (char)(i + 1), "block %llu", (unsigned long long)at[i]);
		cr_assert_eq(vdi_pread(img, &b, 1, (at[i] - 1) * MiB), 1);
		cr_assert_eq(b, 0);
	}
	b = 9;
	cr_assert_eq(vdi_pwrite(img, &b, 1, 7 * MiB), 1);
	cr_assert_eq(vdi_close(img), 0);
	cr_assert_eq(peek32(p, MiB + 4 * 7), 3, "the fourth block's slot");
	unlink(p);
}
