/* The full-disk test's program: the record format, one failed
 * allocation (run_one_failed()), and main().  See fulldisk.h. */
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

void fail(const char *fmt, ...)
{
	va_list ap;

	fputs("fulldisk: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

uint64_t checksum(const unsigned char *rec)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < REC; i++)
		if (i < 24 || i >= 32) /* not the checksum itself */
			h = (h ^ rec[i]) * 0x100000001b3ull;
	return h;
}

void make_record(unsigned char *rec, uint64_t off, uint64_t gen)
{
	struct rec_head hd = { MAGIC, off, gen, 0 };
	uint64_t x = gen * 0x9E3779B97F4A7C15ull ^ off;

	for (size_t i = sizeof(hd); i < REC; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		rec[i] = (unsigned char)(x >> 56);
	}
	memcpy(rec, &hd, sizeof(hd));
	hd.sum = checksum(rec);
	memcpy(rec, &hd, sizeof(hd));
}

/* ---- One failed allocation and the flush after it ------------------------ */

/* IMAGE: new, 1 MiB blocks, data from 2 MiB.  With the file limited to
 * 4 MiB, block 0 and block 1 fit and block 2 does not.  The flush after
 * block 2's write failed covers only writes that were stored (block 1, an
 * overwrite in block 0): it should succeed, and block 1 read back after
 * close.  Exit 0 if so. */
static int run_one_failed(int argc, char **argv)
{
	static const uint64_t MiB = 1 << 20;
	struct rlimit rl = { 4 * MiB, 4 * MiB };
	unsigned char rec[REC], got[REC];
	struct vdi_image *img;
	int64_t w0, w1, w2, w3;
	int flush, closed, ret;

	if (argc != 3)
		fail("usage: fulldisk one-failed IMAGE");
	signal(SIGXFSZ, SIG_IGN);
	if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
		fail("setrlimit(RLIMIT_FSIZE): %s", strerror(errno));
	alarm(60);
	if (vdi_open(argv[2], 0, &img) < 0)
		fail("%s", vdi_errmsg());
	make_record(rec, 0, 1);
	w0 = vdi_pwrite(img, rec, REC, 0);
	if (w0 != REC || vdi_flush(img) < 0)
		fail("one-failed: block 0: %s", vdi_errmsg());
	make_record(rec, MiB, 2);
	w1 = vdi_pwrite(img, rec, REC, MiB);
	make_record(rec, 2 * MiB, 3);
	w2 = vdi_pwrite(img, rec, REC, 2 * MiB);
	make_record(rec, REC, 4);
	w3 = vdi_pwrite(img, rec, REC, REC);
	if (w1 != REC || w2 != -EFBIG || w3 != REC)
		fail("one-failed: writes to blocks 1, 2, 0 returned %" PRId64
		     ", %" PRId64 ", %" PRId64 "; expected %u, -EFBIG, %u",
		     w1, w2, w3, REC, REC);
	flush = vdi_flush(img);
	printf("# flush after the failed write: %s\n",
	       flush ? vdi_errmsg() : "ok");
	closed = vdi_close(img);
	printf("# vdi_close: %s\n", closed ? vdi_errmsg() : "ok");
	if (vdi_open(argv[2], VDI_OPEN_RDONLY, &img) < 0)
		fail("%s", vdi_errmsg());
	make_record(rec, MiB, 2);
	ret = vdi_pread(img, got, REC, MiB) == REC && !memcmp(got, rec, REC);
	printf("# block 1 after reopening: %s\n", ret ? "as written" : "lost");
	vdi_close(img);
	return flush == 0 && closed == 0 && ret ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "write"))
		return fulldisk_write(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "verify"))
		return fulldisk_verify(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "one-failed"))
		return run_one_failed(argc, argv);
	fprintf(stderr, "usage: fulldisk write sync|async IMAGE LOG "
		"[--fsize=BYTES] --expect=EFBIG|ENOSPC\n"
		"       fulldisk verify IMAGE LOG\n"
		"       fulldisk one-failed IMAGE\n");
	return 2;
}
