/* The fault-injection seam.  Every I/O completion, from a ring or from a
 * synchronous call, passes through vdi_fault_filter() before the engine
 * acts on it; a test installs a hook that may replace the result with an
 * error (EIO, ENOSPC, EAGAIN, EINTR) or a short count.  Internal: tests
 * link the engine statically to reach it. */
#ifndef LIBVDI_FAULT_H
#define LIBVDI_FAULT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

enum vdi_io_kind {
	VDI_IO_READ,  /* data read */
	VDI_IO_WRITE, /* data write */
	VDI_IO_META,  /* block-map or header write */
	VDI_IO_FSYNC, /* fdatasync of a flush or close */
};

struct vdi_fault_hook {
	/* Return the result the engine should see instead of `res` for an
	 * I/O of `kind` at file offset `off` of `len` bytes.  For writes,
	 * `iov`/`iovcnt` hold the bytes that were written (so a test can
	 * record them, e.g. to replay a power cut); NULL otherwise. */
	int (*io)(void *opaque, enum vdi_io_kind kind, uint64_t off,
		  size_t len, const struct iovec *iov, int iovcnt, int res);
	void *opaque;
};

/* Install (or, with NULL, remove) the hook for the whole process. */
void vdi_fault_set(const struct vdi_fault_hook *hook);

extern const struct vdi_fault_hook *vdi_fault_hook;

static inline int vdi_fault_filter_iov(enum vdi_io_kind kind, uint64_t off,
				       size_t len, const struct iovec *iov,
				       int iovcnt, int res)
{
	const struct vdi_fault_hook *h = vdi_fault_hook;

	return h ? h->io(h->opaque, kind, off, len, iov, iovcnt, res) : res;
}

static inline int vdi_fault_filter(enum vdi_io_kind kind, uint64_t off,
				   const void *buf, size_t len, int res)
{
	struct iovec v = { (void *)buf, len };

	return vdi_fault_filter_iov(kind, off, len, buf ? &v : NULL,
				    buf ? 1 : 0, res);
}

#endif
