/* Threads sharing one image, each with its own queue: interleaved 4 KiB
 * writes into the same blocks (allocation races), flushes from every
 * thread, synchronous reads in between; then every byte is checked.  Built
 * in the normal suite; docs/reliability.md says how to run it under
 * ThreadSanitizer.  With `qemu-layout`, the image is made by qemu-img (its
 * data area is not on a 4 KiB boundary) and opened with O_DIRECT: every
 * piece then shares file-system blocks with its neighbours, written by the
 * other threads, and writes into new blocks are widened (docs/design.md,
 * "Widening writes into new slots").  Usage: threads IMAGE [qemu-layout] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <vdi.h>

#define MiB (1ull << 20)
#define THREADS 4
#define WRITES 512
#define PIECE 4096

static struct vdi_image *img;

static void fill(unsigned char *b, uint64_t off)
{
	for (int i = 0; i < PIECE; i++)
		b[i] = (unsigned char)(off * 31 + (uint64_t)i);
}

static void die(const char *what)
{
	fprintf(stderr, "threads: %s: %s\n", what, vdi_errmsg());
	exit(1);
}

static void *worker(void *arg)
{
	int id = (int)(long)arg, inflight = 0;
	struct vdi_completion c[16];
	unsigned char (*buf)[PIECE] = malloc(16 * PIECE), r[PIECE];
	struct vdi_queue *q;

	if (!buf || vdi_queue_create(img, 16, 0, &q) < 0)
		die("vdi_queue_create");
	for (int i = 0; i < WRITES; i++) {
		/* Piece i of thread id: the four threads share every block. */
		uint64_t off = ((uint64_t)i * THREADS + (uint64_t)id) * PIECE;

		if (inflight >= 15) {
			int n;

			vdi_queue_submit(q);
			n = vdi_queue_reap(q, c, 1, 16, NULL);
			if (n <= 0)
				die("vdi_queue_reap");
			for (int k = 0; k < n; k++)
				if (c[k].res < 0)
					die("a request");
			inflight -= n;
		}
		fill(buf[i % 16], off);
		if (vdi_queue_write(q, buf[i % 16], PIECE, off, NULL) < 0)
			die("vdi_queue_write");
		inflight++;
		if (i % 3 == 0)
			vdi_queue_submit(q);
		if (i % 50 == 0 && vdi_queue_flush(q, NULL) == 0)
			inflight++;
		if (i % 7 == 0 && vdi_pread(img, r, PIECE, off / 2) != PIECE)
			die("vdi_pread");
	}
	vdi_queue_submit(q);
	while (inflight > 0) {
		int n = vdi_queue_reap(q, c, 1, 16, NULL);

		if (n <= 0)
			die("vdi_queue_reap");
		inflight -= n;
	}
	vdi_queue_destroy(q);
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	uint64_t size = (uint64_t)THREADS * WRITES * PIECE;
	unsigned char *got, want[PIECE];
	pthread_t th[THREADS];
	int bad = 0;

	if (argc != 2 && (argc != 3 || strcmp(argv[2], "qemu-layout")))
		return 2;
	unlink(argv[1]);
	if (argc == 3) {
		char cmd[4200];

		snprintf(cmd, sizeof(cmd), "qemu-img create -q -f vdi '%s' 16M",
			 argv[1]);
		if (system(cmd) != 0) {
			fprintf(stderr, "threads: %s failed\n", cmd);
			return 1;
		}
	} else if (vdi_create(argv[1], 16 * MiB, NULL) < 0) {
		die(argv[1]);
	}
	if (vdi_open(argv[1], argc == 3 ? VDI_OPEN_DIRECT : 0, &img) < 0)
		die(argv[1]);
	for (long i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, worker, (void *)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	if (vdi_close(img) < 0 || vdi_open(argv[1], VDI_OPEN_RDONLY, &img) < 0)
		die("reopen");
	got = malloc(size);
	if (!got || vdi_pread(img, got, size, 0) != (ssize_t)size)
		die("vdi_pread");
	for (uint64_t p = 0; p < size / PIECE; p++) {
		fill(want, p * PIECE);
		bad += memcmp(got + p * PIECE, want, PIECE) != 0;
	}
	vdi_close(img);
	free(got);
	printf("%d threads x %d writes: %d of %llu pieces wrong\n", THREADS,
	       WRITES, bad, (unsigned long long)(size / PIECE));
	return bad != 0;
}
