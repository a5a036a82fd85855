/* The full-disk test's program (fulldisk.sh), in three parts: the writer
 * (fulldisk_write.c), the verifier (fulldisk_verify.c), and the record
 * format, one small case and main() (fulldisk.c).
 *
 *   fulldisk write sync|async IMAGE LOG [--fsize=BYTES] --expect=EFBIG|ENOSPC
 *     Writes self-describing 4 KiB records into IMAGE through the
 *     synchronous or the asynchronous API until the disk is full, and goes
 *     on for a while after: writes into new blocks (one block, or two at
 *     once), overwrites of pieces written before, flushes, and once a
 *     discard of four blocks.  --fsize sets RLIMIT_FSIZE (SIGXFSZ is
 *     ignored, so writes past it fail with EFBIG); without it the file
 *     system itself must fill up.  Every acknowledged write, discard and
 *     flush goes to LOG, in the order the writer saw them.
 *     Exits 1, naming the first broken expectation, unless:
 *      - every write, flush and close either succeeds or fails with the
 *        --expect errno (a synchronous call also leaves a message that
 *        says so in vdi_errmsg());
 *      - the disk did fill up: some write failed, after some flush had
 *        succeeded;
 *      - an overwrite of a piece that was written before never fails;
 *      - with ENOSPC: once the discard gave space back, new blocks can be
 *        written again.
 *
 *   fulldisk verify IMAGE LOG
 *     Every 4 KiB of the disk reads as what the log allows: the last write
 *     (or discard) acknowledged before the last successful flush that
 *     covered it, or anything written there after it (a failed write's
 *     record included); zeros where nothing was made durable.  A record
 *     naming another offset is always an error (a block reading another
 *     block's data); a torn record only where a failed write went.
 *
 *   fulldisk one-failed IMAGE
 *     One write past RLIMIT_FSIZE between writes that fit: the flush after
 *     it must still work (see run_one_failed()).
 *
 * The writer and one-failed set an alarm: one that hangs dies of SIGALRM. */
#ifndef FULLDISK_H
#define FULLDISK_H

#include <stdint.h>

#define REC 4096u
#define MAGIC 0x4c4c554644494456ull /* "VDIDFULL" */

/* A record: this head, then bytes derived from offset and generation. */
struct rec_head {
	uint64_t magic, offset, gen, sum;
};

/* Print "fulldisk: ..." on stderr and exit 1. */
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

uint64_t checksum(const unsigned char *rec);
void make_record(unsigned char *rec, uint64_t off, uint64_t gen);

int fulldisk_write(int argc, char **argv);
int fulldisk_verify(int argc, char **argv);

#endif
