/* Power-cut simulation at the I/O layer.  A recording hook on the engine's
 * fault seam (engine/0-base/fault.h) logs every write the engine completes, with
 * its bytes, and every fsync, in the order the engine sees them.  For many
 * cut points the on-disk state after a power cut is rebuilt: the image as
 * created, every write before the last fsync that completed before the
 * cut, then a random subset of the later writes in a random order (the
 * disk may have kept any of them, reordered).  Each state must hold up:
 *  - vdi_check finds no corruption other than a header count that lags the
 *    map (two sectors cannot be written at once), which repair then fixes;
 *  - every 4 KiB piece reads as zeros or as a record naming that same
 *    offset, never another offset's data;
 *  - every record acknowledged before the last completed flush is there,
 *    in that generation or a later one. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "0-base/fault.h"
#include "util.h"
#include "vdi.h"

#define KiB 1024ull
#define DISK (4096 * KiB)
#define BLOCK (128 * KiB)
#define REC 4096
#define NREC (DISK / REC)
#define WRITES 700
#define CUTS 150
#define MAGIC 0x6c69627664697263ull /* "libvdirc" */

/* ---- the log ------------------------------------------------------------- */

struct event {
	int fsync;      /* a barrier */
	uint64_t off;
	size_t len;
	unsigned char *data;
};

static struct event *events;
static size_t nevents, cap;

static int record(void *opaque, enum vdi_io_kind kind, uint64_t off,
		  size_t len, const struct iovec *iov, int iovcnt, int res)
{
	struct event *e;
	size_t done = 0;
	int i;

	(void)opaque;
	(void)len;
	if (res < 0 || (kind != VDI_IO_FSYNC && kind != VDI_IO_WRITE &&
			kind != VDI_IO_META))
		return res;
	if (kind != VDI_IO_FSYNC && (!iov || res == 0))
		return res; /* a punch: the workload makes none */
	if (nevents == cap) {
		cap = cap ? cap * 2 : 1024;
		events = realloc(events, cap * sizeof(*events));
	}
	e = &events[nevents++];
	memset(e, 0, sizeof(*e));
	e->fsync = kind == VDI_IO_FSYNC;
	if (e->fsync)
		return res;
	e->off = off;
	e->len = (size_t)res;
	e->data = malloc(e->len);
	for (i = 0; i < iovcnt && done < e->len; i++) {
		size_t n = iov[i].iov_len < e->len - done ? iov[i].iov_len
							  : e->len - done;

		memcpy(e->data + done, iov[i].iov_base, n);
		done += n;
	}
	return res;
}

static const struct vdi_fault_hook recorder = { record, NULL };

/* ---- records --------------------------------------------------------------- */

static void make_record(unsigned char *buf, uint64_t off, uint64_t gen)
{
	uint64_t h[3] = { MAGIC, off, gen };

	pattern(buf, REC, off * 1000003 + gen);
	memcpy(buf, h, sizeof(h));
}

/* 0: zeros; the generation of a valid record for `off`; -1: bad. */
static int64_t read_record(const unsigned char *buf, uint64_t off)
{
	unsigned char want[REC];
	uint64_t h[3];
	size_t i;

	for (i = 0; i < REC && !buf[i]; i++)
		;
	if (i == REC)
		return 0;
	memcpy(h, buf, sizeof(h));
	if (h[0] != MAGIC || h[1] != off || h[2] == 0)
		return -1;
	make_record(want, off, h[2]);
	return memcmp(want, buf, REC) ? -1 : (int64_t)h[2];
}

/* ---- the workload ------------------------------------------------------------ */

/* acked[f][r]: generation of record r acknowledged before flush f was
 * queued; flush_event[f]: index in the log of that flush's fsync. */
static uint64_t (*acked)[NREC];
static size_t *flush_event;
static unsigned nflush;

static void workload(const char *path)
{
	struct vdi_image *img;
	struct vdi_queue *q;
	struct vdi_completion c[16];
	static unsigned char bufs[16][REC];
	uint64_t gen[NREC] = { 0 }, done_gen[NREC] = { 0 };
	uint64_t slot_rec[16];
	unsigned i, inflight = 0, free_slots[16], nfree = 16;
	unsigned next_flush = 10;

	acked = calloc(WRITES, sizeof(*acked));
	flush_event = calloc(WRITES, sizeof(*flush_event));
	for (i = 0; i < 16; i++)
		free_slots[i] = i;
	cr_assert_eq(vdi_open(path, 0, &img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_queue_create(img, 16, 0, &q), 0);
	vdi_fault_set(&recorder);
	for (i = 0; i < WRITES; i++) {
		uint64_t r = (uint64_t)rand() % NREC;
		unsigned s;

		while (!nfree || inflight >= 1 + (unsigned)rand() % 12) {
			int n = vdi_queue_reap(q, c, 1, 16, NULL), j;

			cr_assert_gt(n, 0);
			for (j = 0; j < n; j++) {
				unsigned slot = (unsigned)(uintptr_t)c[j].tag;

				if (slot == 99)
					continue;
				cr_assert_eq(c[j].res, REC);
				done_gen[slot_rec[slot] / 1000000] =
					slot_rec[slot] % 1000000;
				free_slots[nfree++] = slot;
				inflight--;
			}
		}
		s = free_slots[--nfree];
		gen[r]++;
		slot_rec[s] = r * 1000000 + gen[r];
		make_record(bufs[s], r * REC, gen[r]);
		cr_assert_eq(vdi_queue_write(q, bufs[s], REC, r * REC,
					     (void *)(uintptr_t)s), 0);
		inflight++;
		vdi_queue_submit(q);
		if (i == next_flush) {
			struct vdi_completion fc;

			/* Drain, so that "acknowledged before the flush" is
			 * exactly what the caller has seen complete. */
			while (inflight) {
				int n = vdi_queue_reap(q, c, 1, 16, NULL), j;

				for (j = 0; j < n; j++) {
					unsigned slot = (unsigned)(uintptr_t)c[j].tag;

					done_gen[slot_rec[slot] / 1000000] =
						slot_rec[slot] % 1000000;
					free_slots[nfree++] = slot;
					inflight--;
				}
			}
			memcpy(acked[nflush], done_gen, sizeof(done_gen));
			cr_assert_eq(vdi_queue_flush(q, (void *)99), 0);
			vdi_queue_submit(q);
			cr_assert_eq(vdi_queue_reap(q, &fc, 1, 1, NULL), 1);
			cr_assert_eq(fc.res, 0);
			/* The flush's fsync is the last event logged. */
			cr_assert(nevents && events[nevents - 1].fsync);
			flush_event[nflush++] = nevents - 1;
			next_flush = i + 5 + (unsigned)rand() % 60;
		}
	}
	while (inflight) {
		int n = vdi_queue_reap(q, c, 1, 16, NULL);

		cr_assert_gt(n, 0);
		inflight -= (unsigned)n;
	}
	vdi_queue_destroy(q);
	vdi_fault_set(NULL);
	/* Closing writes metadata too, but the cut points below are all
	 * inside the recorded run. */
	vdi_close(img);
}

/* ---- rebuild and check ------------------------------------------------------- */

static unsigned char *base;
static size_t base_len;

static void load_base(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY);

	cr_assert(fd >= 0);
	fstat(fd, &st);
	base_len = (size_t)st.st_size;
	base = malloc(base_len);
	cr_assert_eq(pread(fd, base, base_len, 0), (ssize_t)base_len);
	close(fd);
}

static void apply(int fd, const struct event *e)
{
	cr_assert_eq(pwrite(fd, e->data, e->len, (off_t)e->off), (ssize_t)e->len);
}

/* The state after a cut just before log entry `cut`. */
static void rebuild(const char *out, size_t cut, size_t *barrier_out)
{
	size_t barrier = 0, i, n = 0;
	size_t *later = malloc(sizeof(size_t) * (cut + 1));
	int fd;

	for (i = 0; i < cut; i++)
		if (events[i].fsync)
			barrier = i + 1;
	unlink(out);
	fd = open(out, O_RDWR | O_CREAT, 0644);
	cr_assert(fd >= 0);
	cr_assert_eq(pwrite(fd, base, base_len, 0), (ssize_t)base_len);
	for (i = 0; i < barrier; i++)
		if (!events[i].fsync)
			apply(fd, &events[i]);
	for (i = barrier; i < cut; i++)
		if (!events[i].fsync && rand() % 2)
			later[n++] = i;
	/* Shuffle what the disk happened to keep. */
	for (i = n; i > 1; i--) {
		size_t j = (size_t)rand() % i, t = later[i - 1];

		later[i - 1] = later[j];
		later[j] = t;
	}
	for (i = 0; i < n; i++)
		apply(fd, &events[later[i]]);
	close(fd);
	free(later);
	*barrier_out = barrier;
}

static void check_state(const char *path, size_t barrier)
{
	struct vdi_image *img;
	struct vdi_check_result cr;
	struct vdi_repair_result rr;
	static unsigned char disk[DISK];
	const uint64_t *need = NULL;
	unsigned f;
	uint64_t r;

	for (f = 0; f < nflush; f++)
		if (flush_event[f] < barrier)
			need = acked[f];
	cr_assert_eq(vdi_open(path, VDI_OPEN_RDONLY, &img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_check(img, &cr, NULL, NULL), 0);
	/* A map entry may outlive the extension of the file to its slot
	 * (the model does not replay ftruncate): that block reads zeros past
	 * the end, and check reports it as short. */
	cr_assert_eq(cr.corruptions - cr.allocated_mismatch - cr.short_blocks, 0,
		     "corruption after a power cut (short %u, past count %u, dup %u, eof %u)", cr.short_blocks, cr.past_count, cr.duplicates, cr.past_eof);
	cr_assert_eq(vdi_pread(img, disk, DISK, 0), (ssize_t)DISK);
	vdi_close(img);
	for (r = 0; r < NREC; r++) {
		int64_t g = read_record(disk + r * REC, r * REC);

		cr_assert_geq(g, 0, "4k piece %llu holds foreign data",
			      (unsigned long long)r);
		if (need)
			cr_assert_geq((uint64_t)g, need[r],
				      "record %llu generation %llu was flushed, "
				      "found %lld", (unsigned long long)r,
				      (unsigned long long)need[r], (long long)g);
	}
	if (cr.allocated_mismatch) {
		cr_assert_geq(vdi_repair(path, VDI_REPAIR_LEAKS, &rr, NULL, NULL), 0,
			      "%s", vdi_errmsg());
		cr_assert_eq(vdi_open(path, VDI_OPEN_RDONLY, &img), 0);
		cr_assert_eq(vdi_check(img, &cr, NULL, NULL), 0);
		cr_assert_eq(cr.corruptions, 0, "repair fixed the count");
		vdi_close(img);
	}
}

Test(powercut, random_cuts)
{
	const char *p = tpath("pc.vdi"), *out = tpath("pc-cut.vdi");
	struct vdi_create_opts o = { .block_size = BLOCK };
	unsigned i, lagged = 0;

	srand(getenv("LIBVDI_SEED") ? (unsigned)atoi(getenv("LIBVDI_SEED")) : 1234);
	unlink(p);
	cr_assert_eq(vdi_create(p, DISK, &o), 0);
	load_base(p);
	workload(p);
	cr_assert_gt(nflush, 5);
	for (i = 0; i < CUTS; i++) {
		size_t cut = (size_t)rand() % (nevents + 1), barrier;
		struct vdi_image *img;
		struct vdi_check_result cr;

		rebuild(out, cut, &barrier);
		cr_assert_eq(vdi_open(out, VDI_OPEN_RDONLY, &img), 0);
		vdi_check(img, &cr, NULL, NULL);
		vdi_close(img);
		lagged += cr.allocated_mismatch;
		check_state(out, barrier);
	}
	cr_log_info("%u cuts over %zu logged writes and barriers; %u left the "
		    "header count lagging (repaired)", CUTS, nevents, lagged);
}

QEMU_ORACLE_TEST(powercut)
