/* Interoperability with QEMU (qemu-img, qemu-io) as the oracle, and with
 * real VirtualBox-made images from ../shared/fixtures/vbox. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "0-base/fault.h"
#include "util.h"
#include "vdi.h"

#define MiB (1ull << 20)

static void need_qemu(void)
{
	if (!have_qemu("qemu-img") || !have_qemu("qemu-io"))
		cr_skip_test("qemu-img/qemu-io not installed");
}

/* The whole virtual disk of a VDI read through libvdi equals a raw file. */
static void assert_same_as_raw(const char *vdi, const char *raw)
{
	struct vdi_image *img;
	unsigned char *a = malloc(MiB), *b = malloc(MiB);
	uint64_t size, off;
	FILE *f = fopen(raw, "rb");

	cr_assert(f, "open %s", raw);
	cr_assert_eq(vdi_open(vdi, VDI_OPEN_RDONLY, &img), 0, "%s", vdi_errmsg());
	size = vdi_get_size(img);
	for (off = 0; off < size; off += MiB) {
		size_t n = size - off < MiB ? (size_t)(size - off) : MiB;

		cr_assert_eq(vdi_pread(img, a, n, off), (ssize_t)n, "%s", vdi_errmsg());
		cr_assert_eq(fread(b, 1, n, f), n, "raw is shorter");
		cr_assert_eq(memcmp(a, b, n), 0, "differs in the MiB at %llu",
			     (unsigned long long)off);
	}
	cr_assert_eq(fread(b, 1, 1, f), 0, "raw is longer than the disk");
	fclose(f);
	vdi_close(img);
	free(a);
	free(b);
}

static void qemu_writes(const char *p)
{
	cr_assert_eq(sh("qemu-io -f vdi -c 'write -P 0x11 0 64k' "
			"-c 'write -P 0x22 1020k 8k' -c 'write -P 0x33 5M 1M' "
			"-c 'write -P 0x44 7340544 512' %s >/dev/null", p), 0);
}

static void qemu_image_reads_identically(const char *opts)
{
	const char *p = tpath("q.vdi"), *raw = tpath("q.raw");

	need_qemu();
	cr_assert_eq(sh("qemu-img create -q -f vdi %s %s 8M", opts, p), 0);
	qemu_writes(p);
	cr_assert_eq(sh("qemu-img convert -O raw %s %s", p, raw), 0);
	assert_same_as_raw(p, raw);
}

Test(interop, qemu_dynamic_image_reads_identically)
{
	qemu_image_reads_identically("");
}

Test(interop, qemu_static_image_reads_identically)
{
	qemu_image_reads_identically("-o static=on");
}

/* QEMU writes into an image we created; we read what it wrote. */
Test(interop, qemu_writes_into_our_image)
{
	const char *p = tpath("ours.vdi"), *raw = tpath("ours.raw");

	need_qemu();
	unlink(p);
	cr_assert_eq(vdi_create(p, 8 * MiB, NULL), 0);
	qemu_writes(p);
	cr_assert_eq(sh("qemu-img check -q %s", p), 0);
	cr_assert_eq(sh("qemu-img convert -O raw %s %s", p, raw), 0);
	assert_same_as_raw(p, raw);
}

/* We write an image; QEMU checks it and compares it with the raw data. */
Test(interop, our_writes_pass_qemu_check_and_compare)
{
	const char *p = tpath("w.vdi"), *raw = tpath("w.raw");
	struct vdi_image *img;
	unsigned char *buf = malloc(3 * MiB);
	FILE *f;
	int i;

	need_qemu();
	unlink(p);
	cr_assert_eq(vdi_create(p, 32 * MiB, NULL), 0);
	cr_assert_eq(vdi_open(p, 0, &img), 0);
	f = fopen(raw, "w+b");
	cr_assert_eq(ftruncate(fileno(f), 32 * MiB), 0);
	for (i = 0; i < 20; i++) {
		uint64_t off = ((uint64_t)i * 7919 * 4099) % (29 * MiB);
		size_t len = 1 + (size_t)(i * 104729) % (3 * MiB - 1);

		pattern(buf, len, (uint64_t)i);
		cr_assert_eq(vdi_pwrite(img, buf, len, off), (ssize_t)len);
		cr_assert_eq(pwrite(fileno(f), buf, len, (off_t)off), (ssize_t)len);
	}
	fclose(f);
	cr_assert_eq(vdi_close(img), 0);
	cr_assert_eq(sh("qemu-img check -q %s", p), 0);
	cr_assert_eq(sh("qemu-img compare -q -f vdi -F raw %s %s", p, raw), 0);
	free(buf);
}

/* Real VirtualBox images: the SHA-256 of each virtual disk, from the
 * fixtures' README (computed there with two independent readers). */
static const struct {
	const char *file, *sha256;
} fixtures[] = {
	{ "pyVBox/TestHD-vbox4.0.8-2011.vdi",
	  "ebfb4ef19ae410f190327b5ebd312711263bc7579970e87d9c1e2d84e06b3c25" },
	{ "pyVBox/TestHD-sunvbox-2009.vdi",
	  "bb9f8df61474d25e71fa00722318cd387396ca1736605e1248821cc0de3d3af8" },
	{ "tritium-os/test-vbox-convertfromraw-floppy.vdi",
	  "7addf94295c91a65df70ae0d330a4ffb044f4e94921f2042fee086947fcccdbd" },
	{ "tritium-os/test-qemu-created-hdr384.vdi",
	  "d3b47b8355761a9fc98634f746d6b3a0c014359a89eafe5e94b759006d7d8a9d" },
	{ "tritium-os/test-qemu-created-then-vbox-upgraded-hdr400.vdi",
	  "d3b47b8355761a9fc98634f746d6b3a0c014359a89eafe5e94b759006d7d8a9d" },
};

Test(interop, virtualbox_fixtures_bit_exact)
{
	const char *dir = getenv("VDI_FIXTURES");
	unsigned char *buf = malloc(MiB);
	size_t i;

	if (!dir || access(dir, R_OK) != 0)
		cr_skip_test("fixtures not found (VDI_FIXTURES=%s)", dir ? dir : "");
	for (i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		char path[1024], cmd[1200], got[65] = { 0 };
		struct vdi_image *img;
		struct vdi_check_result r;
		uint64_t off, size;
		FILE *sum, *out;

		snprintf(path, sizeof(path), "%s/%s", dir, fixtures[i].file);
		cr_assert_eq(vdi_open(path, VDI_OPEN_RDONLY, &img), 0, "%s",
			     vdi_errmsg());
		cr_assert_eq(vdi_check(img, &r, NULL, NULL), 0);
		cr_assert_eq(r.corruptions + r.leaks, 0, "%s is clean", path);
		/* Python's hashlib (OpenSSL) hashes far faster than
		 * coreutils' sha256sum.  The 8 GiB disk is mostly zeros: a
		 * MiB read as all zeros goes down the pipe as a 'Z' record,
		 * data as a 'D' record with its bytes. */
		snprintf(cmd, sizeof(cmd),
			 "python3 -c 'import hashlib, sys\n"
			 "h = hashlib.sha256(); f = sys.stdin.buffer\n"
			 "while t := f.read(1):\n"
			 "    n = int.from_bytes(f.read(8), \"little\")\n"
			 "    h.update(bytes(n) if t == b\"Z\" else f.read(n))\n"
			 "print(h.hexdigest())' > %s", tpath("sum"));
		sum = popen(cmd, "w");
		size = vdi_get_size(img);
		for (off = 0; off < size; off += MiB) {
			size_t n = size - off < MiB ? (size_t)(size - off) : MiB;
			uint64_t n64 = n;
			int zero;

			memset(buf, 0xA5, n);
			cr_assert_eq(vdi_pread(img, buf, n, off), (ssize_t)n);
			zero = buf[0] == 0 && memcmp(buf, buf + 1, n - 1) == 0;
			cr_assert_eq(fwrite(zero ? "Z" : "D", 1, 1, sum), 1);
			cr_assert_eq(fwrite(&n64, 8, 1, sum), 1);
			if (!zero)
				cr_assert_eq(fwrite(buf, 1, n, sum), n);
		}
		cr_assert_eq(pclose(sum), 0);
		vdi_close(img);
		out = fopen(tpath("sum"), "r");
		cr_assert_eq(fread(got, 1, 64, out), 64);
		fclose(out);
		cr_assert_str_eq(got, fixtures[i].sha256, "%s", path);
	}
	free(buf);
}

/* A legacy VDI 0.x image, as VirtualBox before 1.4 wrote them: block map
 * right after the 348-byte header (at 420), data right after the map, not
 * sector-aligned.  Made here byte by byte: no such image is in the
 * fixtures, and QEMU cannot read the format. */
Test(interop, legacy_0x_image_reads_and_stays_read_only)
{
	const char *path = tpath("legacy.vdi");
	const uint32_t bs = 1u << 20, blocks = 4;
	const uint32_t map[4] = { 1, 0xFFFFFFFFu, 0, 0xFFFFFFFEu };
	unsigned char pre[512], *a = malloc(bs), *b = malloc(bs), *got = malloc(bs);
	struct vdi_check_result res;
	struct vdi_image *img;
	struct vdi_info info;
	uint32_t vb;
	FILE *f = fopen(path, "wb");

	cr_assert(f && a && b && got);
	pattern(a, bs, 1);
	pattern(b, bs, 2);
	legacy_preamble(pre, (uint64_t)blocks * bs, bs, blocks, 2);
	cr_assert_eq(fwrite(pre, 1, 420, f), 420); /* the 0.x header ends at 420 */
	for (vb = 0; vb < blocks; vb++) {
		unsigned char le[4] = { (unsigned char)map[vb],
					(unsigned char)(map[vb] >> 8),
					(unsigned char)(map[vb] >> 16),
					(unsigned char)(map[vb] >> 24) };
		cr_assert_eq(fwrite(le, 1, 4, f), 4);
	}
	cr_assert_eq(fwrite(a, 1, bs, f), bs); /* physical block 0 */
	cr_assert_eq(fwrite(b, 1, bs, f), bs); /* physical block 1 */
	fclose(f);

	cr_assert_eq(vdi_open(path, VDI_OPEN_RDONLY, &img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_get_size(img), (uint64_t)blocks * bs);
	cr_assert_eq(vdi_get_info(img, &info), 0);
	cr_assert_eq(info.version, 2);
	cr_assert_eq(info.blocks_allocated, 2);
	for (vb = 0; vb < blocks; vb++) {
		const unsigned char *want = map[vb] == 0 ? a : map[vb] == 1 ? b : NULL;

		cr_assert_eq(vdi_pread(img, got, bs, (uint64_t)vb * bs), (ssize_t)bs,
			     "%s", vdi_errmsg());
		if (want) {
			cr_assert_eq(memcmp(got, want, bs), 0, "block %u", vb);
		} else {
			for (uint32_t i = 0; i < bs; i++)
				cr_assert_eq(got[i], 0, "block %u byte %u", vb, i);
		}
	}
	/* A read across the unaligned block boundary. */
	cr_assert_eq(vdi_pread(img, got, 4096, bs - 2048), 4096);
	cr_assert_eq(memcmp(got, b + bs - 2048, 2048), 0);
	cr_assert_eq(vdi_check(img, &res, NULL, NULL), 0, "%s", vdi_errmsg());
	cr_assert_eq(res.corruptions, 0);
	cr_assert_eq(res.leaks, 0);
	cr_assert_eq(vdi_close(img), 0);

	cr_assert_eq(vdi_open(path, 0, &img), -EROFS);
	cr_assert(strstr(vdi_errmsg(), "legacy VDI 0.2"), "%s", vdi_errmsg());
	cr_assert_eq(vdi_open(path, VDI_OPEN_RDONLY | VDI_OPEN_DIRECT, &img),
		     -ENOTSUP);
	free(a);
	free(b);
	free(got);
}

/* Differencing images over real VirtualBox- and QEMU-made parents (their
 * 512 B, 4 KiB alignments, a 384-byte header, an odd disk size): a child
 * made by libvdi reads the parent through, copies a parent's block up on a
 * partial write, and commits back into a parent that qemu-img then finds
 * clean.  Compared over the first 2 MiB and the last MiB of each disk. */
Test(interop, differencing_children_of_real_images)
{
	const char *dir = getenv("VDI_FIXTURES");
	static const char *const parents[] = {
		"pyVBox/TestHD-sunvbox-2009.vdi",
		"tritium-os/test-vbox-convertfromraw-floppy.vdi",
		"tritium-os/test-qemu-created-hdr384.vdi",
		"tritium-os/test-qemu-created-then-vbox-upgraded-hdr400.vdi",
	};
	size_t i;

	if (!dir || access(dir, R_OK) != 0)
		cr_skip_test("fixtures not found (VDI_FIXTURES=%s)", dir ? dir : "");
	for (i = 0; i < sizeof(parents) / sizeof(parents[0]); i++) {
		char name[64], src[1024];
		const char *parent, *child;
		struct vdi_create_opts o = { 0 };
		struct vdi_image *img;
		uint64_t size, tail, len[2], at[2];
		unsigned char *want[2], *got = malloc(2 * MiB), patch[3000];
		int r;

		snprintf(name, sizeof(name), "real-parent-%zu.vdi", i);
		parent = tpath(name);
		snprintf(name, sizeof(name), "real-child-%zu.vdi", i);
		child = tpath(name);
		snprintf(src, sizeof(src), "%s/%s", dir, parents[i]);
		cr_assert_eq(sh("cp %s %s && rm -f %s", src, parent, child), 0);

		cr_assert_eq(vdi_open(parent, VDI_OPEN_RDONLY, &img), 0, "%s",
			     vdi_errmsg());
		size = vdi_get_size(img);
		tail = size > 3 * MiB ? size - MiB : 2 * MiB;
		at[0] = 0;
		len[0] = size < 2 * MiB ? size : 2 * MiB;
		at[1] = tail < size ? tail : size;
		len[1] = size - at[1];
		for (r = 0; r < 2; r++) {
			want[r] = malloc(2 * MiB);
			cr_assert_eq(vdi_pread(img, want[r], len[r], at[r]),
				     (ssize_t)len[r]);
		}
		vdi_close(img);

		o.parent = parent;
		cr_assert_eq(vdi_create(child, 0, &o), 0, "%s", vdi_errmsg());
		/* Two fixtures are the same image (same UUIDs): name the
		 * parent rather than have it looked for. */
		cr_assert_eq(vdi_open_parent(child, 0, parent, &img), 0, "%s",
			     vdi_errmsg());
		pattern(patch, sizeof(patch), 40 + i);
		/* Inside the first block: the parent's block is copied up. */
		cr_assert_eq(vdi_pwrite(img, patch, sizeof(patch), 1000),
			     (ssize_t)sizeof(patch), "%s", vdi_errmsg());
		memcpy(want[0] + 1000, patch, sizeof(patch));
		/* At the very end of the disk (a partial last block for the
		 * floppy). */
		cr_assert_eq(vdi_pwrite(img, patch, 512, size - 512), 512);
		if (len[1])
			memcpy(want[1] + len[1] - 512, patch, 512);
		else
			memcpy(want[0] + len[0] - 512, patch, 512);
		cr_assert_eq(vdi_close(img), 0);

		for (int pass = 0; pass < 2; pass++) {
			const char *path = pass == 0 ? child : parent;

			cr_assert_eq(vdi_open_parent(path, VDI_OPEN_RDONLY,
						     pass ? NULL : parent, &img),
				     0, "%s", vdi_errmsg());
			for (r = 0; r < 2; r++) {
				cr_assert_eq(vdi_pread(img, got, len[r], at[r]),
					     (ssize_t)len[r]);
				cr_assert_eq(memcmp(got, want[r], len[r]), 0,
					     "%s: %s, range %d", parents[i],
					     pass ? "parent after commit" : "child",
					     r);
			}
			vdi_close(img);
			if (pass == 0)
				cr_assert_eq(vdi_commit(child, parent, NULL, NULL),
					     0, "%s", vdi_errmsg());
		}
		if (have_qemu("qemu-img"))
			cr_assert_eq(sh("qemu-img check -q %s", parent), 0,
				     "%s after commit", parents[i]);
		free(want[0]);
		free(want[1]);
		free(got);
	}
}

/* The rule QEMU allocates by (slot `blocks allocated`, the slots below it
 * in use), after what a crash leaves: two leaked slots after the last
 * block.  libvdi's next block must take the slot QEMU would, so that
 * QEMU's next writes land on free slots; and an online discard keeps the
 * rule.  Each step is followed by QEMU's allocating writes, qemu-img check
 * and a read of every block. */
Test(interop, allocation_after_leaked_slots_keeps_the_count_rule)
{
	const char *p = tpath("leak-rule.vdi");
	unsigned char *buf = malloc(MiB), *junk = malloc(2 * MiB);
	struct vdi_image *img;
	struct vdi_queue *q;
	struct vdi_completion c;
	int fd;

	if (!have_qemu("qemu-io"))
		cr_skip_test("qemu-io not installed");
	unlink(p);
	cr_assert_eq(vdi_create(p, 16 * MiB, NULL), 0);
	cr_assert_eq(sh("qemu-io -f vdi -c 'write -P 1 0 1M' -c 'write -P 2 1M 1M' "
			"-c 'write -P 3 2M 1M' -c 'write -P 4 3M 1M' %s >/dev/null", p), 0);
	/* A crash after two more blocks' data, before their entries. */
	memset(junk, 0x5A, 2 * MiB);
	fd = open(p, O_WRONLY | O_APPEND);
	cr_assert_eq(write(fd, junk, 2 * MiB), (ssize_t)(2 * MiB));
	close(fd);
	cr_assert_eq(vdi_open(p, 0, &img), 0, "%s", vdi_errmsg());
	memset(buf, 5, MiB);
	cr_assert_eq(vdi_pwrite(img, buf, MiB, 4 * MiB), (ssize_t)MiB);
	/* An online discard of block 1: its slot stays, punched. */
	cr_assert_eq(vdi_queue_create(img, 4, 0, &q), 0);
	cr_assert_eq(vdi_queue_discard(q, MiB, MiB, NULL), 0);
	cr_assert_eq(vdi_queue_submit(q), 1);
	cr_assert_eq(vdi_queue_reap(q, &c, 1, 1, NULL), 1);
	cr_assert_geq(c.res, 0, "%s", vdi_errmsg());
	vdi_queue_destroy(q);
	cr_assert_eq(vdi_close(img), 0, "%s", vdi_errmsg());
	cr_assert_eq(peek32(p, MiB + 4 * 4), 4, "block 4 took slot 4, the count");
	cr_assert_eq(peek32(p, 0x184), 5, "blocks allocated");
	cr_assert_eq(sh("qemu-img check -q %s", p), 0);
	cr_assert_eq(sh("qemu-io -f vdi -c 'write -P 6 5M 1M' -c 'write -P 7 6M 1M' "
			"%s >/dev/null", p), 0);
	cr_assert_eq(sh("qemu-img check -q %s", p), 0);
	cr_assert_eq(sh("qemu-io -f vdi -c 'read -P 1 0 1M' -c 'read -P 0 1M 1M' "
			"-c 'read -P 3 2M 1M' -c 'read -P 4 3M 1M' -c 'read -P 5 4M 1M' "
			"-c 'read -P 6 5M 1M' -c 'read -P 7 6M 1M' -c 'read -P 0 7M 9M' "
			"%s | grep -q -e failed -e error", p), 1,
		     "a block does not read what it should");
	free(buf);
	free(junk);
}

/* For a child process: open `p` O_DIRECT, write n whole blocks `stride`
 * apart through `buf` (1 MiB, aligned), then close the image, or only
 * flush it and leave as a crash would.  Returns the child's exit status. */
static int child_writes_blocks(const char *p, int n, uint64_t stride,
			       bool close_it, unsigned char *buf)
{
	struct vdi_image *img;

	if (vdi_open(p, VDI_OPEN_DIRECT, &img) < 0)
		return 2;
	for (int i = 0; i < n; i++) {
		pattern(buf, MiB, (uint64_t)i + 1);
		if (vdi_pwrite(img, buf, MiB, (uint64_t)i * stride) !=
		    (ssize_t)MiB)
			return 3;
	}
	if (close_it)
		return vdi_close(img) == 0 ? 0 : 4;
	return vdi_flush(img) == 0 ? 0 : 4;
}

/* On an aligned layout opened O_DIRECT the file's size runs ahead of the
 * slots handed out (a hole), so that allocating writes do not extend the
 * file.  A crash leaves that hole: `vdi check` counts it as holes, not
 * leaks; QEMU checks the image clean, and QEMU's next allocation and ours
 * take slot `blocks allocated`; a clean close cuts the size back to the
 * last slot. */
Test(interop, size_set_ahead_of_the_allocator)
{
	const char *p = tpath("ahead.vdi");
	unsigned char *buf;
	struct vdi_check_result res;
	struct vdi_info info;
	struct vdi_image *img;
	struct statfs sf;
	struct stat st;
	uint64_t data;
	pid_t pid;
	int status;

	unlink(p);
	cr_assert_eq(vdi_create(p, 256 * MiB, NULL), 0, "%s", vdi_errmsg());
	cr_assert_eq(posix_memalign((void **)&buf, 4096, MiB), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) /* three blocks, flushed; then gone without a close */
		_exit(child_writes_blocks(p, 3, 7 * MiB, false, buf));
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: %d",
		  status);
	cr_assert_eq(vdi_open(p, VDI_OPEN_RDONLY, &img), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_get_info(img, &info), 0);
	data = info.offset_data;
	cr_assert_eq(stat(p, &st), 0);
	if (st.st_blksize > 0 && data % (uint64_t)st.st_blksize)
		cr_skip_test("the data area is not on a file-system block here");
	if (statfs(p, &sf) < 0 || sf.f_type != EXT4_SUPER_MAGIC)
		cr_skip_test("the size is set ahead on ext4 only, and %s is not",
			     tpath(""));
	cr_assert_gt((uint64_t)st.st_size, data + 3 * MiB,
		     "the size ran ahead of the 3 slots: %lld",
		     (long long)st.st_size);
	cr_assert_eq(vdi_check(img, &res, NULL, NULL), 0, "%s", vdi_errmsg());
	cr_assert_eq(res.corruptions, 0);
	cr_assert_eq(res.leaks, 0, "the hole set ahead is not a leak");
	cr_assert_gt(res.holes, 0);
	cr_assert_eq(vdi_close(img), 0);
	if (have_qemu("qemu-img"))
		cr_assert_eq(sh("qemu-img check -q %s", p), 0);

	/* QEMU allocates the next block at the count (slot 3) ... */
	if (have_qemu("qemu-io")) {
		cr_assert_eq(sh("qemu-io -f vdi -c 'write -P 9 %llu 1M' %s >/dev/null",
				(unsigned long long)(30 * MiB), p), 0);
		cr_assert_eq(peek32(p, info.offset_bmap + 30 * 4), 3);
	}
	/* ... and so do we after it, cutting the hole first; a clean close
	 * leaves the file at the end of its last slot. */
	cr_assert_eq(vdi_open(p, VDI_OPEN_DIRECT, &img), 0, "%s", vdi_errmsg());
	pattern(buf, MiB, 40);
	cr_assert_eq(vdi_pwrite(img, buf, MiB, 40 * MiB), (ssize_t)MiB);
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_gt((uint64_t)st.st_size, data + 5 * MiB, "ahead while open");
	cr_assert_eq(vdi_close(img), 0, "%s", vdi_errmsg());
	cr_assert_eq(peek32(p, info.offset_bmap + 40 * 4),
		     have_qemu("qemu-io") ? 4 : 3);
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq((uint64_t)st.st_size,
		     data + (have_qemu("qemu-io") ? 5 : 4) * MiB,
		     "cut back at close: %lld", (long long)st.st_size);
	if (have_qemu("qemu-img"))
		cr_assert_eq(sh("qemu-img check -q %s", p), 0);
	if (have_qemu("qemu-io"))
		cr_assert_eq(sh("qemu-io -f vdi -c 'read -P 9 30M 1M' -c 'read -P 0 31M 9M' "
				"%s | grep -q -e failed -e error", p), 1);
	free(buf);
}

/* The size set ahead stops at the process's file size limit: past it,
 * ftruncate would raise SIGXFSZ and kill a process that writes nothing
 * beyond the limit. */
Test(interop, size_set_ahead_stays_under_the_file_size_limit)
{
	const char *p = tpath("ahead-limit.vdi");
	unsigned char *buf;
	struct stat st;
	pid_t pid;
	int status;

	unlink(p);
	cr_assert_eq(vdi_create(p, 256 * MiB, NULL), 0, "%s", vdi_errmsg());
	cr_assert_eq(posix_memalign((void **)&buf, 4096, MiB), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct rlimit rl = { 8 * MiB, 8 * MiB };

		/* Data at 2 MiB: room for 6 blocks, and 4 are written. */
		if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
			_exit(2);
		_exit(child_writes_blocks(p, 4, 5 * MiB, true, buf));
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "the child was killed by signal %d",
		  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	cr_assert_eq(WEXITSTATUS(status), 0);
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(st.st_size, (off_t)(6 * MiB));
	if (have_qemu("qemu-img"))
		cr_assert_eq(sh("qemu-img check -q %s", p), 0);
	free(buf);
}

/* On the same layouts a first write shorter than 16 KiB reserves its slot
 * and the next 15 in one fallocate (unwritten extents: writes then need
 * no block allocation and are not handed to io-wq, and the fallocate's
 * wait for every direct write in flight comes once per 16 new slots); a
 * longer first write reserves nothing.  What is reserved past the last
 * slot is cut at close.  The rest of a block reads zeros, through libvdi
 * and through QEMU. */
Test(interop, short_first_writes_reserve_slots_ahead)
{
	const char *p = tpath("reserve.vdi");
	unsigned char *buf, *back;
	struct statfs sf;
	struct vdi_image *img;
	struct stat st0, st1, st2, st3;

	unlink(p);
	cr_assert_eq(vdi_create(p, 64 * MiB, NULL), 0, "%s", vdi_errmsg());
	if (statfs(p, &sf) < 0 || sf.f_type != EXT4_SUPER_MAGIC)
		cr_skip_test("slots are reserved on ext4 only, and %s is not",
			     tpath(""));
	cr_assert_eq(posix_memalign((void **)&buf, 4096, 2 * MiB), 0);
	back = buf + MiB;
	cr_assert_eq(vdi_open(p, VDI_OPEN_DIRECT, &img), 0, "%s", vdi_errmsg());
	cr_assert_eq(stat(p, &st0), 0);
	pattern(buf, 65536, 8);
	cr_assert_eq(vdi_pwrite(img, buf, 65536, 9 * MiB), 65536);
	cr_assert_eq(stat(p, &st1), 0);
	cr_assert_lt((st1.st_blocks - st0.st_blocks) * 512, (blkcnt_t)MiB / 2,
		     "a 64 KiB first write took %lld bytes",
		     (long long)(st1.st_blocks - st0.st_blocks) * 512);
	pattern(buf, 4096, 7);
	cr_assert_eq(vdi_pwrite(img, buf, 4096, 3 * MiB + 8192), 4096);
	cr_assert_eq(stat(p, &st2), 0);
	cr_assert_geq((st2.st_blocks - st1.st_blocks) * 512, (blkcnt_t)(16 * MiB),
		      "a 4 KiB first write reserved %lld bytes, not 16 slots",
		      (long long)(st2.st_blocks - st1.st_blocks) * 512);
	cr_assert_leq((st2.st_blocks - st1.st_blocks) * 512, (blkcnt_t)(17 * MiB),
		      "a 4 KiB first write reserved %lld bytes",
		      (long long)(st2.st_blocks - st1.st_blocks) * 512);
	cr_assert_eq(vdi_pread(img, back, MiB, 3 * MiB), (ssize_t)MiB);
	cr_assert_eq(memcmp(back + 8192, buf, 4096), 0);
	for (size_t i = 0; i < MiB; i++)
		if (i < 8192 || i >= 8192 + 4096)
			cr_assert_eq(back[i], 0, "byte %zu of the block", i);
	cr_assert_eq(vdi_close(img), 0, "%s", vdi_errmsg());
	cr_assert_eq(stat(p, &st3), 0);
	cr_assert_leq(st3.st_blocks * 512, (blkcnt_t)(3 * MiB),
		      "%lld bytes allocated after close for two blocks: the "
		      "reservation past the last slot stayed",
		      (long long)st3.st_blocks * 512);
	if (have_qemu("qemu-img"))
		cr_assert_eq(sh("qemu-img check -q %s", p), 0);
	if (have_qemu("qemu-io"))
		cr_assert_eq(sh("qemu-io -f vdi -c 'read -P 0 3M 8k' -c 'read -P 0 %llu %llu' "
				"%s >/dev/null", (unsigned long long)(3 * MiB + 12288),
				(unsigned long long)(MiB - 12288), p), 0);
	free(buf);
}

QEMU_ORACLE_TEST(interop)

/* A new 8 MiB image made by qemu-img (QEMU's layout: the data area is not
 * on a 4 KiB boundary) at `p`, opened with O_DIRECT. */
static struct vdi_image *open_qemu_layout(const char *p)
{
	struct vdi_image *img;
	uint32_t data;
	int ret;

	need_qemu();
	unlink(p);
	cr_assert_eq(sh("qemu-img create -q -f vdi %s 8M", p), 0);
	data = peek32(p, 0x158);
	cr_assert_neq(data % 4096, 0, "qemu-img put the data area at %u", data);
	ret = vdi_open(p, VDI_OPEN_DIRECT, &img);
	if (ret == -EINVAL)
		cr_skip_test("this file system refuses O_DIRECT");
	cr_assert_eq(ret, 0, "%s", vdi_errmsg());
	return img;
}

/* Close `img` (at `p`), have QEMU check it and read it into `raw`, which
 * must match what libvdi reads; return the image opened again, read-only. */
static struct vdi_image *close_and_check_with_qemu(struct vdi_image *img,
						   const char *p,
						   const char *raw)
{
	cr_assert_eq(vdi_close(img), 0, "%s", vdi_errmsg());
	cr_assert_eq(sh("qemu-img check -q %s", p), 0);
	cr_assert_eq(sh("qemu-img convert -O raw %s %s", p, raw), 0);
	assert_same_as_raw(p, raw);
	cr_assert_eq(vdi_open(p, VDI_OPEN_RDONLY, &img), 0, "%s", vdi_errmsg());
	return img;
}

/* The first `len` bytes of the disk read through `img` equal `model`. */
static void assert_disk_is(struct vdi_image *img, const unsigned char *model,
			   size_t len, const char *when)
{
	unsigned char *got = malloc(len);

	cr_assert_eq(vdi_pread(img, got, len, 0), (ssize_t)len, "%s", vdi_errmsg());
	for (size_t i = 0; i < len; i++)
		cr_assert_eq(got[i], model[i],
			     "%s: byte %zu of the disk is %#x, not %#x", when, i,
			     got[i], model[i]);
	free(got);
}

/* The disk read through `img` equals `model` (`len` bytes, then freed);
 * then the same after QEMU checked and copied the closed image. */
static void check_disk_then_qemu(struct vdi_image *img, const char *p,
				 const char *raw, unsigned char *model,
				 size_t len)
{
	assert_disk_is(img, model, len, "after the writes");
	img = close_and_check_with_qemu(img, p, raw);
	assert_disk_is(img, model, len, "reopened");
	vdi_close(img);
	free(model);
}

/* Write `len` bytes of pattern `seed` at `off`, through `img` and into
 * `model`. */
static void write_both(struct vdi_image *img, unsigned char *model,
		       uint64_t off, size_t len, uint64_t seed)
{
	pattern(model + off, len, seed);
	cr_assert_eq(vdi_pwrite(img, model + off, len, off), (ssize_t)len,
		     "write of %zu at %llu: %s", len, (unsigned long long)off,
		     vdi_errmsg());
}

/* QEMU's layout, opened with O_DIRECT: every 4 KiB of the disk straddles
 * two file-system blocks, and a write into a new slot is widened to whole
 * blocks with zeros where no write reached yet (2-image/fresh.c).  Writes
 * that share blocks, one after the other: none may lose a byte to
 * another's zeros.  Then QEMU reads the same disk. */
Test(interop, qemu_layout_neighbouring_writes_keep_each_other)
{
	const char *p = tpath("wide.vdi"), *raw = tpath("wide.raw");
	size_t len = 6 * MiB;
	unsigned char *model = calloc(1, len);
	struct vdi_image *img = open_qemu_layout(p);
	unsigned seed = 7;

	write_both(img, model, 0, 4096, 1);	   /* slot 0 */
	write_both(img, model, 4096, 4096, 2);	   /* shares a block with it */
	write_both(img, model, 12288, 4096, 3);
	write_both(img, model, 8192, 4096, 4);	   /* between two written */
	write_both(img, model, 20480 + 1024, 512, 5); /* inside one block */
	write_both(img, model, 20480 + 1536, 512, 6); /* the same block */
	write_both(img, model, MiB + 3072, 65536, 7); /* slot 1 */
	write_both(img, model, 3 * MiB, MiB, 8);	   /* whole block, slot 2 */
	write_both(img, model, 3 * MiB - 4096, 4096, 9); /* slot 3, ends where
							* slot 2 starts in the file */
	write_both(img, model, 4 * MiB - 512, 1024, 10); /* two blocks */
	for (int i = 0; i < 300; i++) {
		size_t n = 512 * (1 + rand_r(&seed) % 40);
		uint64_t off = 512 * (uint64_t)(rand_r(&seed) % ((len - n) / 512));

		write_both(img, model, off, n, 100 + (uint64_t)i);
	}
	check_disk_then_qemu(img, p, raw, model, len);
}

/* Four threads write 1536-byte units of the disk, unit i by thread i % 4,
 * so that neighbours, which share file-system blocks, are written by
 * different threads through different queues at the same time: a
 * widened write's zeros must not land on a neighbour's bytes, whichever
 * queue holds the block. */
#define UNIT 1536
#define UNITS (4 * MiB / UNIT)

struct unit_writer {
	struct vdi_image *img;
	unsigned char *model;
	unsigned id;
	int ok;
};

static void *write_units(void *arg)
{
	struct unit_writer *w = arg;
	unsigned seed = w->id + 1;

	w->ok = 1;
	for (int i = 0; i < 1500 && w->ok; i++) {
		uint64_t u = (rand_r(&seed) % (UNITS / 4)) * 4 + w->id;

		pattern(w->model + u * UNIT, UNIT, u * 10000 + (uint64_t)i);
		w->ok = vdi_pwrite(w->img, w->model + u * UNIT, UNIT,
				   u * UNIT) == UNIT;
	}
	return NULL;
}

Test(interop, qemu_layout_writes_of_threads_that_share_blocks)
{
	const char *p = tpath("wide4.vdi"), *raw = tpath("wide4.raw");
	unsigned char *model = calloc(1, UNITS * UNIT);
	struct vdi_image *img = open_qemu_layout(p);
	struct unit_writer w[4];
	pthread_t th[4];

	for (unsigned t = 0; t < 4; t++) {
		w[t] = (struct unit_writer){ img, model, t, 0 };
		cr_assert_eq(pthread_create(&th[t], NULL, write_units, &w[t]), 0);
	}
	for (unsigned t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		cr_assert(w[t].ok, "thread %u: %s", t, vdi_errmsg());
	}
	check_disk_then_qemu(img, p, raw, model, UNITS * UNIT);
}

/* One queue, one submission of 64 writes side by side, 4 KiB and then
 * 1536 bytes each, into new blocks: each one's first block is the one its
 * neighbour widens, so most wait for a completion on the same queue. */
Test(interop, qemu_layout_one_batch_of_neighbours)
{
	const char *p = tpath("wideq.vdi"), *raw = tpath("wideq.raw");
	size_t len = 4 * MiB;
	unsigned char *model = calloc(1, len);
	struct vdi_image *img = open_qemu_layout(p);
	struct vdi_completion c[64];
	struct vdi_queue *q;
	size_t sizes[] = { 4096, UNIT };

	cr_assert_eq(vdi_queue_create(img, 64, 0, &q), 0, "%s", vdi_errmsg());
	for (int b = 0; b < 2; b++) {
		uint64_t base = (uint64_t)(b + 1) * MiB + 512 * (uint64_t)b;
		int n = 0;

		for (int i = 0; i < 64; i++) {
			uint64_t off = base + (uint64_t)i * sizes[b];

			pattern(model + off, sizes[b], off);
			cr_assert_eq(vdi_queue_write(q, model + off, sizes[b], off,
						     NULL), 0, "%s", vdi_errmsg());
		}
		cr_assert_eq(vdi_queue_submit(q), 64);
		while (n < 64) {
			int k = vdi_queue_reap(q, c, 1, 64, NULL);

			cr_assert_gt(k, 0, "%s", vdi_errmsg());
			for (int i = 0; i < k; i++)
				cr_assert_eq(c[i].res, (int64_t)sizes[b],
					     "a write failed: %lld",
					     (long long)c[i].res);
			n += k;
		}
	}
	vdi_queue_destroy(q);
	check_disk_then_qemu(img, p, raw, model, len);
}

/* Synchronous writes (VDI_IO_META) into the data area seen. */
static atomic_int sync_writes;
static uint64_t data_area;

static int count_sync(void *opaque, enum vdi_io_kind kind, uint64_t off,
		      size_t len, const struct iovec *iov, int iovcnt, int res)
{
	(void)opaque, (void)off, (void)len, (void)iov, (void)iovcnt;
	if (kind == VDI_IO_META && off >= data_area)
		atomic_fetch_add(&sync_writes, 1);
	return res;
}

static const struct vdi_fault_hook count_sync_hook = { .io = count_sync };

/* The last 4 KiB of slot 0 and the first of slot 1 share a file-system
 * block: the second write, widened, must leave the first one's bytes. */
Test(interop, qemu_layout_write_keeps_the_previous_slot)
{
	const char *p = tpath("fill2.vdi"), *raw = tpath("fill2.raw");
	unsigned char a[4096], b[4096], got[4096];
	struct vdi_image *img = open_qemu_layout(p);

	pattern(a, sizeof(a), 60);
	pattern(b, sizeof(b), 61);
	/* The last 4 KiB of block 0 (slot 0), then the first of block 1
	 * (slot 1). */
	cr_assert_eq(vdi_pwrite(img, a, sizeof(a), MiB - sizeof(a)), (ssize_t)sizeof(a));
	cr_assert_eq(vdi_pwrite(img, b, sizeof(b), 5 * MiB), (ssize_t)sizeof(b));
	cr_assert_eq(vdi_pread(img, got, sizeof(got), MiB - sizeof(a)), (ssize_t)sizeof(got));
	cr_assert_eq(memcmp(got, a, sizeof(a)), 0,
		     "the end of slot 0 changed when slot 1 was written");
	img = close_and_check_with_qemu(img, p, raw);
	cr_assert_eq(vdi_pread(img, got, sizeof(got), MiB - sizeof(a)), (ssize_t)sizeof(got));
	cr_assert_eq(memcmp(got, a, sizeof(a)), 0, "block 0's end after reopening");
	cr_assert_eq(vdi_pread(img, got, sizeof(got), 5 * MiB), (ssize_t)sizeof(got));
	cr_assert_eq(memcmp(got, b, sizeof(b)), 0, "block 5's start after reopening");
	vdi_close(img);
}

/* Whole-block writes into new slots of QEMU's layout: two blocks written
 * by one request are one run in the file; it goes out widened to whole
 * file-system blocks (one SQE) but for the part in the file-system block
 * the block map ends in (one more), and nothing is written synchronously.
 * Later writes into those slots are plain overwrites of their blocks. */
Test(interop, qemu_layout_whole_block_writes_go_out_whole)
{
	const char *p = tpath("fill3.vdi"), *raw = tpath("fill3.raw");
	unsigned char *w = malloc(2 * MiB), *got = malloc(2 * MiB);
	struct vdi_stats st0, st1;
	struct vdi_image *img = open_qemu_layout(p);

	data_area = peek32(p, 0x158);
	vdi_fault_set(&count_sync_hook);
	pattern(w, 2 * MiB, 70);
	vdi_get_stats(img, &st0);
	cr_assert_eq(vdi_pwrite(img, w, 2 * MiB, 2 * MiB), (ssize_t)(2 * MiB),
		     "%s", vdi_errmsg());
	vdi_get_stats(img, &st1);
	cr_assert_eq(st1.sqes - st1.meta_writes - (st0.sqes - st0.meta_writes), 2,
		     "%llu data SQEs for two new whole blocks",
		     (unsigned long long)(st1.sqes - st1.meta_writes -
					  (st0.sqes - st0.meta_writes)));
	/* A partial write into each afterwards: overwrites, two pieces each
	 * (the file-system blocks they straddle were written). */
	pattern(w + 4096, 4096, 71);
	cr_assert_eq(vdi_pwrite(img, w + 4096, 4096, 2 * MiB + 4096), 4096);
	pattern(w + MiB + 8192, 4096, 72);
	cr_assert_eq(vdi_pwrite(img, w + MiB + 8192, 4096, 3 * MiB + 8192), 4096);
	cr_assert_eq(vdi_pread(img, got, 2 * MiB, 2 * MiB), (ssize_t)(2 * MiB));
	cr_assert_eq(memcmp(got, w, 2 * MiB), 0, "blocks 2 and 3 read back wrong");
	pattern(got, 65536, 73);
	cr_assert_eq(vdi_pwrite(img, got, 65536, 5 * MiB + 4096), 65536);
	cr_assert_eq(vdi_pwrite(img, got, 4096, 6 * MiB + 4096), 4096);
	vdi_fault_set(NULL);
	cr_assert_eq(atomic_load(&sync_writes), 0,
		     "%d synchronous writes into new slots",
		     atomic_load(&sync_writes));
	img = close_and_check_with_qemu(img, p, raw);
	cr_assert_eq(vdi_pread(img, got, 2 * MiB, 2 * MiB), (ssize_t)(2 * MiB));
	cr_assert_eq(memcmp(got, w, 2 * MiB), 0, "blocks 2 and 3 after reopening");
	pattern(w, 65536, 73);
	cr_assert_eq(vdi_pread(img, got, 65536, 5 * MiB + 4096), 65536);
	cr_assert_eq(memcmp(got, w, 65536), 0, "block 5's 64 KiB after reopening");
	cr_assert_eq(vdi_pread(img, got, 4096, 6 * MiB + 4096), 4096);
	cr_assert_eq(memcmp(got, w, 4096), 0, "block 6's 4 KiB after reopening");
	vdi_close(img);
	free(w);
	free(got);
}

/* A thread with a write in flight on its own queue, not yet reaped, then
 * writes next to it through the synchronous call (another queue): the
 * second write shares a file-system block with the first, whose
 * completion only this thread can reap.  It must finish, not wait for
 * ever. */
Test(interop, qemu_layout_own_queue_unreaped_then_a_neighbour, .timeout = 30)
{
	const char *p = tpath("wideown.vdi"), *raw = tpath("wideown.raw");
	size_t len = 2 * MiB;
	unsigned char *model = calloc(1, len);
	struct vdi_image *img = open_qemu_layout(p);
	struct vdi_completion c;
	struct vdi_queue *q;

	cr_assert_eq(vdi_queue_create(img, 4, 0, &q), 0, "%s", vdi_errmsg());
	pattern(model + MiB + 4096, 4096, 90);
	cr_assert_eq(vdi_queue_write(q, model + MiB + 4096, 4096, MiB + 4096,
				     NULL), 0, "%s", vdi_errmsg());
	cr_assert_eq(vdi_queue_submit(q), 1);
	write_both(img, model, MiB + 8192, 4096, 91);
	write_both(img, model, MiB, 4096, 92);
	cr_assert_eq(vdi_queue_reap(q, &c, 1, 1, NULL), 1, "%s", vdi_errmsg());
	cr_assert_eq(c.res, 4096, "the queued write failed: %lld", (long long)c.res);
	vdi_queue_destroy(q);
	check_disk_then_qemu(img, p, raw, model, len);
}

/* Real images whose data area is not on a 4 KiB boundary: VirtualBox's of
 * 2009 (data at 0x400) and QEMU's of 2019 with a block QEMU wrote (data
 * at 0x2200).  A copy of each, opened with O_DIRECT, takes writes of
 * every size at 512-byte offsets into its first 4 MiB (new blocks, and
 * next to the block QEMU wrote): libvdi and QEMU read them back. */
Test(interop, real_images_of_the_512_byte_era_take_widened_writes)
{
	static const char *const names[] = {
		"pyVBox/TestHD-sunvbox-2009.vdi",
		"tritium-os/test-qemu-created-hdr384.vdi",
	};
	const char *dir = getenv("VDI_FIXTURES");
	size_t len = 4 * MiB;

	if (!dir || access(dir, R_OK) != 0)
		cr_skip_test("fixtures not found (VDI_FIXTURES=%s)", dir ? dir : "");
	need_qemu();
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *p = tpath("era.vdi"), *raw = tpath("era.raw");
		unsigned char *model = malloc(len);
		struct vdi_image *img;
		unsigned seed = 11 + (unsigned)i;
		int ret;

		cr_assert_eq(sh("cp %s/%s %s && chmod u+w %s", dir, names[i], p, p), 0);
		cr_assert_neq(peek32(p, 0x158) % 4096, 0, "%s: data area aligned",
			      names[i]);
		ret = vdi_open(p, VDI_OPEN_DIRECT, &img);
		if (ret == -EINVAL)
			cr_skip_test("this file system refuses O_DIRECT");
		cr_assert_eq(ret, 0, "%s", vdi_errmsg());
		cr_assert_eq(vdi_pread(img, model, len, 0), (ssize_t)len);
		for (int k = 0; k < 200; k++) {
			size_t n = 512 * (1 + rand_r(&seed) % 24);
			uint64_t off = 512 * (uint64_t)(rand_r(&seed) % ((len - n) / 512));

			write_both(img, model, off, n, 1000 * (i + 1) + (uint64_t)k);
		}
		check_disk_then_qemu(img, p, raw, model, len);
	}
}
