/* Synchronous file I/O: the one loop around pread and pwrite. */
#include "0-base/fileio.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "0-base/fault.h"

static int file_io(int fd, unsigned char *p, size_t len, uint64_t off,
		   unsigned how, bool write)
{
	while (len) {
		ssize_t n = write ? pwrite(fd, p, len, (off_t)off)
				  : pread(fd, p, len, (off_t)off);

		if (n < 0)
			n = -errno;
		if (how & VDI_FILE_SEAM)
			n = vdi_fault_filter(write ? VDI_IO_META : VDI_IO_READ,
					     off, write ? p : NULL, len, (int)n);
		if (n == -EINTR || n == -EAGAIN)
			continue;
		if (n < 0)
			return (int)n;
		if (n == 0) {
			if (write)
				return -EIO;
			if (!(how & VDI_FILE_ZEROS_AT_EOF))
				return -ENODATA;
			/* Past the end of the file: a hole reads as zeros. */
			memset(p, 0, len);
			return 0;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int vdi_file_read(int fd, void *buf, size_t len, uint64_t off, unsigned how)
{
	return file_io(fd, buf, len, off, how, false);
}

int vdi_file_write(int fd, const void *buf, size_t len, uint64_t off,
		   unsigned how)
{
	return file_io(fd, (unsigned char *)buf, len, off, how, true);
}
