/* vdi convert: the two ends of a copy behind one table of operations, so
 * the pipeline in cmd_convert.c does not care whether it reads or writes a
 * raw file (its own io_uring, endpoint_raw.c) or a VDI image (a vdi_queue,
 * endpoint_vdi.c); and the temporary destination file (tmpfile.c). */
#ifndef VDI_CLI_CONVERT_H
#define VDI_CLI_CONVERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <vdi.h>

struct endpoint;

struct endpoint_ops {
	/* Queue one request; -EAGAIN when `depth` are already queued or in
	 * flight.  Nothing reaches the kernel before submit(). */
	int (*read)(struct endpoint *ep, void *buf, size_t len, uint64_t off,
		    void *tag);
	int (*write)(struct endpoint *ep, const void *buf, size_t len,
		     uint64_t off, void *tag);
	int (*submit)(struct endpoint *ep);
	/* Reap up to `max` completions, waiting for `min` (0 or 1). */
	int (*reap)(struct endpoint *ep, struct vdi_completion *out,
		    unsigned min, unsigned max);
	unsigned (*pending)(const struct endpoint *ep);
	/* At `off`: the length of the run that either reads as zeros
	 * (*zero true: nothing to copy) or may hold data. */
	int (*extent)(struct endpoint *ep, uint64_t off, uint64_t *len,
		      bool *zero);
	/* Wait for everything in flight, make the writes durable and free
	 * the endpoint.  Returns 0 or -errno (after a message). */
	int (*finish)(struct endpoint *ep);
	/* Free the endpoint without caring about errors (on failure). */
	void (*abort)(struct endpoint *ep);
};

struct endpoint {
	const struct endpoint_ops *ops;
	const char *path;  /* for messages */
	uint64_t size;     /* virtual size in bytes */
};

enum image_format { FORMAT_PROBE, FORMAT_RAW, FORMAT_VDI };

/* Sources.  Messages are printed here; the return value is 0 or -1.  A
 * VDI source that is a differencing image is read through its parents;
 * `parents` names its parents (-b; NULL or none: the library looks next
 * to each image). */
struct parents;
int raw_open_source(const char *path, unsigned depth, struct endpoint **out);
int vdi_open_source(const char *path, const struct parents *parents,
		    unsigned depth,
		    struct endpoint **out);
/* Destinations, on a file that tmpfile.c made.  For raw: `fd` is the empty
 * temporary file, truncated here to `size`; `path` names it in messages.
 * For VDI: the image that vdi_create() made at `path`. */
int raw_open_dest(const char *path, int fd, uint64_t size, unsigned depth,
		  struct endpoint **out);
int vdi_open_dest(const char *path, unsigned depth, struct endpoint **out);
/* The image (the top of the chain) behind a VDI endpoint. */
struct vdi_image *vdi_endpoint_image(const struct endpoint *ep);

/* ---- The temporary destination (tmpfile.c) ---- */

/* Reserve a temporary name next to `dst` (created empty, mode 0666 less
 * the umask) and arm the handlers that delete it on SIGINT, SIGTERM and
 * SIGHUP.  Returns the open file descriptor or -1 after a message. */
int tmpfile_create(const char *dst);
/* The temporary file's name, while there is one. */
const char *tmpfile_path(void);
/* Run vdi_create() on the temporary name with the signals held, so an
 * interrupt cannot leave the library's own temporary file behind. */
int tmpfile_vdi_create(uint64_t size, const struct vdi_create_opts *opts);
/* Give the temporary file the permissions `mode`.  0 or -1 after a
 * message. */
int tmpfile_chmod(mode_t mode);
/* Rename the temporary file to `dst` and sync the directory.  Returns 0,
 * or -1 after a message (the temporary file is then deleted). */
int tmpfile_commit(const char *dst);
/* Delete the temporary file (on failure). */
void tmpfile_discard(void);

#endif
