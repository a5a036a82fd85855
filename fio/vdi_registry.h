/* Process-wide registry of open VDI images for the fio engine.
 *
 * fio runs jobs as threads (thread=1) or as processes.  libvdi takes an
 * exclusive lock per open file description, so two handles on one image in
 * one process would lock each other out; and one handle per image is what
 * libvdi wants anyway (its block map is shared by all the queues made from
 * it).  The registry keeps one struct vdi_image per file, reference counted,
 * behind a mutex.  Each fio thread then makes its own vdi_queue from it.
 *
 * It also remembers which paths this process created or recreated, so that
 * vdi_recreate=1 replaces an image once per fio run, not once per job.
 *
 * Nothing here includes fio's headers: errors come back as a negative errno
 * with a message in the caller's buffer.
 */
#ifndef VDI_FIO_REGISTRY_H
#define VDI_FIO_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include <vdi.h>

struct vfio_create {
	uint64_t size;        /* virtual size for a new image */
	uint32_t block_size;  /* 0: libvdi's default */
	int fixed;            /* static (preallocated) image */
	int recreate;         /* replace an existing image */
	int may_create;       /* create the image when it is missing */
};

/* Make sure `path` exists as a VDI: create it when it is missing (and
 * `c->may_create`), or replace it when `c->recreate` and this process has
 * not created it yet.  *created tells whether this call made a new image.
 * Refuses to recreate an image this process has open, or that another
 * process has open (VDI_CREATE_REFUSE_IN_USE: QEMU's byte locks). */
int vfio_prepare(const char *path, const struct vfio_create *c, int *created,
		 char *err, size_t errlen);

/* The virtual size of the image at `path`, from the open handle when this
 * process has one, else from a short unlocked read-only open. */
int vfio_peek_size(const char *path, uint64_t *size, char *err,
		   size_t errlen);

/* Take a reference on the shared handle of `path`, opening it with
 * `flags` (VDI_OPEN_*) on first use.  A later caller that needs to write
 * gets -EROFS if the shared handle is read-only; one that differs in
 * VDI_OPEN_DIRECT shares the existing handle and is told so through
 * *flags_differ. */
int vfio_image_get(const char *path, unsigned flags, struct vdi_image **img,
		   int *flags_differ, char *err, size_t errlen);

/* Drop a reference; the last one closes the image.  Returns vdi_close()'s
 * result for the last reference, else 0. */
int vfio_image_put(struct vdi_image *img, char *err, size_t errlen);

#endif
