/* The inputs of vdi compare and vdi measure: a raw file or a VDI image
 * read through its parents, opened by format or by what its first bytes
 * say. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

/* A VDI image has its signature at 0x40; anything else is raw. */
static int probe(const char *path, bool *is_vdi)
{
	static const unsigned char sig[4] = { 0x7f, 0x10, 0xda, 0xbe };
	unsigned char b[4];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		die_msg("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	n = pread(fd, b, sizeof(b), 0x40);
	close(fd);
	*is_vdi = n == (ssize_t)sizeof(b) && !memcmp(b, sig, sizeof(sig));
	return 0;
}

int open_input(struct input *in, const char *path, int fmt)
{
	struct stat st;

	in->path = path;
	in->fd = -1;
	if (fmt < 0 && probe(path, &in->is_vdi) < 0)
		return -1;
	if (fmt >= 0)
		in->is_vdi = fmt;
	in->buf = malloc(INPUT_STEP);
	if (!in->buf) {
		die_msg("out of memory");
		return -1;
	}
	if (in->is_vdi) {
		if (open_chain(cli_command, path, NULL, VDI_OPEN_RDONLY, false,
			       &in->img) < 0)
			return -1;
		in->size = vdi_get_size(in->img);
		return 0;
	}
	in->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (in->fd < 0 || fstat(in->fd, &st) < 0) {
		die_msg("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	in->size = (uint64_t)st.st_size;
	return 0;
}

void close_input(struct input *in)
{
	if (in->fd >= 0)
		close(in->fd);
	vdi_close(in->img);
	free(in->buf);
}

/* How far from `off` (at most `max`) the allocation stays the same, and
 * whether data is stored there (qemu's "allocated"): a raw file stores
 * it everywhere, a VDI chain where some image holds a data block. */
int input_status(struct input *in, uint64_t off, uint64_t max,
		  uint64_t *len, bool *data)
{
	struct chain_extent ce;

	if (!in->is_vdi) {
		*len = max;
		*data = true;
		return 0;
	}
	if (chain_extent(cli_command, in->img, off, max, &ce) < 0)
		return -1;
	*len = ce.length;
	*data = ce.kind == VDI_EXTENT_DATA;
	return 0;
}

int input_read(struct input *in, uint64_t off, size_t len)
{
	ssize_t n;

	if (in->is_vdi) {
		n = vdi_pread(in->img, in->buf, len, off);
		if (n < 0) {
			lib_error((int)n, "%s: read at %" PRIu64,
				  in->path, off);
			return -1;
		}
		return 0;
	}
	for (size_t done = 0; done < len; done += (size_t)n) {
		n = pread(in->fd, in->buf + done, len - done,
			  (off_t)(off + done));
		if (n <= 0) {
			die_msg("%s: read at %" PRIu64 ": %s",
				in->path, off + done,
				n ? strerror(errno) : "unexpected end of file");
			return -1;
		}
	}
	return 0;
}

