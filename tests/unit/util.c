#include "util.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[256];

static int remove_one(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

/* A test's folder goes with its process: some hold files of 1 GiB, and
 * a run leaves one folder per test. */
static void remove_dir(void)
{
	nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *tpath(const char *name)
{
	/* A ring of results: a test may hold on to many paths at once. */
	static char buf[64][512];
	static int next;
	char *p = buf[next++ % 64];

	if (!dir[0]) {
		const char *t = getenv("TMPDIR");

		snprintf(dir, sizeof(dir), "%s/libvdi-test-XXXXXX", t ? t : "/tmp");
		cr_assert(mkdtemp(dir), "mkdtemp");
		atexit(remove_dir);
	}
	snprintf(p, 512, "%s/%s", dir, name);
	return p;
}

void pattern(void *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)x;
	}
}

void poke(const char *path, uint64_t off, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY);

	cr_assert(fd >= 0, "open %s", path);
	cr_assert_eq(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

void poke32(const char *path, uint64_t off, uint32_t v)
{
	unsigned char b[4] = { (unsigned char)v, (unsigned char)(v >> 8),
			       (unsigned char)(v >> 16), (unsigned char)(v >> 24) };

	poke(path, off, b, 4);
}

uint32_t peek32(const char *path, uint64_t off)
{
	unsigned char b[4];
	int fd = open(path, O_RDONLY);

	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, b, 4, (off_t)off), 4);
	close(fd);
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[3] << 24;
}

int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int have(const char *prog)
{
	return sh("command -v %s >/dev/null 2>&1", prog) == 0;
}

int have_qemu(const char *prog)
{
	const char *req = getenv("LIBVDI_REQUIRE_QEMU");

	if (have(prog))
		return 1;
	if (req && !strcmp(req, "1"))
		cr_assert_fail("%s not found, and LIBVDI_REQUIRE_QEMU=1 needs it",
			     prog);
	return 0;
}

void qemu_oracle_test(void)
{
	if (!have_qemu("qemu-img") || !have_qemu("qemu-io"))
		cr_skip_test("qemu-img or qemu-io not found: the QEMU "
			     "cross-checks of this file did not run");
}

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

void legacy_preamble(unsigned char buf[512], uint64_t disk_size,
		     uint32_t block_size, uint32_t blocks, uint32_t allocated)
{
	memset(buf, 0, 512);
	memcpy(buf, "<<< innotek VirtualBox Disk Image >>>\n", 38);
	put_le32(buf + 0x40, 0xBEDA107F);
	put_le32(buf + 0x44, 0x00000002); /* 0.2 */
	put_le32(buf + 0x48, 1);          /* dynamic */
	memcpy(buf + 0x50, "legacy", 6);
	put_le32(buf + 0x150, 16);        /* geometry C/H/S/sector */
	put_le32(buf + 0x154, 16);
	put_le32(buf + 0x158, 63);
	put_le32(buf + 0x15C, 512);
	put_le32(buf + 0x160, (uint32_t)disk_size);
	put_le32(buf + 0x164, (uint32_t)(disk_size >> 32));
	put_le32(buf + 0x168, block_size);
	put_le32(buf + 0x16C, blocks);
	put_le32(buf + 0x170, allocated);
	for (int i = 0; i < 16; i++) {
		buf[0x174 + i] = (unsigned char)(0x11 + i); /* creation */
		buf[0x184 + i] = (unsigned char)(0x51 + i); /* modification */
	}
}
