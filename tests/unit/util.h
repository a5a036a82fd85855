/* Helpers shared by the unit tests. */
#ifndef LIBVDI_TEST_UTIL_H
#define LIBVDI_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A path in a private temporary directory ("<dir>/<name>"); the string
 * stays valid for the next 63 calls. */
const char *tpath(const char *name);

/* Fill buf with bytes that depend on the seed and the position. */
void pattern(void *buf, size_t len, uint64_t seed);

/* Overwrite bytes of a file at an offset. */
void poke(const char *path, uint64_t off, const void *buf, size_t len);
void poke32(const char *path, uint64_t off, uint32_t v);
uint32_t peek32(const char *path, uint64_t off);

/* The first 512 bytes of a legacy VDI 0.x image (version 0.2) with this
 * geometry: type 1, UUIDs set, the block map to follow at 420. */
void legacy_preamble(unsigned char buf[512], uint64_t disk_size,
		     uint32_t block_size, uint32_t blocks, uint32_t allocated);

/* Run a shell command; returns its exit status (-1 if it did not exit). */
int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Is this program on PATH? */
int have(const char *prog);

/* QEMU (qemu-img, qemu-io) as the oracle: have(prog), except that under
 * LIBVDI_REQUIRE_QEMU=1 (scripts/test; bootstrap installs QEMU) a missing
 * program fails the calling test.  A file whose checks use it also holds
 * QEMU_ORACLE_TEST(suite), one test that is skipped when QEMU is missing,
 * so that the cross-checks left out show as a skip. */
int have_qemu(const char *prog);
void qemu_oracle_test(void);
#define QEMU_ORACLE_TEST(suite) \
	Test(suite, qemu_oracle_present) { qemu_oracle_test(); }

#endif
