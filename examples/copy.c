/* copy: copy a virtual disk between a VDI image and a raw file with the
 * synchronous calls vdi_pread() and vdi_pwrite().
 *
 *   copy IMAGE.vdi FILE      the image's virtual disk into a new raw FILE
 *   copy FILE IMAGE.vdi      a raw FILE into a new dynamic IMAGE.vdi
 *
 * The argument whose name ends in ".vdi" is the image.  The destination
 * must not exist.  Chunks that are all zeros are not written, so they stay
 * unallocated blocks in the image and holes in the raw file.
 *
 * Build against an installed libvdi with
 *   cc -o copy copy.c $(pkg-config --cflags --libs libvdi)
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vdi.h>

#define CHUNK (1u << 20)

static int ends_with_vdi(const char *s)
{
	size_t n = strlen(s);

	return n > 4 && strcmp(s + n - 4, ".vdi") == 0;
}

static int all_zero(const unsigned char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Read exactly n bytes of a raw file (fewer only at its end). */
static ssize_t read_raw(int fd, unsigned char *p, size_t n, off_t off)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = pread(fd, p + done, n - done, off + (off_t)done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

static int write_raw(int fd, const unsigned char *p, size_t n, off_t off)
{
	while (n) {
		ssize_t r = pwrite(fd, p, n, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		p += r;
		n -= (size_t)r;
		off += r;
	}
	return 0;
}

static int vdi_to_raw(const char *src, const char *dst, unsigned char *buf)
{
	struct vdi_image *img;
	uint64_t size, off;
	int fd, ret = 1;

	if (vdi_open(src, VDI_OPEN_RDONLY, &img) < 0) {
		fprintf(stderr, "copy: %s\n", vdi_errmsg());
		return 1;
	}
	size = vdi_get_size(img);
	fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd < 0) {
		fprintf(stderr, "copy: %s: %s\n", dst, strerror(errno));
		goto out_close;
	}
	/* Size the file first: the chunks skipped below stay holes. */
	if (ftruncate(fd, (off_t)size) < 0) {
		fprintf(stderr, "copy: %s: %s\n", dst, strerror(errno));
		goto out_unlink;
	}
	for (off = 0; off < size; off += CHUNK) {
		size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
		ssize_t r = vdi_pread(img, buf, n, off);

		if (r < 0) {
			fprintf(stderr, "copy: %s\n", vdi_errmsg());
			goto out_unlink;
		}
		if (!all_zero(buf, n) && write_raw(fd, buf, n, (off_t)off) < 0) {
			fprintf(stderr, "copy: %s: %s\n", dst, strerror(errno));
			goto out_unlink;
		}
	}
	if (fsync(fd) < 0) {
		fprintf(stderr, "copy: %s: %s\n", dst, strerror(errno));
		goto out_unlink;
	}
	ret = 0;
out_unlink:
	if (close(fd) < 0 && ret == 0) {
		fprintf(stderr, "copy: %s: %s\n", dst, strerror(errno));
		ret = 1;
	}
	if (ret)
		unlink(dst);
out_close:
	vdi_close(img); /* read-only: nothing to write back */
	return ret;
}

static int raw_to_vdi(const char *src, const char *dst, unsigned char *buf)
{
	struct vdi_image *img;
	struct stat st;
	uint64_t off;
	int fd, ret = 1;

	fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "copy: %s: %s\n", src, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	/* NULL options: a dynamic image with 1 MiB blocks, and the call
	 * refuses to replace an existing file.  The size is rounded up to a
	 * multiple of 512. */
	if (vdi_create(dst, (uint64_t)st.st_size, NULL) < 0) {
		fprintf(stderr, "copy: %s\n", vdi_errmsg());
		close(fd);
		return 1;
	}
	if (vdi_open(dst, 0, &img) < 0) {
		fprintf(stderr, "copy: %s\n", vdi_errmsg());
		unlink(dst);
		close(fd);
		return 1;
	}
	for (off = 0; off < (uint64_t)st.st_size; off += CHUNK) {
		ssize_t n = read_raw(fd, buf, CHUNK, (off_t)off);

		if (n < 0) {
			fprintf(stderr, "copy: %s: %s\n", src, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (!all_zero(buf, (size_t)n) &&
		    vdi_pwrite(img, buf, (size_t)n, off) < 0) {
			fprintf(stderr, "copy: %s\n", vdi_errmsg());
			goto out;
		}
	}
	/* Make the data and the block map durable before saying so. */
	if (vdi_flush(img) < 0) {
		fprintf(stderr, "copy: %s\n", vdi_errmsg());
		goto out;
	}
	ret = 0;
out:
	/* vdi_close() writes back what is pending: its result counts. */
	if (vdi_close(img) < 0 && ret == 0) {
		fprintf(stderr, "copy: %s\n", vdi_errmsg());
		ret = 1;
	}
	if (ret)
		unlink(dst);
	close(fd);
	return ret;
}

int main(int argc, char **argv)
{
	unsigned char *buf;
	int ret;

	if (argc != 3 || ends_with_vdi(argv[1]) == ends_with_vdi(argv[2])) {
		fprintf(stderr, "usage: copy IMAGE.vdi FILE\n"
				"       copy FILE IMAGE.vdi\n");
		return 2;
	}
	buf = malloc(CHUNK);
	if (!buf) {
		fprintf(stderr, "copy: out of memory\n");
		return 1;
	}
	if (ends_with_vdi(argv[1]))
		ret = vdi_to_raw(argv[1], argv[2], buf);
	else
		ret = raw_to_vdi(argv[1], argv[2], buf);
	free(buf);
	return ret;
}
