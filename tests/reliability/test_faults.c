/* Fault injection through the engine's seam (engine/0-base/fault.h): on the Nth
 * completion of one kind (data read, data write, metadata write, fsync)
 * the hook replaces the result with an error, a short count, EAGAIN or
 * EINTR; and a queue's submissions may be refused (EAGAIN, EBUSY, EINTR,
 * ENOMEM, EIO) or taken only in part.  Each test checks what the caller
 * sees, that later requests still work, and that the image is consistent
 * after close: vdi_check clean, qemu-img check clean, completed writes
 * read back.  Completions are reaped with a time limit, so a request the
 * engine loses fails its test instead of hanging it. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "0-base/fault.h"
#include "util.h"
#include "vdi.h"

#define MiB (1ull << 20)
#define DISK (16 * MiB)
#define CHUNK (64 * 1024)
#define NREQ 12

/* ---- the hook ------------------------------------------------------------ */

enum mode { M_ERR, M_SHORT };

static struct injector {
	enum vdi_io_kind kind;
	unsigned nth;   /* inject on this completion of `kind` (1-based) */
	enum mode mode;
	int err;        /* positive errno for M_ERR */
	unsigned seen;  /* completions of `kind` so far */
	unsigned fired; /* injections done */
	size_t fired_len;
} inj;

static int hook_io(void *opaque, enum vdi_io_kind kind, uint64_t off,
		   size_t len, const struct iovec *iov, int iovcnt, int res)
{
	struct injector *in = opaque;

	(void)off;
	(void)iov;
	(void)iovcnt;
	if (kind != in->kind || ++in->seen != in->nth)
		return res;
	if (in->mode == M_SHORT) {
		/* Only a whole transfer can be made short. */
		if (res < 0 || (size_t)res != len || len < 2)
			return res;
		in->fired++;
		in->fired_len = len;
		return (int)(len / 2);
	}
	in->fired++;
	in->fired_len = len;
	return -in->err;
}

/* Submissions of one kind of ring (queues' rings unless `ring` says
 * otherwise), numbered from 1: submission i < 1 + len gets script[i - 1],
 * later ones `rest`; the other kind passes.  A value is what fault.h's submit
 * hook returns: PASS (submit as usual), a count of SQEs for the kernel to
 * take, or a negative errno. */
#define PASS INT_MAX

static struct submit_injector {
	int script[8];
	unsigned len;
	int rest;
	unsigned seen;  /* submissions so far */
	unsigned fired; /* submissions changed */
	enum vdi_ring_kind ring;
} sinj = { .rest = PASS };

static int hook_submit(void *opaque, enum vdi_ring_kind kind, unsigned ready)
{
	struct submit_injector *in = opaque;
	int v;

	if (kind != in->ring)
		return (int)ready;
	in->seen++;
	v = in->seen <= in->len ? in->script[in->seen - 1] : in->rest;
	if (v == PASS || (v >= 0 && (unsigned)v >= ready))
		return (int)ready;
	in->fired++;
	return v;
}

static const struct vdi_fault_hook hook = { hook_io, &inj, NULL };
static const struct vdi_fault_submit_hook submit_hook = { hook_submit, &sinj };

static void arm(enum vdi_io_kind kind, unsigned nth, enum mode mode, int err)
{
	inj = (struct injector){ .kind = kind, .nth = nth, .mode = mode,
				 .err = err };
	vdi_fault_set(&hook);
}

/* Script the next submissions (see submit_injector). */
static void arm_submit(const int *script, unsigned len, int rest)
{
	cr_assert_leq(len, 8);
	sinj = (struct submit_injector){ .len = len, .rest = rest };
	if (len)
		memcpy(sinj.script, script, sizeof(*script) * len);
	vdi_fault_set_submit(&submit_hook);
}

static void disarm(void)
{
	vdi_fault_set(NULL);
	vdi_fault_set_submit(NULL);
	sinj = (struct submit_injector){ .rest = PASS };
}

/* How long a reap may wait for the next completion before the request is
 * taken as lost. */
static const struct timespec reap_limit = { 10, 0 };

/* ---- the model ----------------------------------------------------------- */

/* What the disk must hold: bytes of completed writes; ranges whose write
 * failed are "unknown" (old or new data are both acceptable). */
static unsigned char *model;
static unsigned char *unknown; /* one flag per CHUNK */

static void model_init(void)
{
	model = calloc(1, DISK);
	unknown = calloc(DISK / CHUNK, 1);
	cr_assert(model && unknown);
}

static const char *fresh(const char *name)
{
	const char *p = tpath(name);

	unlink(p);
	cr_assert_eq(vdi_create(p, DISK, NULL), 0, "%s", vdi_errmsg());
	model_init();
	return p;
}

/* Request i of a round: 64 KiB at a spread of offsets, several per block
 * and in several blocks, so that writes both allocate and overwrite. */
static uint64_t req_off(unsigned round, unsigned i)
{
	return ((uint64_t)(i * 5 + round * 3) % (DISK / CHUNK)) * CHUNK;
}

/* Write NREQ chunks through one queue in one batch; res[] gets each
 * request's result.  Completed writes go into the model. */
static void write_round(struct vdi_image *img, unsigned round,
			int64_t res[NREQ])
{
	unsigned char *buf = malloc((size_t)NREQ * CHUNK);
	struct vdi_completion c[NREQ];
	struct vdi_queue *q;
	unsigned i, got = 0;
	int submitted;

	cr_assert(buf);
	cr_assert_eq(vdi_queue_create(img, NREQ, 0, &q), 0, "%s", vdi_errmsg());
	for (i = 0; i < NREQ; i++) {
		res[i] = INT64_MIN;
		pattern(buf + (size_t)i * CHUNK, CHUNK, round * 1000 + i + 1);
		cr_assert_eq(vdi_queue_write(q, buf + (size_t)i * CHUNK, CHUNK,
					     req_off(round, i),
					     (void *)(uintptr_t)i), 0);
	}
	submitted = vdi_queue_submit(q);
	cr_expect_eq(submitted, NREQ, "vdi_queue_submit returned %d (%s)",
		     submitted, vdi_errmsg());
	while (got < NREQ) {
		int n = vdi_queue_reap(q, c, 1, NREQ, &reap_limit);

		cr_assert_geq(n, 0, "reap: %s", vdi_errmsg());
		cr_assert_gt(n, 0, "no completion in %ld s: %u of %u writes "
			     "lost (vdi_queue_pending %u)",
			     (long)reap_limit.tv_sec, NREQ - got, NREQ,
			     vdi_queue_pending(q));
		for (int k = 0; k < n; k++) {
			unsigned t = (unsigned)(uintptr_t)c[k].tag;
			uint64_t off = req_off(round, t);

			cr_assert_eq(res[t], INT64_MIN, "write %u completed "
				     "twice", t);
			res[t] = c[k].res;
			if (c[k].res == CHUNK) {
				memcpy(model + off, buf + (size_t)t * CHUNK,
				       CHUNK);
				unknown[off / CHUNK] = 0;
			} else {
				unknown[off / CHUNK] = 1;
			}
		}
		got += (unsigned)n;
	}
	cr_assert_eq(vdi_queue_pending(q), 0, "nothing left on the queue");
	vdi_queue_destroy(q);
	free(buf);
}

/* Read NREQ chunks of a round back through one queue; res[] as above;
 * each successful read is compared with the model. */
static void read_round(struct vdi_image *img, unsigned round,
		       int64_t res[NREQ])
{
	unsigned char *buf = malloc((size_t)NREQ * CHUNK);
	struct vdi_completion c[NREQ];
	struct vdi_queue *q;
	unsigned i, got = 0;

	cr_assert(buf);
	memset(buf, 0xA5, (size_t)NREQ * CHUNK);
	cr_assert_eq(vdi_queue_create(img, NREQ, 0, &q), 0, "%s", vdi_errmsg());
	for (i = 0; i < NREQ; i++)
		cr_assert_eq(vdi_queue_read(q, buf + (size_t)i * CHUNK, CHUNK,
					    req_off(round, i),
					    (void *)(uintptr_t)i), 0);
	cr_assert_eq(vdi_queue_submit(q), NREQ, "%s", vdi_errmsg());
	while (got < NREQ) {
		int n = vdi_queue_reap(q, c, 1, NREQ, &reap_limit);

		cr_assert_gt(n, 0, "reap: %s", n < 0 ? vdi_errmsg()
						   : "a read was lost");
		for (int k = 0; k < n; k++) {
			unsigned t = (unsigned)(uintptr_t)c[k].tag;
			uint64_t off = req_off(round, t);

			res[t] = c[k].res;
			if (c[k].res == CHUNK && !unknown[off / CHUNK])
				cr_assert_eq(memcmp(buf + (size_t)t * CHUNK,
						    model + off, CHUNK), 0,
					     "read %u at %llu: wrong data", t,
					     (unsigned long long)off);
		}
		got += (unsigned)n;
	}
	vdi_queue_destroy(q);
	free(buf);
}

static unsigned count_res(const int64_t res[NREQ], int64_t want)
{
	unsigned i, n = 0;

	for (i = 0; i < NREQ; i++)
		n += res[i] == want;
	return n;
}

/* Close, then the image must be consistent: vdi_check and qemu-img check
 * clean, every byte as the model says. */
static void verify(const char *p)
{
	struct vdi_check_result r;
	struct vdi_image *img;
	unsigned char *buf = malloc(DISK);
	uint64_t off;

	disarm();
	cr_assert(buf);
	cr_assert_eq(vdi_open(p, VDI_OPEN_RDONLY, &img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_check(img, &r, NULL, NULL), 0);
	cr_assert_eq(r.corruptions, 0, "vdi_check: corruption after faults");
	cr_assert_eq(r.leaks, 0, "vdi_check: leaks after faults");
	cr_assert_eq(vdi_pread(img, buf, DISK, 0), (ssize_t)DISK, "%s",
		     vdi_errmsg());
	for (off = 0; off < DISK; off += CHUNK)
		if (!unknown[off / CHUNK])
			cr_assert_eq(memcmp(buf + off, model + off, CHUNK), 0,
				     "data at %llu differs from the model",
				     (unsigned long long)off);
	cr_assert_eq(vdi_close(img), 0);
	if (have_qemu("qemu-img"))
		cr_assert_eq(sh("qemu-img check -q %s", p), 0,
			     "qemu-img check disagrees");
	free(buf);
	free(model);
	free(unknown);
}

/* After the faults: a round of writes that must all work, a flush (when
 * `flush`), close, and the image as the model says. */
static void later_round_and_verify(struct vdi_image *img, const char *p,
				   bool flush)
{
	int64_t res[NREQ];

	write_round(img, 1, res);
	cr_assert_eq(count_res(res, CHUNK), NREQ, "later writes work");
	if (flush)
		cr_assert_eq(vdi_flush(img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_close(img), 0, "%s", vdi_errmsg());
	verify(p);
}

/* ---- data writes ---------------------------------------------------------- */

/* The 4th data write fails with `err`: exactly that request fails, with
 * that errno; the others and a later round succeed; flush and close
 * succeed. */
static void write_error(const char *name, int err)
{
	const char *p = fresh(name);
	struct vdi_image *img;
	int64_t res[NREQ];

	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	arm(VDI_IO_WRITE, 4, M_ERR, err);
	write_round(img, 0, res);
	cr_assert_eq(inj.fired, 1, "the fault was injected");
	cr_assert_eq(count_res(res, -err), 1, "one request fails with %s",
		     strerror(err));
	cr_assert_eq(count_res(res, CHUNK), NREQ - 1, "the others succeed");
	cr_assert_eq(vdi_flush(img), 0, "%s", vdi_errmsg());
	write_round(img, 1, res);
	cr_assert_eq(count_res(res, CHUNK), NREQ, "later writes work");
	cr_assert_eq(vdi_flush(img), 0, "%s", vdi_errmsg());
	read_round(img, 0, res);
	cr_assert_eq(count_res(res, CHUNK), NREQ, "reads work");
	cr_assert_eq(vdi_close(img), 0, "%s", vdi_errmsg());
	verify(p);
}

Test(faults, write_eio) { write_error("w-eio.vdi", EIO); }
Test(faults, write_enospc) { write_error("w-enospc.vdi", ENOSPC); }

/* Short transfers, EAGAIN, EINTR: retried inside the engine, invisible. */
static void write_retried(const char *name, enum mode mode, int err)
{
	const char *p = fresh(name);
	struct vdi_image *img;
	int64_t res[NREQ];

	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	arm(VDI_IO_WRITE, 4, mode, err);
	write_round(img, 0, res);
	cr_assert_eq(inj.fired, 1, "the fault was injected");
	cr_assert_eq(count_res(res, CHUNK), NREQ, "every write succeeds");
	cr_assert_gt(inj.seen, NREQ, "the faulted write was issued again");
	cr_assert_eq(vdi_flush(img), 0, "%s", vdi_errmsg());
	write_round(img, 1, res);
	cr_assert_eq(count_res(res, CHUNK), NREQ);
	read_round(img, 0, res);
	cr_assert_eq(vdi_close(img), 0, "%s", vdi_errmsg());
	verify(p);
}

Test(faults, write_short) { write_retried("w-short.vdi", M_SHORT, 0); }
Test(faults, write_eagain) { write_retried("w-eagain.vdi", M_ERR, EAGAIN); }
Test(faults, write_eintr) { write_retried("w-eintr.vdi", M_ERR, EINTR); }

/* ---- data reads ------------------------------------------------------------ */

static struct vdi_image *written_image(const char *p)
{
	struct vdi_image *img;
	int64_t res[NREQ];

	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	write_round(img, 0, res);
	cr_assert_eq(count_res(res, CHUNK), NREQ);
	cr_assert_eq(vdi_flush(img), 0, "%s", vdi_errmsg());
	return img;
}

static void read_error(const char *name, int err)
{
	const char *p = fresh(name);
	struct vdi_image *img = written_image(p);
	int64_t res[NREQ];

	arm(VDI_IO_READ, 3, M_ERR, err);
	read_round(img, 0, res);
	cr_assert_eq(inj.fired, 1);
	cr_assert_eq(count_res(res, -err), 1, "one read fails with %s",
		     strerror(err));
	cr_assert_eq(count_res(res, CHUNK), NREQ - 1);
	read_round(img, 0, res);
	cr_assert_eq(count_res(res, CHUNK), NREQ, "later reads work");
	later_round_and_verify(img, p, false);
}

Test(faults, read_eio) { read_error("r-eio.vdi", EIO); }
Test(faults, read_enospc) { read_error("r-enospc.vdi", ENOSPC); }

static void read_retried(const char *name, enum mode mode, int err)
{
	const char *p = fresh(name);
	struct vdi_image *img = written_image(p);
	int64_t res[NREQ];

	arm(VDI_IO_READ, 3, mode, err);
	read_round(img, 0, res); /* compares the data */
	cr_assert_eq(inj.fired, 1);
	cr_assert_eq(count_res(res, CHUNK), NREQ, "every read succeeds");
	cr_assert_gt(inj.seen, NREQ, "the faulted read was issued again");
	cr_assert_eq(vdi_close(img), 0, "%s", vdi_errmsg());
	verify(p);
}

Test(faults, read_short) { read_retried("r-short.vdi", M_SHORT, 0); }
Test(faults, read_eagain) { read_retried("r-eagain.vdi", M_ERR, EAGAIN); }
Test(faults, read_eintr) { read_retried("r-eintr.vdi", M_ERR, EINTR); }

/* A read error while loading the block map fails the open, cleanly. */
Test(faults, open_read_eio)
{
	const char *p = fresh("open-eio.vdi");
	struct vdi_image *img = written_image(p);

	cr_assert_eq(vdi_close(img), 0);
	arm(VDI_IO_READ, 1, M_ERR, EIO);
	cr_assert_eq(vdi_open(p, 0, &img), -EIO);
	cr_assert_null(img);
	cr_assert(strstr(vdi_errmsg(), "block map"), "%s", vdi_errmsg());
	disarm();
	verify(p);
}

/* ---- metadata writes ---------------------------------------------------- */

/* A per-batch metadata write (on the image's own ring) fails: the next
 * flush fails with that errno, once; later flushes succeed and write the
 * metadata again. */
static void meta_batch_error(const char *name, int err)
{
	const char *p = fresh(name);
	unsigned char a[4096], b[4096];
	struct vdi_image *img;

	pattern(a, sizeof(a), 1);
	pattern(b, sizeof(b), 2);
	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	arm(VDI_IO_META, 1, M_ERR, err);
	/* A allocates block 0; B's submission writes A's map entry back. */
	cr_assert_eq(vdi_pwrite(img, a, sizeof(a), 0), (ssize_t)sizeof(a));
	cr_assert_eq(vdi_pwrite(img, b, sizeof(b), 5 * MiB), (ssize_t)sizeof(b));
	memcpy(model, a, sizeof(a));
	memcpy(model + 5 * MiB, b, sizeof(b));
	cr_assert_eq(vdi_flush(img), -err, "the next flush reports %s",
		     strerror(err));
	cr_assert_eq(inj.fired, 1, "the fault was injected");
	cr_assert_eq(vdi_flush(img), 0, "reported once: %s", vdi_errmsg());
	later_round_and_verify(img, p, true);
}

Test(faults, meta_batch_eio) { meta_batch_error("mb-eio.vdi", EIO); }
Test(faults, meta_batch_enospc) { meta_batch_error("mb-enospc.vdi", ENOSPC); }

/* A metadata write linked before a flush's fsync fails.  The flush that
 * carried it or, at the latest, the next one reports the errno, exactly
 * once; then flushes succeed and the map is written again. */
static void meta_flush_error(const char *name, int err)
{
	const char *p = fresh(name);
	unsigned char a[4096];
	struct vdi_image *img;
	int f1, f2;

	pattern(a, sizeof(a), 1);
	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_pwrite(img, a, sizeof(a), 3 * MiB), (ssize_t)sizeof(a));
	memcpy(model + 3 * MiB, a, sizeof(a));
	arm(VDI_IO_META, 1, M_ERR, err);
	f1 = vdi_flush(img);
	cr_assert_eq(inj.fired, 1, "the flush wrote metadata");
	f2 = vdi_flush(img);
	cr_log_info("%s: flush results %d then %d", name, f1, f2);
	cr_assert((f1 == -err && f2 == 0) || (f1 == 0 && f2 == -err),
		  "one flush reports %s: got %d then %d", strerror(err), f1, f2);
	cr_assert_eq(vdi_flush(img), 0, "%s", vdi_errmsg());
	later_round_and_verify(img, p, true);
}

Test(faults, meta_flush_eio) { meta_flush_error("mf-eio.vdi", EIO); }
Test(faults, meta_flush_enospc) { meta_flush_error("mf-enospc.vdi", ENOSPC); }

/* EAGAIN/EINTR on a metadata write: written again, no flush fails. */
static void meta_retried(const char *name, int err)
{
	const char *p = fresh(name);
	unsigned char a[4096], b[4096];
	struct vdi_image *img;

	pattern(a, sizeof(a), 1);
	pattern(b, sizeof(b), 2);
	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	arm(VDI_IO_META, 1, M_ERR, err);
	cr_assert_eq(vdi_pwrite(img, a, sizeof(a), 0), (ssize_t)sizeof(a));
	cr_assert_eq(vdi_pwrite(img, b, sizeof(b), 9 * MiB), (ssize_t)sizeof(b));
	memcpy(model, a, sizeof(a));
	memcpy(model + 9 * MiB, b, sizeof(b));
	cr_assert_eq(vdi_flush(img), 0, "%s", vdi_errmsg());
	cr_assert_eq(inj.fired, 1);
	cr_assert_gt(inj.seen, 1, "the metadata was written again");
	cr_assert_eq(vdi_flush(img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_close(img), 0, "%s", vdi_errmsg());
	verify(p);
}

Test(faults, meta_eagain) { meta_retried("m-eagain.vdi", EAGAIN); }
Test(faults, meta_eintr) { meta_retried("m-eintr.vdi", EINTR); }

/* The synchronous write-back at close: a short write goes on; an error is
 * returned by vdi_close, and the handle is freed either way (ASan).
 * close_meta_short also covers a first metadata write that is a per-batch
 * one on the image's ring: a short count there is written again whole,
 * like EAGAIN (docs/reliability.md, finding 2; it once failed with EIO). */
Test(faults, close_meta_short)
{
	const char *p = fresh("c-short.vdi");
	unsigned char a[4096];
	struct vdi_image *img;

	pattern(a, sizeof(a), 7);
	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_pwrite(img, a, sizeof(a), 2 * MiB), (ssize_t)sizeof(a));
	memcpy(model + 2 * MiB, a, sizeof(a));
	arm(VDI_IO_META, 1, M_SHORT, 0);
	cr_assert_eq(vdi_close(img), 0, "%s", vdi_errmsg());
	cr_assert_eq(inj.fired, 1, "close wrote metadata");
	verify(p);
}

Test(faults, close_meta_eio)
{
	const char *p = fresh("c-eio.vdi");
	struct vdi_repair_result rr;
	unsigned char a[4096];
	struct vdi_image *img;

	pattern(a, sizeof(a), 7);
	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_pwrite(img, a, sizeof(a), 2 * MiB), (ssize_t)sizeof(a));
	arm(VDI_IO_META, 1, M_ERR, EIO);
	cr_assert_eq(vdi_close(img), -EIO, "close reports the failed write");
	cr_assert_eq(inj.fired, 1);
	/* The map write's bytes did reach the file (only the result was
	 * replaced) but the header after it was not written: as after a
	 * crash, the header count lags the map, which repair fixes. */
	disarm();
	cr_assert_geq(vdi_repair(p, VDI_REPAIR_LEAKS, &rr, NULL, NULL), 0,
		      "%s", vdi_errmsg());
	cr_assert_eq(rr.before.corruptions, rr.before.allocated_mismatch,
		     "nothing worse than a lagging count");
	memcpy(model + 2 * MiB, a, sizeof(a));
	verify(p);
}

/* ---- fsync --------------------------------------------------------------- */

static void fsync_error(const char *name, int err)
{
	const char *p = fresh(name);
	struct vdi_image *img;
	int64_t res[NREQ];

	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	write_round(img, 0, res);
	cr_assert_eq(count_res(res, CHUNK), NREQ);
	arm(VDI_IO_FSYNC, 1, M_ERR, err);
	cr_assert_eq(vdi_flush(img), -err, "the flush reports %s",
		     strerror(err));
	cr_assert(strstr(vdi_errmsg(), "flush"), "%s", vdi_errmsg());
	cr_assert_eq(vdi_flush(img), 0, "the next flush works: %s",
		     vdi_errmsg());
	later_round_and_verify(img, p, false);
}

Test(faults, fsync_eio) { fsync_error("f-eio.vdi", EIO); }
Test(faults, fsync_enospc) { fsync_error("f-enospc.vdi", ENOSPC); }

/* An fsync error at close is returned by vdi_close.  The fsync that
 * failed is the one that makes the new block's data durable before its map
 * entry is written: the entry is not written, so the block is not in the
 * image (its space leaked, at the end of the file, where repair cuts it). */
Test(faults, close_fsync_eio)
{
	const char *p = fresh("cf-eio.vdi");
	struct vdi_repair_result rr;
	unsigned char a[4096];
	struct vdi_image *img;

	pattern(a, sizeof(a), 3);
	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_pwrite(img, a, sizeof(a), 0), (ssize_t)sizeof(a));
	arm(VDI_IO_FSYNC, 1, M_ERR, EIO);
	cr_assert_eq(vdi_close(img), -EIO);
	disarm();
	cr_assert_eq(peek32(p, MiB), VDI_BMAP_FREE, "no entry for data not synced");
	cr_assert_geq(vdi_repair(p, VDI_REPAIR_LEAKS, &rr, NULL, NULL), 0,
		      "%s", vdi_errmsg());
	/* The count went out before the failed fdatasync, ahead of the
	 * entry: safe for QEMU's allocator, and the one problem. */
	cr_assert_eq(rr.before.corruptions, rr.before.allocated_mismatch);
	cr_assert_eq(rr.before.past_count, 0);
	verify(p);
}

/* ---- submission ------------------------------------------------------------ */

/* Submission faults are set up right before the batch they are meant for:
 * each test's image is made and opened, and its first rounds written,
 * without the hook.  The time limits make a lost request (one counted in
 * flight whose SQE never reached the kernel) fail the test, not hang it. */

/* The kernel refuses the batch for good: every request of the batch
 * completes, once, with the error, vdi_errmsg() says so, and the queue,
 * the image and later requests are fine. */
static void submit_refused(const char *name, int err)
{
	const int script[] = { -err };
	const char *p = fresh(name);
	struct vdi_image *img;
	int64_t res[NREQ];

	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	arm_submit(script, 1, PASS);
	write_round(img, 0, res);
	cr_assert_eq(sinj.fired, 1, "the fault was injected");
	cr_assert_eq(count_res(res, -err), NREQ, "every write fails with %s",
		     strerror(err));
	cr_assert(strstr(vdi_errmsg(), "io_uring_submit") &&
		  strstr(vdi_errmsg(), strerror(err)), "message: %s",
		  vdi_errmsg());
	write_round(img, 1, res);
	cr_assert_eq(count_res(res, CHUNK), NREQ, "later writes work");
	cr_assert_eq(vdi_flush(img), 0, "%s", vdi_errmsg());
	read_round(img, 1, res);
	cr_assert_eq(count_res(res, CHUNK), NREQ, "reads work");
	cr_assert_eq(vdi_close(img), 0, "%s", vdi_errmsg());
	verify(p);
}

Test(faults, submit_enomem, .timeout = 60)
{
	submit_refused("s-enomem.vdi", ENOMEM);
}

Test(faults, submit_eio, .timeout = 60) { submit_refused("s-eio.vdi", EIO); }

/* EAGAIN, EBUSY, EINTR from io_uring_enter are passing: submitted again,
 * invisible to the caller. */
static void submit_retried(const char *name, int err)
{
	const int script[] = { err, err, err };
	const char *p = fresh(name);
	struct vdi_image *img;
	int64_t res[NREQ];

	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	arm_submit(script, 3, PASS);
	write_round(img, 0, res);
	cr_assert_eq(sinj.fired, 3, "the faults were injected");
	cr_assert_geq(sinj.seen, 4, "the batch was submitted again");
	cr_assert_eq(count_res(res, CHUNK), NREQ, "every write succeeds");
	cr_assert_eq(vdi_flush(img), 0, "%s", vdi_errmsg());
	read_round(img, 0, res);
	cr_assert_eq(count_res(res, CHUNK), NREQ);
	cr_assert_eq(vdi_close(img), 0, "%s", vdi_errmsg());
	verify(p);
}

Test(faults, submit_eagain, .timeout = 60)
{
	submit_retried("s-eagain.vdi", -EAGAIN);
}

Test(faults, submit_ebusy, .timeout = 60)
{
	submit_retried("s-ebusy.vdi", -EBUSY);
}

Test(faults, submit_eintr, .timeout = 60)
{
	submit_retried("s-eintr.vdi", -EINTR);
}

/* EAGAIN that does not go away is the answer after a bounded wait: the
 * requests complete with it. */
Test(faults, submit_eagain_persists, .timeout = 60)
{
	const char *p = fresh("s-eagain-all.vdi");
	struct timespec t0, t1;
	struct vdi_image *img;
	int64_t res[NREQ];

	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	arm_submit(NULL, 0, -EAGAIN);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	write_round(img, 0, res);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_gt(sinj.fired, 1, "submitted more than once");
	disarm();
	cr_assert_eq(count_res(res, -EAGAIN), NREQ,
		     "every write fails with EAGAIN");
	cr_assert_lt(t1.tv_sec - t0.tv_sec, 5, "gave up in bounded time");
	later_round_and_verify(img, p, false);
}

/* The kernel takes only the first 5 SQEs: the rest are submitted too. */
Test(faults, submit_short, .timeout = 60)
{
	const int script[] = { 5 };
	const char *p = fresh("s-short.vdi");
	struct vdi_image *img;
	int64_t res[NREQ];

	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	arm_submit(script, 1, PASS);
	write_round(img, 0, res);
	cr_assert_eq(sinj.fired, 1, "the fault was injected");
	cr_assert_eq(count_res(res, CHUNK), NREQ, "every write succeeds");
	cr_assert_eq(vdi_flush(img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_close(img), 0, "%s", vdi_errmsg());
	verify(p);
}

/* The kernel takes 5 SQEs, then refuses the rest: the 5 requests
 * succeed, the 7 others fail with the error; none is lost or counted
 * twice (write_round checks). */
Test(faults, submit_short_then_eio, .timeout = 60)
{
	const int script[] = { 5, -EIO };
	const char *p = fresh("s-short-eio.vdi");
	struct vdi_image *img;
	int64_t res[NREQ];

	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	arm_submit(script, 2, PASS);
	write_round(img, 0, res);
	cr_assert_eq(sinj.fired, 2, "the faults were injected");
	cr_assert_eq(count_res(res, CHUNK), 5, "what the kernel took succeeds");
	cr_assert_eq(count_res(res, -EIO), NREQ - 5, "the rest fails with EIO");
	later_round_and_verify(img, p, true);
}

/* A short write's remainder is submitted again from vdi_queue_reap; that
 * submission is refused: the request completes with the error (its range
 * holds old or new data), the others succeed. */
Test(faults, submit_resubmit_enomem, .timeout = 60)
{
	const int script[] = { PASS, -ENOMEM };
	const char *p = fresh("s-resubmit.vdi");
	struct vdi_image *img;
	int64_t res[NREQ];

	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	arm(VDI_IO_WRITE, 4, M_SHORT, 0);
	arm_submit(script, 2, PASS);
	write_round(img, 0, res);
	cr_assert_eq(inj.fired, 1, "the short write was injected");
	cr_assert_eq(sinj.fired, 1, "the resubmission was refused");
	cr_assert_eq(count_res(res, -ENOMEM), 1, "that write fails");
	cr_assert_eq(count_res(res, CHUNK), NREQ - 1, "the others succeed");
	disarm();
	later_round_and_verify(img, p, true);
}

/* The synchronous calls share pooled queues: after a refused submission
 * the call fails with the error and the pool, vdi_flush and vdi_close
 * work as before. */
Test(faults, submit_sync_enomem, .timeout = 60)
{
	const int script[] = { -ENOMEM };
	const char *p = fresh("s-sync.vdi");
	unsigned char a[4096], b[4096];
	struct vdi_image *img;

	pattern(a, sizeof(a), 1);
	pattern(b, sizeof(b), 2);
	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	arm_submit(script, 1, PASS);
	cr_assert_eq(vdi_pwrite(img, a, sizeof(a), 4 * MiB), -ENOMEM,
		     "the write fails with ENOMEM");
	cr_assert(strstr(vdi_errmsg(), "io_uring_submit"), "message: %s",
		  vdi_errmsg());
	unknown[4 * MiB / CHUNK] = 1;
	/* In the block the failed write allocated: it is written now. */
	cr_assert_eq(vdi_pwrite(img, b, sizeof(b), 4 * MiB + CHUNK),
		     (ssize_t)sizeof(b), "the next write works: %s",
		     vdi_errmsg());
	memcpy(model + 4 * MiB + CHUNK, b, sizeof(b));
	cr_assert_eq(vdi_flush(img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_close(img), 0, "%s", vdi_errmsg());
	verify(p);
}

/* A flush whose submission is refused fails with the error; the map
 * entries of the blocks written before it stay off the disk until an
 * fdatasync has made their data durable, even when other batches write
 * metadata in between; the next flush writes them. */
static void flush_refused(const char *name, const int *script, unsigned len,
			  int err, bool barrier_ran)
{
	const char *p = fresh(name);
	unsigned char a[4096];
	struct vdi_image *img;
	int64_t res[NREQ];

	pattern(a, sizeof(a), 5);
	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	write_round(img, 0, res); /* allocates blocks 0 to 3 */
	cr_assert_eq(count_res(res, CHUNK), NREQ);
	arm_submit(script, len, PASS);
	cr_assert_eq(vdi_flush(img), err, "the flush fails with %s (%s)",
		     strerror(-err), vdi_errmsg());
	cr_assert_eq(sinj.fired, len, "the faults were injected");
	cr_assert(strstr(vdi_errmsg(), "io_uring_submit"), "message: %s",
		  vdi_errmsg());
	disarm();
	/* A batch that zeroes block 9 writes its map sector on the image's
	 * own ring; the entries of blocks 0 to 3 must not go with it. */
	cr_assert_eq(vdi_write_zeroes(img, 9 * MiB, MiB), 0, "%s",
		     vdi_errmsg());
	cr_assert_eq(vdi_pwrite(img, a, sizeof(a), 0), (ssize_t)sizeof(a),
		     "%s", vdi_errmsg());
	memcpy(model, a, sizeof(a));
	/* Unless the flush's fdatasync ran, which makes them durable. */
	if (!barrier_ran)
		cr_assert_eq(peek32(p, MiB), VDI_BMAP_FREE,
			     "no entry on disk for data that was not synced");
	cr_assert_eq(vdi_flush(img), 0, "the next flush works: %s",
		     vdi_errmsg());
	cr_assert_neq(peek32(p, MiB), VDI_BMAP_FREE, "the next flush wrote it");
	cr_assert_eq(vdi_close(img), 0, "%s", vdi_errmsg());
	verify(p);
}

Test(faults, submit_flush_enomem, .timeout = 60)
{
	const int script[] = { -ENOMEM };

	flush_refused("s-flush.vdi", script, 1, -ENOMEM, false);
}

/* The kernel takes the flush's barrier (fdatasync) only, then refuses the
 * map writes and the final fsync linked after it. */
Test(faults, submit_flush_cut, .timeout = 60)
{
	const int script[] = { 1, -EIO };

	flush_refused("s-flush-cut.vdi", script, 2, -EIO, true);
}

/* The ring fills while a batch is prepared and is submitted from inside
 * vdi_queue_submit; that submission is refused.  Blocks allocated out of
 * order (even ones first) make each 8 MiB read 8 SQEs: 5 reads need 40,
 * the ring of a depth-8 queue holds 32. */
Test(faults, submit_ring_full, .timeout = 60)
{
	const int script[] = { -ENOMEM };
	const size_t len = 8 * MiB;
	const char *p = fresh("s-full.vdi");
	unsigned char *buf = malloc(5 * len);
	struct vdi_completion c[5];
	struct vdi_image *img;
	struct vdi_queue *q;
	int64_t res[5];
	unsigned i, got = 0;

	cr_assert(buf);
	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	for (i = 0; i < 16; i++) {
		uint64_t vb = i < 8 ? 2 * i : 2 * (i - 8) + 1;

		pattern(model + vb * MiB, MiB, vb + 1);
		cr_assert_eq(vdi_pwrite(img, model + vb * MiB, MiB, vb * MiB),
			     (ssize_t)MiB, "%s", vdi_errmsg());
	}
	cr_assert_eq(vdi_flush(img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_queue_create(img, 8, 0, &q), 0, "%s", vdi_errmsg());
	for (i = 0; i < 5; i++) {
		res[i] = INT64_MIN;
		cr_assert_eq(vdi_queue_read(q, buf + i * len, len,
					    (i % 2) * len,
					    (void *)(uintptr_t)i), 0);
	}
	arm_submit(script, 1, PASS);
	cr_assert_eq(vdi_queue_submit(q), 5, "%s", vdi_errmsg());
	cr_assert_eq(sinj.fired, 1, "the ring was submitted while full");
	while (got < 5) {
		int n = vdi_queue_reap(q, c, 1, 5, &reap_limit);

		cr_assert_gt(n, 0, "reap: %s", n < 0 ? vdi_errmsg()
						   : "a read was lost");
		for (int k = 0; k < n; k++) {
			unsigned t = (unsigned)(uintptr_t)c[k].tag;

			cr_assert_eq(res[t], INT64_MIN, "read %u completed "
				     "twice", t);
			res[t] = c[k].res;
		}
		got += (unsigned)n;
	}
	for (i = 0; i < 4; i++)
		cr_assert_eq(res[i], -ENOMEM, "read %u was on the full ring", i);
	cr_assert_eq(res[4], (int64_t)len, "the read after it succeeds");
	cr_assert_eq(memcmp(buf + 4 * len, model, len), 0, "and reads right");
	cr_assert_eq(vdi_queue_pending(q), 0);
	vdi_queue_destroy(q);
	cr_assert_eq(vdi_close(img), 0, "%s", vdi_errmsg());
	free(buf);
	verify(p);
}

/* The image's own metadata ring (zero-entry changes, once per batch): a
 * refused submission there leaves nothing counted in flight (close would
 * wait for it forever) and the entries go out with the next write-back. */
Test(faults, submit_meta_ring_refused, .timeout = 60)
{
	const int script[] = { -ENOMEM };
	const char *p = fresh("s-meta.vdi");
	unsigned char a[4096];
	struct vdi_image *img;

	pattern(a, sizeof(a), 9);
	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_pwrite(img, a, sizeof(a), 0), (ssize_t)sizeof(a));
	memcpy(model, a, sizeof(a));
	cr_assert_eq(vdi_pwrite(img, a, sizeof(a), 2 * MiB), (ssize_t)sizeof(a));
	cr_assert_eq(vdi_flush(img), 0, "%s", vdi_errmsg());
	/* A discarded block keeps its slot (no metadata); zeros over the
	 * whole of free block 3 make a zero entry, which the next call's
	 * metadata batch, the first on the image's ring, writes: refused. */
	arm_submit(script, 1, PASS);
	sinj.ring = VDI_RING_META;
	cr_assert_eq(vdi_discard(img, 2 * MiB, MiB), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_write_zeroes(img, 3 * MiB, MiB), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_pwrite(img, a, sizeof(a), 8192), (ssize_t)sizeof(a),
		     "%s", vdi_errmsg());
	memcpy(model + 8192, a, sizeof(a));
	cr_assert_eq(sinj.fired, 1, "the metadata batch was refused");
	disarm();
	cr_assert_eq(vdi_close(img), 0, "%s", vdi_errmsg());
	cr_assert_eq(peek32(p, MiB + 3 * 4), VDI_BMAP_ZERO,
		     "the zero entry reached the disk at close");
	cr_assert_eq(peek32(p, MiB + 2 * 4), 1, "the discarded block keeps "
		     "its slot");
	verify(p);
}

/* ---- vdi_create ------------------------------------------------------------ */

/* vdi_create makes the file durable, renames it into place and makes the
 * rename durable: an fsync of the file, then one of the directory.  When
 * the directory's fails, the call fails with a message and leaves the
 * image, complete, in place (and no temporary file). */
static unsigned count_files(const char *dir, const char *part)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned n = 0;

	cr_assert(d, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d)))
		n += strstr(e->d_name, part) != NULL;
	closedir(d);
	return n;
}

Test(faults, create_syncs_directory)
{
	const char *p = tpath("cr-sync.vdi");

	unlink(p);
	arm(VDI_IO_FSYNC, 0, M_ERR, 0); /* counts, never fires */
	cr_assert_eq(vdi_create(p, DISK, NULL), 0, "%s", vdi_errmsg());
	cr_assert_eq(inj.seen, 2, "the file and its directory are synced");
	disarm();
	model_init();
	verify(p);
}

Test(faults, create_dir_fsync_eio)
{
	const char *p = tpath("cr-eio.vdi");
	struct vdi_image *img;
	char dir[4096];

	unlink(p);
	arm(VDI_IO_FSYNC, 2, M_ERR, EIO);
	cr_assert_eq(vdi_create(p, DISK, NULL), -EIO, "%s", vdi_errmsg());
	disarm();
	cr_assert(strstr(vdi_errmsg(), "directory"), "message: %s",
		  vdi_errmsg());
	/* The image was complete and in place (it may have replaced a
	 * file): it stays, and opens. */
	cr_assert_eq(vdi_open(p, VDI_OPEN_RDONLY, &img), 0, "%s", vdi_errmsg());
	vdi_close(img);
	snprintf(dir, sizeof(dir), "%s", p);
	*strrchr(dir, '/') = '\0';
	cr_assert_eq(count_files(dir, "cr-eio.vdi"), 1, "no temporary file");
}

QEMU_ORACLE_TEST(faults)
