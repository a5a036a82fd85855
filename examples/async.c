/* async: many requests in flight on one vdi_queue.
 *
 *   async IMAGE SIZE     create IMAGE with a SIZE-byte disk (K, M or G
 *                        suffix), write a pattern over all of it, flush and
 *                        close; then open it again read-only and verify
 *   async -v IMAGE       only verify the pattern in an existing IMAGE
 *
 * Requests of 192 KiB (so that many cross a 1 MiB block boundary) are
 * queued until DEPTH are in flight, sent with one vdi_queue_submit() per
 * round and reaped up to BATCH at a time.  Each request's buffer travels as
 * its tag.  Exit status: 0 when every byte reads back as written, 1 on an
 * error or a mismatch, 2 on bad usage.
 *
 * Build against an installed libvdi with
 *   cc -o async async.c $(pkg-config --cflags --libs libvdi)
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vdi.h>

#define DEPTH 64
#define BATCH 16
#define REQ_SIZE (192u << 10)

struct slot {
	struct slot *next_free;
	uint64_t offset;
	size_t len;
	unsigned char buf[REQ_SIZE];
};

struct pool {
	struct slot *slots, *free;
	unsigned in_flight;
};

/* The 8 bytes at virtual offset `off` (a multiple of 8): a value that
 * differs for every position, so a misplaced block cannot pass. */
static uint64_t pattern(uint64_t off)
{
	return (off * UINT64_C(0x9E3779B97F4A7C15)) ^ UINT64_C(0x5644492d41535943);
}

static void fill(struct slot *s)
{
	size_t i;

	for (i = 0; i < s->len; i += 8) {
		uint64_t v = pattern(s->offset + i);

		memcpy(s->buf + i, &v, 8);
	}
}

/* Returns the number of bytes that differ from the pattern. */
static uint64_t verify(const struct slot *s)
{
	uint64_t bad = 0;
	size_t i;

	for (i = 0; i < s->len; i += 8) {
		uint64_t v = pattern(s->offset + i);

		if (memcmp(s->buf + i, &v, 8) != 0) {
			if (!bad)
				fprintf(stderr, "async: mismatch at offset %"
					PRIu64 "\n", s->offset + i);
			bad += 8;
		}
	}
	return bad;
}

static int pool_init(struct pool *p)
{
	unsigned i;

	p->slots = calloc(DEPTH, sizeof(*p->slots));
	if (!p->slots)
		return -1;
	p->free = NULL;
	for (i = 0; i < DEPTH; i++) {
		p->slots[i].next_free = p->free;
		p->free = &p->slots[i];
	}
	p->in_flight = 0;
	return 0;
}

/* Run reads or writes over the whole disk, DEPTH at a time.  Returns the
 * number of mismatching bytes (reads), or -1 on an error. */
static int64_t run(struct vdi_image *img, struct vdi_queue *q,
		   struct pool *p, int write)
{
	const struct timespec limit = { 10, 0 };
	struct vdi_completion done[BATCH];
	uint64_t size = vdi_get_size(img), next = 0, bad = 0;

	while (next < size || p->in_flight) {
		unsigned queued = 0;
		int i, n;

		/* Queue what the free buffers allow, then send it all with
		 * one submit. */
		while (next < size && p->free) {
			struct slot *s = p->free;
			int ret;

			s->offset = next;
			s->len = size - next < REQ_SIZE ? (size_t)(size - next)
							: REQ_SIZE;
			if (write) {
				fill(s);
				ret = vdi_queue_write(q, s->buf, s->len,
						      s->offset, s);
			} else {
				ret = vdi_queue_read(q, s->buf, s->len,
						     s->offset, s);
			}
			if (ret == -EAGAIN)
				break; /* the queue is full: reap first */
			if (ret < 0) {
				fprintf(stderr, "async: %s\n", vdi_errmsg());
				return -1;
			}
			p->free = s->next_free;
			next += s->len;
			queued++;
		}
		if (queued && vdi_queue_submit(q) < 0) {
			fprintf(stderr, "async: %s\n", vdi_errmsg());
			return -1;
		}
		p->in_flight += queued;

		/* Wait for at least one completion, take up to BATCH. */
		n = vdi_queue_reap(q, done, 1, BATCH, &limit);
		if (n < 0) {
			fprintf(stderr, "async: %s\n", vdi_errmsg());
			return -1;
		}
		if (n == 0) {
			fprintf(stderr, "async: no completion in %ld s with %u "
				"requests in flight\n", (long)limit.tv_sec,
				p->in_flight);
			return -1;
		}
		for (i = 0; i < n; i++) {
			struct slot *s = done[i].tag;

			if (done[i].res != (int64_t)s->len) {
				fprintf(stderr, "async: %s of %zu bytes at %"
					PRIu64 ": %s\n", write ? "write" : "read",
					s->len, s->offset, done[i].res < 0
					? strerror((int)-done[i].res)
					: "short transfer");
				return -1;
			}
			if (!write)
				bad += verify(s);
			s->next_free = p->free;
			p->free = s;
			p->in_flight--;
		}
	}
	return (int64_t)bad;
}

/* Queue a flush, submit it and wait for its completion. */
static int flush(struct vdi_queue *q)
{
	const struct timespec limit = { 30, 0 };
	struct vdi_completion c;
	int n;

	if (vdi_queue_flush(q, NULL) < 0 || vdi_queue_submit(q) < 0) {
		fprintf(stderr, "async: %s\n", vdi_errmsg());
		return -1;
	}
	n = vdi_queue_reap(q, &c, 1, 1, &limit);
	if (n != 1 || c.res < 0) {
		fprintf(stderr, "async: flush: %s\n",
			n < 0 ? vdi_errmsg() : n == 0 ? "timed out"
						      : strerror((int)-c.res));
		return -1;
	}
	return 0;
}

static int write_image(const char *path, uint64_t size, struct pool *p)
{
	struct vdi_image *img;
	struct vdi_queue *q;
	struct vdi_stats st;
	int ret = -1;

	if (vdi_create(path, size, NULL) < 0 || vdi_open(path, 0, &img) < 0) {
		fprintf(stderr, "async: %s\n", vdi_errmsg());
		return -1;
	}
	if (vdi_queue_create(img, DEPTH, 0, &q) < 0) {
		fprintf(stderr, "async: %s\n", vdi_errmsg());
		vdi_close(img);
		return -1;
	}
	if (run(img, q, p, 1) == 0 && flush(q) == 0)
		ret = 0;
	/* Every request has completed here (or we are giving up, and
	 * destroy waits for what is still in flight). */
	vdi_queue_destroy(q);
	vdi_get_stats(img, &st);
	if (vdi_close(img) < 0) {
		fprintf(stderr, "async: %s\n", vdi_errmsg());
		ret = -1;
	}
	if (ret == 0)
		printf("wrote %" PRIu64 " bytes: %" PRIu64 " SQEs in %" PRIu64
		       " io_uring_enter calls, %" PRIu64 " blocks allocated, %"
		       PRIu64 " metadata writes\n", st.data_write_bytes,
		       st.sqes, st.enters, st.blocks_allocated, st.meta_writes);
	return ret;
}

static int verify_image(const char *path, struct pool *p)
{
	struct vdi_image *img;
	struct vdi_queue *q;
	int64_t bad;

	if (vdi_open(path, VDI_OPEN_RDONLY, &img) < 0) {
		fprintf(stderr, "async: %s\n", vdi_errmsg());
		return -1;
	}
	if (vdi_queue_create(img, DEPTH, 0, &q) < 0) {
		fprintf(stderr, "async: %s\n", vdi_errmsg());
		vdi_close(img);
		return -1;
	}
	p->in_flight = 0;
	bad = run(img, q, p, 0);
	vdi_queue_destroy(q);
	if (bad == 0)
		printf("verified %" PRIu64 " bytes\n", vdi_get_size(img));
	else if (bad > 0)
		fprintf(stderr, "async: %s: %" PRId64 " bytes differ from the "
			"pattern\n", path, bad);
	vdi_close(img);
	return bad == 0 ? 0 : -1;
}

/* "64M" -> 67108864; 0 when the text is not a size. */
static uint64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return 0;
	switch (*end) {
	case 'G': case 'g': v <<= 10; /* fall through */
	case 'M': case 'm': v <<= 10; /* fall through */
	case 'K': case 'k': v <<= 10; end++; break;
	default: break;
	}
	return *end ? 0 : v;
}

int main(int argc, char **argv)
{
	struct pool p;
	uint64_t size = 0;
	int verify_only = argc == 3 && strcmp(argv[1], "-v") == 0;
	int ret;

	if (!verify_only && (argc != 3 || !(size = parse_size(argv[2])))) {
		fprintf(stderr, "usage: async IMAGE SIZE\n"
				"       async -v IMAGE\n");
		return 2;
	}
	if (pool_init(&p) < 0) {
		fprintf(stderr, "async: out of memory\n");
		return 1;
	}
	if (verify_only)
		ret = verify_image(argv[2], &p);
	else
		ret = write_image(argv[1], size, &p) == 0 &&
				      verify_image(argv[1], &p) == 0
			      ? 0
			      : -1;
	free(p.slots);
	return ret == 0 ? 0 : 1;
}
