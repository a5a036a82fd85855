/* The verifier of the full-disk test: `fulldisk verify`, see fulldisk.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fulldisk.h"
#include "vdi.h"

/* One write or discard of one record, as the log tells it. */
struct event {
	uint64_t gen;
	int zero;     /* a discard: reads as zeros */
	int failed;
	struct event *next; /* the record's events, newest first */
};

struct state {
	uint64_t gen;
	int zero;
};

int fulldisk_verify(int argc, char **argv)
{
	struct state *durable, *acked, *snap;
	struct event **events;
	struct vdi_image *img;
	unsigned char *buf;
	uint64_t nrec, zeros = 0, current = 0, newer = 0, torn = 0;
	unsigned errors = 0;
	char line[256];
	FILE *log;
	int ret, snap_id = -1;

	if (argc != 4)
		fail("usage: fulldisk verify IMAGE LOG");
	ret = vdi_open(argv[2], VDI_OPEN_RDONLY, &img);
	if (ret < 0)
		fail("%s", vdi_errmsg());
	log = fopen(argv[3], "r");
	if (!log)
		fail("%s: %s", argv[3], strerror(errno));
	nrec = vdi_get_size(img) / REC;
	durable = calloc(nrec, sizeof(*durable));
	acked = calloc(nrec, sizeof(*acked));
	snap = calloc(nrec, sizeof(*snap));
	events = calloc(nrec, sizeof(*events));
	buf = malloc(REC);
	if (!durable || !acked || !snap || !events || !buf)
		fail("out of memory");
	for (uint64_t i = 0; i < nrec; i++)
		durable[i].zero = acked[i].zero = 1;

	while (fgets(line, sizeof(line), log)) {
		uint64_t idx, n, gen;
		int64_t res;
		int id;
		char k;

		if (sscanf(line, "%c %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNd64,
			   &k, &idx, &n, &gen, &res) == 5 && (k == 'W' || k == 'Z')) {
			if (idx + n > nrec)
				fail("verify: the log names record %" PRIu64
				     ", past the disk", idx + n - 1);
			for (uint64_t i = idx; i < idx + n; i++) {
				struct event *e = malloc(sizeof(*e));

				if (!e)
					fail("out of memory");
				*e = (struct event){ gen, k == 'Z', res != 0,
						     events[i] };
				events[i] = e;
				if (res == 0)
					acked[i] = (struct state){ gen, k == 'Z' };
			}
		} else if (sscanf(line, "Q %d", &id) == 1) {
			/* One flush at a time in flight: one snapshot. */
			memcpy(snap, acked, nrec * sizeof(*snap));
			snap_id = id;
		} else if (sscanf(line, "F %d %" SCNd64, &id, &res) == 2) {
			if (id != snap_id)
				fail("verify: flush %d completed, %d was queued",
				     id, snap_id);
			for (uint64_t i = 0; res == 0 && i < nrec; i++)
				if (snap[i].gen > durable[i].gen)
					durable[i] = snap[i];
		} else {
			fail("verify: %s: cannot parse '%s'", argv[3], line);
		}
	}
	fclose(log);

	for (uint64_t i = 0; i < nrec; i++) {
		struct rec_head hd;
		const struct event *e;
		int allowed = 0, failed_after = 0, is_zero;
		ssize_t n = vdi_pread(img, buf, REC, i * REC);

		if (n != (ssize_t)REC)
			fail("verify: reading %" PRIu64 ": %s", i * REC,
			     vdi_errmsg());
		memcpy(&hd, buf, sizeof(hd));
		is_zero = buf[0] == 0 && !memcmp(buf, buf + 1, REC - 1);
		for (e = events[i]; e && e->gen > durable[i].gen; e = e->next)
			failed_after |= e->failed;
		if (is_zero) {
			allowed = durable[i].zero;
			for (e = events[i]; e && e->gen > durable[i].gen; e = e->next)
				allowed |= e->zero;
			zeros++;
		} else if (hd.magic == MAGIC && hd.sum == checksum(buf)) {
			if (hd.offset != i * REC) {
				fprintf(stderr, "verify: offset %" PRIu64 " holds "
					"the record of offset %" PRIu64 "\n",
					i * REC, hd.offset);
				errors++;
				continue;
			}
			allowed = !durable[i].zero && hd.gen == durable[i].gen;
			current += allowed;
			for (e = events[i]; !allowed && e && e->gen > durable[i].gen;
			     e = e->next)
				if (!e->zero && e->gen == hd.gen)
					allowed = 1, newer++;
		} else if (failed_after) {
			/* A failed write may leave part of its data. */
			allowed = 1;
			torn++;
		}
		if (!allowed) {
			fprintf(stderr, "verify: offset %" PRIu64 " reads as %s "
				"(generation %" PRIu64 "), but the last flushed "
				"write there was %s %" PRIu64 "\n", i * REC,
				is_zero ? "zeros" : hd.magic == MAGIC
					? "a record" : "garbage",
				is_zero ? 0 : hd.gen,
				durable[i].zero ? "zeros" : "generation",
				durable[i].gen);
			errors++;
		}
	}
	printf("# verify: %" PRIu64 " pieces of 4 KiB: %" PRIu64 " zeros, %"
	       PRIu64 " as flushed, %" PRIu64 " newer, %" PRIu64 " torn by a "
	       "failed write; %u wrong\n", nrec, zeros, current, newer, torn,
	       errors);
	for (uint64_t i = 0; i < nrec; i++)
		while (events[i]) {
			struct event *e = events[i];

			events[i] = e->next;
			free(e);
		}
	free(events);
	free(durable);
	free(acked);
	free(snap);
	free(buf);
	vdi_close(img);
	return errors ? 1 : 0;
}
