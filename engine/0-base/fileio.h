/* Synchronous file I/O that finishes what it starts: every pread and pwrite
 * of the engine outside the rings (opening an image, write-back at close,
 * copy-up, the offline operations, vdi_create) goes through here.
 * Internal. */
#ifndef LIBVDI_FILEIO_H
#define LIBVDI_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* How a transfer is made (or-ed together). */
enum {
	/* Each transfer's result passes the fault seam (0-base/fault.h):
	 * reads as VDI_IO_READ, writes as VDI_IO_META. */
	VDI_FILE_SEAM = 1u << 0,
	/* A read that meets the end of the file gives zeros for the rest
	 * (without it: -ENODATA). */
	VDI_FILE_ZEROS_AT_EOF = 1u << 1,
};

/* Read or write all of [off, off + len): short transfers go on from where
 * they stopped, EINTR and EAGAIN are retried.  0 or -errno; a write that
 * makes no progress is -EIO. */
int vdi_file_read(int fd, void *buf, size_t len, uint64_t off, unsigned how);
int vdi_file_write(int fd, const void *buf, size_t len, uint64_t off,
		   unsigned how);

#endif
