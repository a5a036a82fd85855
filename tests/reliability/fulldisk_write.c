/* The writer of the full-disk test: `fulldisk write`, see fulldisk.h. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fulldisk.h"
#include "vdi.h"

#define DEPTH 8u           /* async: writes in flight */
#define STEPS_AFTER_FULL 48
#define MAX_STEPS 4000
#define DISCARD_BLOCKS 4u
#define FLUSH_TAG ((void *)1)
#define DISCARD_TAG ((void *)2)

static uint64_t rng;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

enum step_kind { STEP_FRESH, STEP_SPAN, STEP_OVERWRITE, STEP_FLUSH };

struct step {
	enum step_kind kind;
	uint64_t idx;   /* first record */
	unsigned n;     /* records */
	uint64_t gen;
};

struct writer {
	const char *mode;
	int expect;            /* EFBIG or ENOSPC */
	struct vdi_image *img;
	FILE *log;
	uint64_t nrec, rpb;    /* records on the disk, per block */
	uint64_t nblocks, next_fresh;
	uint64_t gen;
	unsigned char *written; /* per record: a write of it succeeded */
	uint64_t *done;         /* records written, to pick overwrites */
	uint64_t ndone;
	unsigned since_flush;
	int flush_id;
	/* Counters for the summary and the expectations. */
	unsigned writes, writes_failed, overwrites_after_full;
	unsigned flushes, flushes_failed, flushes_ok_before_full;
	unsigned fresh_ok_after_discard;
	int steps, full_at;     /* full_at: step of the first failure, or -1 */
	int discarded;
	int warm;               /* the first blocks were flushed */
};

static void log_line(struct writer *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void log_line(struct writer *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(w->log, fmt, ap);
	va_end(ap);
	if (fflush(w->log) != 0)
		fail("%s: cannot write the log: %s", w->mode, strerror(errno));
}

static int is_allowed_error(const struct writer *w, int64_t res)
{
	return res == -w->expect;
}

/* A synchronous call failed: its message must say why. */
static void check_message(const struct writer *w, const char *call,
			  int64_t res)
{
	const char *msg = vdi_errmsg();

	if (!strstr(msg, strerror((int)-res)))
		fail("%s: %s failed with %s, but vdi_errmsg() does not say so: "
		     "'%s'", w->mode, call, strerror((int)-res), msg);
}

/* The next step of the workload.  `busy` (async) tells whether a record
 * is in flight: an overwrite must not race a write to the same piece. */
static struct step next_step(struct writer *w,
			     int (*busy)(void *, uint64_t, unsigned),
			     void *arg)
{
	struct step s = { STEP_FLUSH, 0, 0, 0 };
	unsigned r = (unsigned)(next_rand() % 16);

	if (w->since_flush >= 8 || r >= 14)
		return s;
	if (w->next_fresh == DISCARD_BLOCKS && !w->warm) {
		/* They are made durable before anything else. */
		w->warm = 1;
		return s;
	}
	if (w->next_fresh < DISCARD_BLOCKS) {
		/* Whole blocks first: their discard gives space back. */
		s.kind = STEP_FRESH;
		s.n = (unsigned)w->rpb;
		s.idx = w->next_fresh++ * w->rpb;
	} else if (r == 7 && w->next_fresh + 2 <= w->nblocks) {
		/* A block's second half and the next block's first: both new,
		 * contiguous in the file, one SQE. */
		s.kind = STEP_SPAN;
		s.idx = w->next_fresh * w->rpb + w->rpb / 2;
		s.n = (unsigned)w->rpb;
		w->next_fresh += 2;
	} else if (r < 7 && w->next_fresh < w->nblocks) {
		/* 4 KiB, 32 KiB, a quarter block, a whole block. */
		const unsigned sizes[] = { 1, 8, (unsigned)w->rpb / 4,
					   (unsigned)w->rpb };

		s.kind = STEP_FRESH;
		s.n = sizes[next_rand() % 4];
		s.idx = w->next_fresh++ * w->rpb +
			next_rand() % (w->rpb - s.n + 1);
	} else {
		/* A piece written before, not discarded since, not in flight. */
		for (int tries = 0; tries < 16 && s.kind == STEP_FLUSH; tries++) {
			s.idx = w->ndone ? w->done[next_rand() % w->ndone] : 0;
			if (w->ndone && w->written[s.idx] &&
			    !(busy && busy(arg, s.idx, 1)))
				s.kind = STEP_OVERWRITE;
		}
		if (s.kind == STEP_FLUSH)
			return s;
		s.n = 1;
	}
	s.gen = ++w->gen;
	w->since_flush++;
	return s;
}

static void write_done(struct writer *w, const struct step *s, int64_t res,
		       int sync)
{
	size_t len = (size_t)s->n * REC;

	w->writes++;
	log_line(w, "W %" PRIu64 " %u %" PRIu64 " %" PRId64 "\n", s->idx,
		 s->n, s->gen, res == (int64_t)len ? 0 : res);
	if (res == (int64_t)len) {
		for (unsigned i = 0; i < s->n; i++)
			if (!w->written[s->idx + i]) {
				w->written[s->idx + i] = 1;
				w->done[w->ndone++] = s->idx + i;
			}
		if (s->kind == STEP_OVERWRITE && w->full_at >= 0)
			w->overwrites_after_full++;
		if (s->kind != STEP_OVERWRITE && w->discarded)
			w->fresh_ok_after_discard++;
		return;
	}
	if (!is_allowed_error(w, res))
		fail("%s: a write of %zu bytes at %" PRIu64 " returned %" PRId64
		     " (%s); expected %zu or -%s", w->mode, len, s->idx * REC,
		     res, res < 0 ? strerror((int)-res) : "short", len,
		     strerror(w->expect));
	if (sync)
		check_message(w, "vdi_pwrite", res);
	if (s->kind == STEP_OVERWRITE)
		fail("%s: overwriting %" PRIu64 ", written before, failed: %s",
		     w->mode, s->idx * REC, strerror((int)-res));
	w->writes_failed++;
	if (w->full_at < 0) {
		w->full_at = w->steps;
		printf("# %s: first failed write at step %d, virtual offset %"
		       PRIu64 ": %s\n", w->mode, w->steps, s->idx * REC,
		       strerror((int)-res));
	}
}

static void flush_done(struct writer *w, int id, int64_t res, int sync)
{
	w->flushes++;
	log_line(w, "F %d %" PRId64 "\n", id, res);
	if (res == 0) {
		if (w->full_at < 0 && w->writes)
			w->flushes_ok_before_full++;
		return;
	}
	if (!is_allowed_error(w, res))
		fail("%s: a flush returned %" PRId64 " (%s); expected 0 or -%s",
		     w->mode, res, strerror((int)-res), strerror(w->expect));
	if (sync)
		check_message(w, "vdi_flush", res);
	w->flushes_failed++;
}

/* A discard of the first blocks completed with `res` (0, or the length
 * from a queue, on success). */
static void discard_done(struct writer *w, uint64_t gen, int64_t res)
{
	uint64_t n = DISCARD_BLOCKS * w->rpb;

	if (res == (int64_t)(n * REC))
		res = 0;
	log_line(w, "Z 0 %" PRIu64 " %" PRIu64 " %" PRId64 "\n", n, gen, res);
	if (res != 0)
		fail("%s: discarding the first %u blocks returned %" PRId64
		     " (%s)", w->mode, DISCARD_BLOCKS, res, vdi_errmsg());
	for (uint64_t i = 0; i < n; i++)
		w->written[i] = 0;
	w->discarded = 1;
}

/* Time to discard: a while after the disk filled. */
static int discard_due(const struct writer *w)
{
	return !w->discarded && w->full_at >= 0 &&
	       w->steps >= w->full_at + STEPS_AFTER_FULL / 3;
}

static int finished(const struct writer *w)
{
	return w->steps >= MAX_STEPS ||
	       (w->full_at >= 0 && w->steps >= w->full_at + STEPS_AFTER_FULL);
}

static void run_sync(struct writer *w)
{
	unsigned char *buf;
	int64_t res;

	if (posix_memalign((void **)&buf, 4096, w->rpb * REC))
		fail("out of memory");
	for (; !finished(w); w->steps++) {
		struct step s;

		if (discard_due(w)) {
			uint64_t gen = ++w->gen;

			res = vdi_discard(w->img, 0,
					  DISCARD_BLOCKS * w->rpb * REC);
			discard_done(w, gen, res);
		}
		s = next_step(w, NULL, NULL);
		if (s.kind == STEP_FLUSH) {
			log_line(w, "Q %d\n", ++w->flush_id);
			w->since_flush = 0;
			flush_done(w, w->flush_id, vdi_flush(w->img), 1);
			continue;
		}
		for (unsigned i = 0; i < s.n; i++)
			make_record(buf + (size_t)i * REC, (s.idx + i) * REC,
				    s.gen);
		res = vdi_pwrite(w->img, buf, (size_t)s.n * REC, s.idx * REC);
		write_done(w, &s, res, 1);
	}
	log_line(w, "Q %d\n", ++w->flush_id);
	flush_done(w, w->flush_id, vdi_flush(w->img), 1);
	free(buf);
}

/* ---- The asynchronous writer: up to DEPTH writes and one flush in flight. */

struct slot {
	struct step s;
	unsigned char *buf;
	int busy;
};

struct async_state {
	struct slot slots[DEPTH];
	int flush_busy;
};

static int record_busy(void *arg, uint64_t idx, unsigned n)
{
	struct async_state *a = arg;

	for (unsigned i = 0; i < DEPTH; i++) {
		const struct step *s = &a->slots[i].s;

		if (a->slots[i].busy && idx < s->idx + s->n && s->idx < idx + n)
			return 1;
	}
	return 0;
}

static void queue_write(struct writer *w, struct vdi_queue *q,
			struct slot *sl, const struct step *s)
{
	for (unsigned k = 0; k < s->n; k++)
		make_record(sl->buf + (size_t)k * REC, (s->idx + k) * REC,
			    s->gen);
	sl->s = *s;
	sl->busy = 1;
	w->steps++;
	if (vdi_queue_write(q, sl->buf, (size_t)s->n * REC, s->idx * REC,
			    sl) < 0)
		fail("%s: vdi_queue_write: %s", w->mode, vdi_errmsg());
}

/* Reap at least `min` completions and account for them. */
static unsigned reap(struct writer *w, struct vdi_queue *q,
		     struct async_state *a, unsigned min)
{
	struct vdi_completion c[DEPTH + 2];
	int n = vdi_queue_reap(q, c, min, DEPTH + 2, NULL);

	if (n < 0)
		fail("%s: vdi_queue_reap: %s", w->mode, vdi_errmsg());
	for (int k = 0; k < n; k++) {
		if (c[k].tag == FLUSH_TAG) {
			a->flush_busy = 0;
			flush_done(w, w->flush_id, c[k].res, 0);
		} else if (c[k].tag == DISCARD_TAG) {
			discard_done(w, w->gen, c[k].res);
		} else {
			struct slot *sl = c[k].tag;

			sl->busy = 0;
			write_done(w, &sl->s, c[k].res, 0);
		}
	}
	return (unsigned)n;
}

static void queue_flush(struct writer *w, struct vdi_queue *q,
			struct async_state *a)
{
	int ret;

	/* The flush covers the writes acknowledged so far. */
	log_line(w, "Q %d\n", ++w->flush_id);
	ret = vdi_queue_flush(q, FLUSH_TAG);
	if (ret < 0)
		fail("%s: vdi_queue_flush: %s", w->mode, vdi_errmsg());
	a->flush_busy = 1;
	w->since_flush = 0;
}

static void drain(struct writer *w, struct vdi_queue *q, struct async_state *a)
{
	if (vdi_queue_submit(q) < 0)
		fail("%s: vdi_queue_submit: %s", w->mode, vdi_errmsg());
	while (vdi_queue_pending(q))
		reap(w, q, a, 1);
}

static void run_async(struct writer *w)
{
	struct async_state a = { 0 };
	struct vdi_queue *q;
	int ret;

	ret = vdi_queue_create(w->img, DEPTH + 2, 0, &q);
	if (ret < 0)
		fail("%s: vdi_queue_create: %s", w->mode, vdi_errmsg());
	for (unsigned i = 0; i < DEPTH; i++)
		if (posix_memalign((void **)&a.slots[i].buf, 4096, w->rpb * REC))
			fail("out of memory");
	/* The first blocks, all at once, then the flush that makes them
	 * durable. */
	for (unsigned i = 0; w->next_fresh < DISCARD_BLOCKS;) {
		struct step s = next_step(w, record_busy, &a);

		if (s.kind != STEP_FLUSH)
			queue_write(w, q, &a.slots[i++], &s);
	}
	drain(w, q, &a);
	while (next_step(w, NULL, NULL).kind != STEP_FLUSH)
		fail("%s: no flush after the first blocks", w->mode);
	queue_flush(w, q, &a);
	w->steps++;
	drain(w, q, &a);
	while (!finished(w)) {
		unsigned want = 1 + (unsigned)(next_rand() % DEPTH);

		if (discard_due(w)) {
			drain(w, q, &a);
			++w->gen;
			if (vdi_queue_discard(q, 0, DISCARD_BLOCKS * w->rpb * REC,
					      DISCARD_TAG) < 0)
				fail("%s: vdi_queue_discard: %s", w->mode,
				     vdi_errmsg());
			drain(w, q, &a);
		}
		for (unsigned i = 0; i < DEPTH && want; i++) {
			struct slot *sl = &a.slots[i];
			struct step s;

			if (sl->busy)
				continue;
			s = next_step(w, record_busy, &a);
			want--;
			if (s.kind == STEP_FLUSH) {
				if (a.flush_busy)
					break;
				queue_flush(w, q, &a);
				w->steps++;
				continue;
			}
			queue_write(w, q, sl, &s);
		}
		if (vdi_queue_submit(q) < 0)
			fail("%s: vdi_queue_submit: %s", w->mode, vdi_errmsg());
		if (vdi_queue_pending(q))
			reap(w, q, &a, 1);
	}
	drain(w, q, &a);
	queue_flush(w, q, &a);
	drain(w, q, &a);
	vdi_queue_destroy(q);
	for (unsigned i = 0; i < DEPTH; i++)
		free(a.slots[i].buf);
}

static int parse_errno(const char *name)
{
	if (!strcmp(name, "EFBIG"))
		return EFBIG;
	if (!strcmp(name, "ENOSPC"))
		return ENOSPC;
	fail("--expect=%s: give EFBIG or ENOSPC", name);
}

int fulldisk_write(int argc, char **argv)
{
	struct writer w = { .full_at = -1 };
	struct vdi_info info;
	uint64_t fsize = 0;
	const char *seed = getenv("LIBVDI_SEED");
	int ret, async;

	if (argc < 5)
		fail("usage: fulldisk write sync|async IMAGE LOG "
		     "[--fsize=BYTES] --expect=EFBIG|ENOSPC");
	w.mode = argv[2];
	async = !strcmp(w.mode, "async");
	if (!async && strcmp(w.mode, "sync"))
		fail("write: mode '%s' is not sync or async", w.mode);
	for (int i = 5; i < argc; i++) {
		if (!strncmp(argv[i], "--fsize=", 8))
			fsize = strtoull(argv[i] + 8, NULL, 0);
		else if (!strncmp(argv[i], "--expect=", 9))
			w.expect = parse_errno(argv[i] + 9);
		else
			fail("write: unknown argument '%s'", argv[i]);
	}
	if (!w.expect)
		fail("write: --expect is missing");
	rng = (seed ? strtoull(seed, NULL, 0) : 20261125) * 2 + 1 + (uint64_t)async;

	w.log = fopen(argv[4], "w");
	if (!w.log)
		fail("%s: %s", argv[4], strerror(errno));
	if (fsize) {
		struct rlimit rl = { fsize, fsize };

		/* Past the limit, write() fails with EFBIG instead of the
		 * process dying of SIGXFSZ. */
		signal(SIGXFSZ, SIG_IGN);
		if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
			fail("setrlimit(RLIMIT_FSIZE): %s", strerror(errno));
	}
	alarm(60);
	ret = vdi_open(argv[3], 0, &w.img);
	if (ret < 0)
		fail("%s", vdi_errmsg());
	vdi_get_info(w.img, &info);
	if (info.block_size % REC || info.block_size / REC < 8)
		fail("%s: block size %u is too small for this test",
		     argv[3], info.block_size);
	w.rpb = info.block_size / REC;
	w.nrec = vdi_get_size(w.img) / REC;
	w.nblocks = w.nrec / w.rpb;
	w.written = calloc(w.nrec, 1);
	w.done = calloc(w.nrec, sizeof(*w.done));
	if (!w.written || !w.done)
		fail("out of memory");

	if (async)
		run_async(&w);
	else
		run_sync(&w);

	ret = vdi_close(w.img);
	printf("# %s: %d steps, %u writes (%u failed), %u overwrites after "
	       "the disk was full, %u flushes (%u failed), %u writes to new "
	       "blocks after the discard; vdi_close: %s\n", w.mode, w.steps,
	       w.writes, w.writes_failed, w.overwrites_after_full, w.flushes,
	       w.flushes_failed, w.fresh_ok_after_discard,
	       ret ? vdi_errmsg() : "ok");
	if (ret < 0 && !is_allowed_error(&w, ret))
		fail("%s: vdi_close returned %s; expected 0 or -%s (%s)",
		     w.mode, strerror(-ret), strerror(w.expect), vdi_errmsg());
	if (ret < 0)
		check_message(&w, "vdi_close", ret);
	if (!w.writes_failed)
		fail("%s: no write failed in %d steps: the disk never filled",
		     w.mode, w.steps);
	if (!w.flushes_ok_before_full)
		fail("%s: no flush succeeded before the disk was full", w.mode);
	if (w.expect == ENOSPC && !w.fresh_ok_after_discard)
		fail("%s: the discard gave space back, but no new block could "
		     "be written after it", w.mode);
	fclose(w.log);
	free(w.written);
	free(w.done);
	return 0;
}
