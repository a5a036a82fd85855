/* Power-cut simulation at the I/O layer.  Two hooks on the engine's fault
 * seam (engine/0-base/fault.h) log the engine's I/O: `submitted` sees every SQE
 * as it is handed to the kernel (its bytes copied then, and whether it is
 * linked after the one before it), `io` sees every completion.  One clock
 * counts both.  A write starts when it is submitted, or, linked in a
 * flush's chain, when the entry before it completes.
 *
 * For many cut points (a clock value) the file the disk could hold after a
 * power cut there is rebuilt:
 *  - the image as created;
 *  - every durable write, in completion order: one that completed before
 *    the start of an fdatasync that completed before the cut, or the one
 *    that fdatasync is linked after (it starts at that completion);
 *  - then, in a random order, every other write started before the cut
 *    (completed since the last barrier, or still in flight): each lands
 *    whole, not at all, or torn, a random subset of its 512-byte sectors.
 *    Data and metadata alike, so the disk may keep them in any order
 *    between barriers.  A sector that a durable write started after this
 *    write completed keeps the durable bytes (the page cache had the newer
 *    ones when the barrier wrote it out).
 * Not modelled: file size changes by ftruncate (the image grows by the
 * logged writes only) and writes the engine makes outside a ring.
 *
 * Each state must hold up:
 *  - vdi_check finds no corruption except a header count that differs
 *    from the map (the map and the header are separate writes), and
 *    vdi_repair(LEAKS) then leaves a clean image;
 *  - every 512-byte sector of each 4 KiB record reads as zeros or as that
 *    sector of a record written to that same offset: never another
 *    offset's data;
 *  - every record acknowledged before the last flush that completed reads
 *    back in that generation or a later one, sector by sector;
 *  - the slot rule, on the file's own header and map: every index <
 *    blocks allocated <= the block slots in the file (before the repair
 *    when the count agrees, after it always);
 *  - qemu-img check agrees (a sample of cuts; every cut with LIBVDI_LONG).
 *
 * The seed comes from LIBVDI_SEED, else from the time; it is printed at
 * the start and in every failure.  LIBVDI_LONG=1 runs 10,000 cuts. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "0-base/fault.h"
#include "util.h"
#include "vdi.h"

#define KiB 1024ull
#define MiB (1024 * KiB)
#define DISK (32 * MiB)
#define BLOCK MiB /* QEMU opens only 1 MiB blocks */
#define REC 4096
#define NREC (DISK / REC)
#define SECT 512
#define WRITES 700
#define CUTS 120
#define LONG_CUTS 10000
#define QEMU_EVERY 12 /* qemu-img check on one cut in this many */
#define MAGIC 0x6c69627664697263ull /* "libvdirc" */
#define NEVER (~0ull)

static unsigned seed;

/* ---- the log ------------------------------------------------------------- */

struct op {
	int fsync;               /* else a write */
	uint64_t off;
	size_t len;
	unsigned char *data;     /* the bytes, copied at submission */
	const void *buf;         /* the caller's buffer, to match completions */
	long pred;               /* the op this one is linked after, or -1 */
	uint64_t submit, done;   /* clock values; done NEVER until it is */
};

static struct op *ops;
static size_t nops, cap;
static uint64_t clk;
static long link_prev[2] = { -1, -1 };
static unsigned unmatched;

static struct op *new_op(void)
{
	if (nops == cap) {
		cap = cap ? cap * 2 : 1024;
		ops = realloc(ops, cap * sizeof(*ops));
	}
	memset(&ops[nops], 0, sizeof(*ops));
	return &ops[nops++];
}

static void on_submit(void *opaque, enum vdi_ring_kind kind,
		      const struct io_uring_sqe *sqe)
{
	struct op *o;
	long prev = link_prev[kind];

	(void)opaque;
	link_prev[kind] = -1;
	if (sqe->opcode != IORING_OP_WRITE && sqe->opcode != IORING_OP_WRITEV &&
	    sqe->opcode != IORING_OP_WRITE_FIXED &&
	    sqe->opcode != IORING_OP_FSYNC) {
		unmatched += prev >= 0; /* a chain this model does not know */
		return;
	}
	o = new_op();
	o->pred = prev;
	o->submit = clk++;
	o->done = NEVER;
	o->fsync = sqe->opcode == IORING_OP_FSYNC;
	if (!o->fsync) {
		o->off = sqe->off;
		if (sqe->opcode == IORING_OP_WRITEV) {
			const struct iovec *iov = (const void *)(uintptr_t)sqe->addr;
			size_t done = 0;
			unsigned i;

			for (i = 0; i < sqe->len; i++)
				o->len += iov[i].iov_len;
			o->data = malloc(o->len);
			for (i = 0; i < sqe->len; i++) {
				memcpy(o->data + done, iov[i].iov_base, iov[i].iov_len);
				done += iov[i].iov_len;
			}
			o->buf = sqe->len ? iov[0].iov_base : NULL;
		} else {
			o->len = sqe->len;
			o->buf = (const void *)(uintptr_t)sqe->addr;
			o->data = malloc(o->len);
			memcpy(o->data, o->buf, o->len);
		}
	}
	if (sqe->flags & IOSQE_IO_LINK)
		link_prev[kind] = (long)(o - ops);
}

static int on_done(void *opaque, enum vdi_io_kind kind, uint64_t off,
		   size_t len, const struct iovec *iov, int iovcnt, int res)
{
	size_t i;

	(void)opaque;
	(void)len;
	(void)iovcnt;
	if (kind == VDI_IO_FSYNC) {
		for (i = 0; i < nops; i++)
			if (ops[i].fsync && ops[i].done == NEVER)
				break;
		if (i == nops) { /* a synchronous fdatasync */
			struct op *o = new_op();

			o->fsync = 1;
			o->pred = -1;
			o->submit = clk++;
			i = (size_t)(o - ops);
		}
		ops[i].done = res == 0 ? clk++ : NEVER;
		return res;
	}
	if ((kind != VDI_IO_WRITE && kind != VDI_IO_META) || !iov)
		return res;
	for (i = 0; i < nops; i++)
		if (!ops[i].fsync && ops[i].done == NEVER && ops[i].off == off &&
		    ops[i].buf == iov[0].iov_base)
			break;
	if (i == nops || res != (int)ops[i].len) {
		unmatched++;
		return res;
	}
	ops[i].done = clk++;
	return res;
}

static const struct vdi_fault_hook recorder = { on_done, NULL, on_submit };

/* When op `i` starts: at submission, or when the op it is linked after
 * completes. */
static uint64_t start_of(size_t i)
{
	uint64_t s = ops[i].submit;

	if (ops[i].pred >= 0 && ops[ops[i].pred].done > s)
		s = ops[ops[i].pred].done;
	return s;
}

/* ---- records --------------------------------------------------------------- */

static void make_record(unsigned char *buf, uint64_t off, uint64_t gen)
{
	uint64_t h[3] = { MAGIC, off, gen };

	pattern(buf, REC, off * 1000003 + gen);
	memcpy(buf, h, sizeof(h));
}

static uint64_t max_gen[NREC];

/* The generation whose sector `k` of the record at `off` `sec` is: 0 for
 * zeros, -1 for anything else. */
static int64_t sector_gen(const unsigned char *sec, uint64_t off, unsigned k)
{
	static unsigned char want[REC];
	uint64_t g, h[3];
	size_t i;

	for (i = 0; i < SECT && !sec[i]; i++)
		;
	if (i == SECT)
		return 0;
	if (k == 0) {
		memcpy(h, sec, sizeof(h));
		if (h[0] != MAGIC || h[1] != off || !h[2] ||
		    h[2] > max_gen[off / REC])
			return -1;
		make_record(want, off, h[2]);
		return memcmp(want, sec, SECT) ? -1 : (int64_t)h[2];
	}
	for (g = max_gen[off / REC]; g > 0; g--) {
		make_record(want, off, g);
		if (!memcmp(want + k * SECT, sec, SECT))
			return (int64_t)g;
	}
	return -1;
}

/* ---- the workload ------------------------------------------------------------ */

/* acked[f][r]: generation of record r acknowledged before flush f was
 * queued; flush_done[f]: the clock when its last fdatasync completed. */
static uint64_t (*acked)[NREC];
static uint64_t *flush_done;
static unsigned nflush;

static void workload(const char *path)
{
	struct vdi_image *img;
	struct vdi_queue *q;
	struct vdi_completion c[16];
	static unsigned char bufs[16][REC];
	static uint64_t done_gen[NREC];
	uint64_t slot_rec[16], busy_rec[16];
	unsigned i, k, inflight = 0, free_slots[16], nfree = 16;
	unsigned next_flush = 10;

	acked = calloc(WRITES, sizeof(*acked));
	flush_done = calloc(WRITES, sizeof(*flush_done));
	for (i = 0; i < 16; i++) {
		free_slots[i] = i;
		busy_rec[i] = NEVER;
	}
	cr_assert_eq(vdi_open(path, 0, &img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_queue_create(img, 16, 0, &q), 0);
	vdi_fault_set(&recorder);
	for (i = 0; i < WRITES; i++) {
		/* A window that grows over the run, so that blocks are
		 * allocated all along it, not only at its start. */
		uint64_t win = 64 + (uint64_t)i * NREC / WRITES, r;
		unsigned s;
		int clash;

		while (!nfree || inflight >= 1 + (unsigned)rand() % 12) {
			int n = vdi_queue_reap(q, c, 1, 16, NULL), j;

			cr_assert_gt(n, 0);
			for (j = 0; j < n; j++) {
				unsigned slot = (unsigned)(uintptr_t)c[j].tag;

				cr_assert_eq(c[j].res, REC);
				done_gen[slot_rec[slot] / 1000000] =
					slot_rec[slot] % 1000000;
				busy_rec[slot] = NEVER;
				free_slots[nfree++] = slot;
				inflight--;
			}
		}
		/* No two writes in flight to one record: their order would
		 * be undefined. */
		do {
			r = (uint64_t)rand() % (win < NREC ? win : NREC);
			for (clash = 0, k = 0; k < 16; k++)
				clash |= busy_rec[k] == r;
		} while (clash);
		s = free_slots[--nfree];
		max_gen[r]++;
		slot_rec[s] = r * 1000000 + max_gen[r];
		busy_rec[s] = r;
		make_record(bufs[s], r * REC, max_gen[r]);
		cr_assert_eq(vdi_queue_write(q, bufs[s], REC, r * REC,
					     (void *)(uintptr_t)s), 0);
		inflight++;
		vdi_queue_submit(q);
		if (i == next_flush) {
			struct vdi_completion fc;
			uint64_t last = 0;
			size_t j;

			/* Drain, so that "acknowledged before the flush" is
			 * exactly what the caller has seen complete. */
			while (inflight) {
				int n = vdi_queue_reap(q, c, 1, 16, NULL), m;

				cr_assert_gt(n, 0);
				for (m = 0; m < n; m++) {
					unsigned slot = (unsigned)(uintptr_t)c[m].tag;

					done_gen[slot_rec[slot] / 1000000] =
						slot_rec[slot] % 1000000;
					busy_rec[slot] = NEVER;
					free_slots[nfree++] = slot;
					inflight--;
				}
			}
			memcpy(acked[nflush], done_gen, sizeof(done_gen));
			cr_assert_eq(vdi_queue_flush(q, (void *)99), 0);
			vdi_queue_submit(q);
			cr_assert_eq(vdi_queue_reap(q, &fc, 1, 1, NULL), 1);
			cr_assert_eq(fc.res, 0);
			for (j = 0; j < nops; j++)
				if (ops[j].fsync && ops[j].done != NEVER &&
				    ops[j].done > last)
					last = ops[j].done;
			cr_assert(last, "the flush made no fdatasync");
			flush_done[nflush++] = last;
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
	/* Closing writes metadata too, outside the log: the cut points below
	 * are all inside the recorded run. */
	vdi_close(img);
	cr_assert_eq(unmatched, 0, "%u completions or links the log could "
		     "not place", unmatched);
}

/* ---- rebuild and check ------------------------------------------------------- */

static unsigned char *base;
static size_t base_len;
static uint64_t *durable_start; /* per sector of the file */
static size_t nsect;

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

static void put(int fd, const struct op *o, size_t from, size_t len)
{
	cr_assert_eq(pwrite(fd, o->data + from, len, (off_t)(o->off + from)),
		     (ssize_t)len);
}

static int by_done(const void *a, const void *b)
{
	uint64_t x = ops[*(const size_t *)a].done, y = ops[*(const size_t *)b].done;

	return x < y ? -1 : x > y;
}

/* Counts over the whole run, for the log. */
static unsigned long n_inflight, n_torn, n_dropped, n_whole;

/* The file after a cut at clock `cut`. */
static void rebuild(const char *out, uint64_t cut)
{
	size_t *durable = malloc(sizeof(size_t) * nops);
	size_t *maybe = malloc(sizeof(size_t) * nops);
	size_t nd = 0, nm = 0, i, k;
	uint64_t barrier = 0; /* start of the last fsync done before the cut */
	bool synced = false;
	int fd;

	for (i = 0; i < nops; i++)
		if (ops[i].fsync && ops[i].done < cut && start_of(i) >= barrier) {
			barrier = start_of(i);
			synced = true;
		}
	for (i = 0; i < nops; i++) {
		if (ops[i].fsync || start_of(i) >= cut)
			continue;
		/* Durable when it completed before the fsync started, or,
		 * as the entry the fsync is linked after, at that very clock
		 * value: a linked fsync starts when its predecessor
		 * completes (the map write before a flush's last fsync). */
		if (synced && ops[i].done <= barrier)
			durable[nd++] = i;
		else
			maybe[nm++] = i;
	}
	qsort(durable, nd, sizeof(*durable), by_done);
	unlink(out);
	fd = open(out, O_RDWR | O_CREAT, 0644);
	cr_assert(fd >= 0);
	cr_assert_eq(pwrite(fd, base, base_len, 0), (ssize_t)base_len);
	for (k = 0; k < nsect; k++)
		durable_start[k] = 0;
	for (i = 0; i < nd; i++) {
		const struct op *o = &ops[durable[i]];

		put(fd, o, 0, o->len);
		for (k = o->off / SECT; k < (o->off + o->len) / SECT && k < nsect; k++)
			if (start_of(durable[i]) > durable_start[k])
				durable_start[k] = start_of(durable[i]);
	}
	/* What the disk happened to keep of the rest, in a random order. */
	for (i = nm; i > 1; i--) {
		size_t j = (size_t)rand() % i, t = maybe[i - 1];

		maybe[i - 1] = maybe[j];
		maybe[j] = t;
	}
	for (i = 0; i < nm; i++) {
		const struct op *o = &ops[maybe[i]];
		uint64_t done = o->done < cut ? o->done : NEVER;
		int how = rand() % 4; /* 0 lost, 1 whole, 2-3 torn */

		n_inflight += done == NEVER;
		n_dropped += how == 0;
		n_whole += how == 1;
		n_torn += how >= 2;
		if (!how)
			continue;
		for (k = 0; k < o->len / SECT; k++) {
			size_t sec = o->off / SECT + k;

			if (how >= 2 && rand() % 2)
				continue;
			if (sec < nsect && done < durable_start[sec])
				continue; /* the barrier wrote newer bytes */
			put(fd, o, k * SECT, SECT);
		}
	}
	close(fd);
	free(durable);
	free(maybe);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* The slot rule, on the file itself: every index < blocks allocated <=
 * the block slots in the file (a partial last one counts).  0 when it
 * holds; else a message in `why`. */
static int slot_rule(const char *path, char *why, size_t len)
{
	unsigned char hdr[512], *map;
	uint32_t blocks, alloc, bsize, bmap, data, i, max = 0, any = 0;
	struct stat st;
	uint64_t slots;
	int fd = open(path, O_RDONLY), bad = 0;

	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
	fstat(fd, &st);
	bmap = get32(hdr + 0x154);
	data = get32(hdr + 0x158);
	bsize = get32(hdr + 0x178);
	blocks = get32(hdr + 0x180);
	alloc = get32(hdr + 0x184);
	map = malloc((size_t)blocks * 4);
	cr_assert_eq(pread(fd, map, (size_t)blocks * 4, bmap), (ssize_t)blocks * 4);
	close(fd);
	for (i = 0; i < blocks; i++) {
		uint32_t e = get32(map + 4 * i);

		if (e >= 0xFFFFFFFEu)
			continue;
		any = 1;
		if (e > max)
			max = e;
	}
	free(map);
	slots = (uint64_t)st.st_size > data
			? ((uint64_t)st.st_size - data + bsize - 1) / bsize : 0;
	if (any && max >= alloc)
		bad = snprintf(why, len, "index %u >= blocks allocated %u", max, alloc);
	else if (alloc > slots)
		bad = snprintf(why, len, "blocks allocated %u > %llu slots in the "
			       "file", alloc, (unsigned long long)slots);
	return bad;
}

static int qemu_check_ok(const char *path, int mismatch_allowed)
{
	if (sh("qemu-img check -q %s >/dev/null 2>&1", path) == 0)
		return 1;
	/* With a lagging count, QEMU's only complaint may be that one. */
	return mismatch_allowed &&
	       sh("qemu-img check %s 2>&1 | grep ERROR | "
		  "grep -qv 'allocated blocks mismatch'", path) != 0;
}

static unsigned lagged, repaired;

static void check_state(const char *path, uint64_t cut, unsigned n, int qemu)
{
	struct vdi_image *img;
	struct vdi_check_result cr;
	struct vdi_repair_result rr;
	static unsigned char disk[DISK];
	const uint64_t *need = NULL;
	static char where[256];
	char why[160];
	unsigned f, k;
	uint64_t r;

	snprintf(where, sizeof(where), "seed %u, cut %u at clock %llu (state "
		 "kept in %s)", seed, n, (unsigned long long)cut, path);
	for (f = 0; f < nflush; f++)
		if (flush_done[f] < cut)
			need = acked[f];
	cr_assert_eq(vdi_open(path, VDI_OPEN_RDONLY, &img), 0, "%s: %s", where, vdi_errmsg());
	cr_assert_eq(vdi_check(img, &cr, NULL, NULL), 0, "%s: %s", where, vdi_errmsg());
	/* A map entry may outlive the extension of the file to its slot
	 * (the model does not replay ftruncate): that block reads zeros past
	 * the end, and check reports it as short. */
	cr_assert_eq(cr.corruptions - cr.allocated_mismatch - cr.short_blocks, 0,
		     "%s: vdi_check: %llu corruptions (%u short, %u past the "
		     "count, %u past the end of the file, %u duplicates, %u out "
		     "of range)", where, (unsigned long long)cr.corruptions,
		     cr.short_blocks, cr.past_count, cr.past_eof, cr.duplicates,
		     cr.out_of_range);
	cr_assert_eq(vdi_pread(img, disk, DISK, 0), (ssize_t)DISK, "%s: %s", where,
		     vdi_errmsg());
	vdi_close(img);
	for (r = 0; r < NREC; r++) {
		static const unsigned char zero[REC];
		static unsigned char want[REC];
		int64_t whole = -1;

		/* Most records are whole: zeros, or the generation their
		 * first sector names; only the others go sector by sector. */
		if (!memcmp(disk + r * REC, zero, REC)) {
			whole = 0;
		} else if ((whole = sector_gen(disk + r * REC, r * REC, 0)) > 0) {
			make_record(want, r * REC, (uint64_t)whole);
			if (memcmp(want, disk + r * REC, REC))
				whole = -1;
		}
		for (k = 0; k < REC / SECT; k++) {
			int64_t g = whole >= 0 ? whole
					       : sector_gen(disk + r * REC + k * SECT,
							    r * REC, k);

			cr_assert_geq(g, 0, "%s: sector %u of the record at %llu "
				      "holds foreign data", where, k,
				      (unsigned long long)(r * REC));
			if (need)
				cr_assert_geq((uint64_t)g, need[r],
					      "%s: sector %u of the record at "
					      "%llu: generation %llu was "
					      "flushed, found %lld", where, k,
					      (unsigned long long)(r * REC),
					      (unsigned long long)need[r],
					      (long long)g);
		}
	}
	if (!cr.allocated_mismatch)
		cr_assert_eq(slot_rule(path, why, sizeof(why)), 0, "%s: slot rule: %s", where, why);
	if (qemu)
		cr_assert(qemu_check_ok(path, cr.allocated_mismatch),
			  "%s: qemu-img check disagrees (vdi_check: %s)", where,
			  cr.allocated_mismatch ? "count lags" : "clean");
	lagged += cr.allocated_mismatch != 0;
	if (cr.allocated_mismatch || cr.leaks) {
		cr_assert_geq(vdi_repair(path, VDI_REPAIR_LEAKS, &rr, NULL, NULL), 0,
			      "%s: %s", where, vdi_errmsg());
		cr_assert_eq(vdi_open(path, VDI_OPEN_RDONLY, &img), 0, "%s: %s", where,
			     vdi_errmsg());
		cr_assert_eq(vdi_check(img, &cr, NULL, NULL), 0);
		vdi_close(img);
		/* Leak repair does not extend the file: a block cut short
		 * (above) stays so. */
		cr_assert_eq(cr.corruptions - cr.short_blocks, 0,
			     "%s: corruption after the repair (%u past the "
			     "count, %u past the end of the file, %u "
			     "duplicates, %u out of range)", where, cr.past_count,
			     cr.past_eof, cr.duplicates, cr.out_of_range);
		cr_assert_eq(slot_rule(path, why, sizeof(why)), 0,
			     "%s: slot rule after the repair: %s", where, why);
		if (qemu)
			cr_assert(qemu_check_ok(path, 0),
				  "%s: qemu-img check fails after the repair", where);
		repaired++;
	}
}

Test(powercut, random_cuts, .timeout = 3000)
{
	const char *p = tpath("pc.vdi"), *out = tpath("pc-cut.vdi");
	static char shm[64];
	const char *env = getenv("LIBVDI_SEED"), *lng = getenv("LIBVDI_LONG");
	struct vdi_create_opts o = { .block_size = BLOCK };
	unsigned i, cuts = lng && !strcmp(lng, "1") ? LONG_CUTS : CUTS;
	int qemu = have_qemu("qemu-img"), every = cuts == LONG_CUTS ? 1 : QEMU_EVERY;

	seed = env ? (unsigned)strtoul(env, NULL, 0)
		   : (unsigned)time(NULL) ^ (unsigned)getpid() << 16;
	fprintf(stderr, "powercut: seed %u (LIBVDI_SEED=%u repeats this run), "
		"%u cuts\n", seed, seed, cuts);
	srand(seed);
	/* The states are scratch files, repaired (and so fsynced) often: in
	 * memory where there is a tmpfs, which makes the run several times
	 * faster on a busy disk. */
	if (access("/dev/shm", W_OK) == 0) {
		snprintf(shm, sizeof(shm), "/dev/shm/libvdi-powercut-%d.vdi",
			 (int)getpid());
		out = shm;
	}
	unlink(p);
	cr_assert_eq(vdi_create(p, DISK, &o), 0);
	load_base(p);
	workload(p);
	cr_assert_gt(nflush, 5);
	nsect = (base_len + DISK + BLOCK) / SECT;
	durable_start = calloc(nsect, sizeof(*durable_start));
	for (i = 0; i < cuts; i++) {
		uint64_t cut = (uint64_t)rand() % (clk + 1);

		rebuild(out, cut);
		check_state(out, cut, i, qemu && i % every == 0);
		if ((i + 1) % 1000 == 0)
			fprintf(stderr, "powercut: seed %u: %u cuts passed\n",
				seed, i + 1);
	}
	unlink(out);
	fprintf(stderr, "powercut: seed %u: %u cuts over %zu logged I/Os and "
		"%u flushes; writes left unsure by a cut: %lu in flight, %lu "
		"lost, %lu whole, %lu torn; %u states had a lagging count, %u "
		"were repaired%s\n", seed, cuts, nops, nflush, n_inflight,
		n_dropped, n_whole, n_torn, lagged, repaired,
		qemu ? "" : "; qemu-img not found, not run");
}

QEMU_ORACLE_TEST(powercut)
