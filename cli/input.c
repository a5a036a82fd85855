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
		in->layers = chain_length(in->img);
		in->layer_fd = malloc(in->layers * sizeof(*in->layer_fd));
		if (!in->layer_fd) {
			die_msg("out of memory");
			return -1;
		}
		for (unsigned i = 0; i < in->layers; i++)
			in->layer_fd[i] = -1;
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
	for (unsigned i = 0; in->layer_fd && i < in->layers; i++)
		if (in->layer_fd[i] >= 0)
			close(in->layer_fd[i]);
	free(in->layer_fd);
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


/* The hole or data run of `fd` at `off`, at most `max` bytes, as QEMU's
 * file driver finds it: a hole runs to the next data (or to the end), a
 * data run to the next hole; where the file system cannot tell, all is
 * data.  0 or -errno. */
static int file_run(int fd, uint64_t off, uint64_t max, uint64_t *len,
		    bool *hole)
{
	off_t data = lseek(fd, (off_t)off, SEEK_DATA), end;

	*hole = false;
	*len = max;
	if (data < 0 && errno == ENXIO) {
		*hole = true; /* a hole to the end, or past the end */
	} else if (data < 0) {
		return errno == EINVAL || errno == EOPNOTSUPP ? 0 : -errno;
	} else if ((uint64_t)data > off) {
		*hole = true;
		if ((uint64_t)data - off < max)
			*len = (uint64_t)data - off;
	} else {
		end = lseek(fd, (off_t)off, SEEK_HOLE);
		if (end < 0)
			return -errno;
		if ((uint64_t)end > off && (uint64_t)end - off < max)
			*len = (uint64_t)end - off;
	}
	return 0;
}

/* The status of a data block of the image at `depth` of the chain,
 * stored at `file_off`, for `*len` bytes: data; in a static image also
 * "zero" where the file has a hole or ends, as QEMU looks there (and
 * then the run ends where the file's does). */
static int vdi_data_status(struct input *in, struct vdi_image *img,
			   unsigned depth, uint64_t file_off, uint64_t *len,
			   unsigned *flags)
{
	struct vdi_info info;
	struct stat st;
	uint64_t run;
	bool hole;
	int ret;

	*flags = BLOCK_DATA | BLOCK_OFFSET_VALID;
	ret = vdi_get_info(img, &info);
	if (ret < 0) {
		lib_error(ret, "%s: %s", cli_command, vdi_get_filename(img));
		return -1;
	}
	if (info.type != VDI_TYPE_STATIC)
		return 0;
	if (in->layer_fd[depth] < 0) {
		in->layer_fd[depth] = open(vdi_get_filename(img),
					   O_RDONLY | O_CLOEXEC);
		if (in->layer_fd[depth] < 0) {
			die_msg("cannot open %s: %s", vdi_get_filename(img),
				strerror(errno));
			return -1;
		}
	}
	if (fstat(in->layer_fd[depth], &st) < 0) {
		die_msg("%s: fstat: %s", vdi_get_filename(img),
			strerror(errno));
		return -1;
	}
	if (file_off >= (uint64_t)st.st_size) {
		*flags |= BLOCK_ZERO; /* past the end: zeros, for all of it */
		return 0;
	}
	ret = file_run(in->layer_fd[depth], file_off, *len, &run, &hole);
	if (ret < 0) {
		die_msg("%s: SEEK_DATA/SEEK_HOLE at %" PRIu64 ": %s",
			vdi_get_filename(img), file_off, strerror(-ret));
		return -1;
	}
	/* A hole reaching the end of the file: zeros to the end of the
	 * block, past the end of the file too. */
	if (hole && file_off + run >= (uint64_t)st.st_size)
		run = *len;
	if (hole)
		*flags |= BLOCK_ZERO;
	*len = run;
	return 0;
}

int input_block_status(struct input *in, uint64_t off, uint64_t *len,
		       unsigned *flags)
{
	uint64_t max = in->size - off;

	if (!in->is_vdi) {
		bool hole;
		int ret = file_run(in->fd, off, max, len, &hole);

		if (ret < 0) {
			die_msg("%s: SEEK_DATA/SEEK_HOLE at %" PRIu64 ": %s",
				in->path, off, strerror(-ret));
			return -1;
		}
		*flags = (hole ? BLOCK_ZERO : BLOCK_DATA) | BLOCK_OFFSET_VALID;
	} else {
		struct chain_extent ce;
		struct vdi_info info;
		uint64_t block_end;
		int ret = vdi_get_info(in->img, &info);

		if (ret < 0) {
			lib_error(ret, "%s: %s", cli_command, in->path);
			return -1;
		}
		/* QEMU's VDI driver answers one block at a time. */
		block_end = (off / info.block_size + 1) * info.block_size;
		if (block_end - off < max)
			max = block_end - off;
		if (chain_extent(cli_command, in->img, off, max, &ce) < 0)
			return -1;
		*len = ce.length;
		*flags = BLOCK_ZERO;
		if ((ce.kind == VDI_EXTENT_DATA || ce.kind == VDI_EXTENT_BAD) &&
		    vdi_data_status(in, ce.img, ce.depth, ce.file_offset, len,
				    flags) < 0)
			return -1;
	}
	if (off + *len >= in->size)
		*flags |= BLOCK_EOF;
	return 0;
}
