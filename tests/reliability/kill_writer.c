/* The writer and the verifier of the kill test (kill-test.sh).
 *
 *   kill_writer write IMAGE LOG RUN SEED
 *     Writes self-describing 4 KiB records (magic, virtual offset,
 *     generation, checksum) at random 4 KiB offsets through the async API,
 *     with a random queue depth and flushes at random points, until it is
 *     killed.  After each flush completes it appends to LOG, and fsyncs,
 *     the records acknowledged before that flush was queued: pairs
 *     (4 KiB index, generation) ending with a terminator pair.
 *     Generations are RUN << 32 | counter, so they grow across runs.
 *
 *   kill_writer verify IMAGE LOG
 *     Every 4 KiB of the disk reads as zeros or as a valid record naming
 *     that same offset; every record a complete LOG group names is there,
 *     with the same or a newer generation.  Exit 0 when all holds. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vdi.h"

#define REC 4096
#define MAGIC 0x4c4c494b49445621ull /* "!VDIKILL" */
#define TERM UINT64_MAX
#define MAX_DEPTH 32
#define FLUSH_TAG ((void *)1)

struct rec_head {
	uint64_t magic, offset, gen, sum;
};

static uint64_t rng;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t checksum(const unsigned char *rec)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < REC; i++) {
		if (i >= 24 && i < 32)
			continue; /* the checksum itself */
		h = (h ^ rec[i]) * 0x100000001b3ull;
	}
	return h;
}

static void make_record(unsigned char *rec, uint64_t off, uint64_t gen)
{
	struct rec_head hd = { MAGIC, off, gen, 0 };
	uint64_t x = gen * 0x9E3779B97F4A7C15ull ^ off;
	size_t i;

	for (i = sizeof(hd); i < REC; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		rec[i] = (unsigned char)(x >> 56);
	}
	memcpy(rec, &hd, sizeof(hd));
	hd.sum = checksum(rec);
	memcpy(rec, &hd, sizeof(hd));
}

static void die(const char *what, int err)
{
	fprintf(stderr, "kill_writer: %s: %s (%s)\n", what, strerror(-err),
		vdi_errmsg());
	exit(1);
}

struct slot {
	unsigned char *buf;
	uint64_t idx, gen;
	int busy;
};

static int run_writer(const char *image, const char *log, uint64_t run,
		      uint64_t seed)
{
	struct vdi_completion c[MAX_DEPTH + 1];
	struct slot slots[MAX_DEPTH];
	uint64_t *acked, *snap, *logged, counter = 0, nrec;
	struct vdi_image *img;
	struct vdi_queue *q;
	unsigned depth, inflight = 0, i;
	int flush_busy = 0, logfd, ret;

	/* Runs until killed: the loop has no exit. */

	rng = seed | 1;
	/* LIBVDI_KILL_DIRECT=1: O_DIRECT, where writes into new slots of
	 * QEMU's layout are widened to whole file-system blocks. */
	ret = vdi_open(image, getenv("LIBVDI_KILL_DIRECT") ? VDI_OPEN_DIRECT : 0,
		       &img);
	if (ret < 0)
		die("open", ret);
	nrec = vdi_get_size(img) / REC;
	depth = 1 + (unsigned)(next_rand() % MAX_DEPTH);
	ret = vdi_queue_create(img, depth + 1, 0, &q);
	if (ret < 0)
		die("queue", ret);
	acked = calloc(nrec, 8);
	snap = calloc(nrec, 8);
	logged = calloc(nrec, 8);
	logfd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (!acked || !snap || !logged || logfd < 0)
		die("setup", -ENOMEM);
	for (i = 0; i < depth; i++) {
		if (posix_memalign((void **)&slots[i].buf, 4096, REC))
			die("memalign", -ENOMEM);
		slots[i].busy = 0;
	}
	for (;;) {
		unsigned want = (unsigned)(next_rand() % (depth + 1));
		int n;

		for (i = 0; i < depth && inflight < want; i++) {
			struct slot *s = &slots[i];
			uint64_t idx;
			unsigned k;
			int clash;

			if (s->busy)
				continue;
			/* No two writes in flight to one offset. */
			do {
				idx = next_rand() % nrec;
				clash = 0;
				for (k = 0; k < depth; k++)
					clash |= slots[k].busy &&
						 slots[k].idx == idx;
			} while (clash);
			s->idx = idx;
			s->gen = run << 32 | ++counter;
			make_record(s->buf, idx * REC, s->gen);
			ret = vdi_queue_write(q, s->buf, REC, idx * REC, s);
			if (ret < 0)
				die("queue write", ret);
			s->busy = 1;
			inflight++;
		}
		if (!flush_busy && next_rand() % 8 == 0) {
			/* The flush covers what completed before now. */
			memcpy(snap, acked, nrec * 8);
			ret = vdi_queue_flush(q, FLUSH_TAG);
			if (ret < 0)
				die("queue flush", ret);
			flush_busy = 1;
		}
		ret = vdi_queue_submit(q);
		if (ret < 0)
			die("submit", ret);
		if (!inflight && !flush_busy)
			continue;
		n = vdi_queue_reap(q, c, 1, MAX_DEPTH + 1, NULL);
		if (n < 0)
			die("reap", n);
		for (int k = 0; k < n; k++) {
			if (c[k].tag == FLUSH_TAG) {
				uint64_t pair[2], x;
				size_t cnt = 0;

				if (c[k].res != 0)
					die("flush", (int)c[k].res);
				flush_busy = 0;
				for (x = 0; x < nrec; x++) {
					if (snap[x] == logged[x])
						continue;
					pair[0] = x;
					pair[1] = snap[x];
					if (write(logfd, pair, sizeof(pair)) !=
					    sizeof(pair))
						die("log", -errno);
					logged[x] = snap[x];
					cnt++;
				}
				pair[0] = TERM;
				pair[1] = cnt;
				if (write(logfd, pair, sizeof(pair)) != sizeof(pair) ||
				    fdatasync(logfd) < 0)
					die("log", -errno);
			} else {
				struct slot *s = c[k].tag;

				if (c[k].res != REC)
					die("write", (int)c[k].res);
				if (s->gen > acked[s->idx])
					acked[s->idx] = s->gen;
				s->busy = 0;
				inflight--;
			}
		}
	}
	return 0; /* not reached */
}

static int run_verify(const char *image, const char *log)
{
	unsigned char *buf = malloc(REC);
	uint64_t *required, *pending, nrec, pair[2], x;
	uint64_t groups = 0, zeros = 0, records = 0, stale = 0;
	size_t npend = 0, cap = 0;
	struct vdi_image *img;
	FILE *f;
	int ret, bad = 0;

	ret = vdi_open(image, VDI_OPEN_RDONLY, &img);
	if (ret < 0)
		die("open", ret);
	nrec = vdi_get_size(img) / REC;
	required = calloc(nrec, 8);
	pending = NULL;
	f = fopen(log, "rb");
	while (f && fread(pair, sizeof(pair), 1, f) == 1) {
		if (pair[0] == TERM) {
			for (size_t k = 0; k < npend; k += 2)
				required[pending[k]] = pending[k + 1];
			npend = 0;
			groups++;
			continue;
		}
		if (pair[0] >= nrec) {
			fprintf(stderr, "verify: log names index %" PRIu64
				" beyond the disk\n", pair[0]);
			return 1;
		}
		if (npend + 2 > cap) {
			cap = cap ? cap * 2 : 1024;
			pending = realloc(pending, cap * 8);
		}
		pending[npend++] = pair[0];
		pending[npend++] = pair[1];
	}
	if (f)
		fclose(f);
	for (x = 0; x < nrec; x++) {
		struct rec_head hd;
		ssize_t n = vdi_pread(img, buf, REC, x * REC);
		size_t i;

		if (n != REC) {
			fprintf(stderr, "verify: read at %" PRIu64 ": %s\n",
				x * REC, vdi_errmsg());
			bad++;
			continue;
		}
		memcpy(&hd, buf, sizeof(hd));
		for (i = 0; i < REC && !buf[i]; i++)
			;
		if (i == REC) {
			zeros++;
			if (required[x]) {
				fprintf(stderr, "verify: offset %" PRIu64
					" reads zeros; flushed generation %"
					PRIx64 " is lost\n", x * REC,
					required[x]);
				bad++;
			}
			continue;
		}
		if (hd.magic != MAGIC || hd.sum != checksum(buf)) {
			fprintf(stderr, "verify: offset %" PRIu64 " holds "
				"neither zeros nor a valid record\n", x * REC);
			bad++;
			continue;
		}
		if (hd.offset != x * REC) {
			fprintf(stderr, "verify: offset %" PRIu64 " holds the "
				"record of offset %" PRIu64 "\n", x * REC,
				hd.offset);
			bad++;
			continue;
		}
		records++;
		if (hd.gen < required[x]) {
			fprintf(stderr, "verify: offset %" PRIu64 " has "
				"generation %" PRIx64 ", older than the flushed "
				"%" PRIx64 "\n", x * REC, hd.gen, required[x]);
			bad++;
		}
		if (hd.gen > required[x])
			stale++;
	}
	vdi_close(img);
	printf("verify: %" PRIu64 " flush groups, %" PRIu64 " records, %"
	       PRIu64 " newer than the last flush, %" PRIu64 " zero blocks, %d "
	       "problems\n", groups, records, stale, zeros, bad);
	free(buf);
	free(required);
	free(pending);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 6 && !strcmp(argv[1], "write"))
		return run_writer(argv[2], argv[3], strtoull(argv[4], NULL, 0),
				  strtoull(argv[5], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "verify"))
		return run_verify(argv[2], argv[3]);
	fprintf(stderr, "usage: kill_writer write IMAGE LOG RUN SEED\n"
			"       kill_writer verify IMAGE LOG\n");
	return 2;
}
