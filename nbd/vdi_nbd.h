/* The nbdkit plugin that serves VDI images: what its parts share.
 * vdi_nbd.c configures, opens the image and answers what the export can
 * do; vdi_nbd_io.c carries the requests over libvdi's queues;
 * vdi_nbd_map.c answers extents from the block map. */
#ifndef LIBVDI_NBD_H
#define LIBVDI_NBD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <vdi.h>

/* The image: opened once per nbdkit process, before it forks, and shared
 * by every connection (so one OFD lock covers the process, and a flush on
 * any connection covers the writes of all). */
extern struct vdi_image *vdi_nbd_img;
extern bool vdi_nbd_readonly;
extern bool vdi_nbd_static;

/* One NBD connection.  Each nbdkit thread that serves it gets its own
 * queue on first use; all of them are destroyed when it closes. */
struct vdi_nbd_conn {
	uint64_t id;             /* never reused: tells threads' queues apart */
	pthread_mutex_t lock;    /* guards `queues` */
	struct vdi_nbd_qnode *queues;
};

struct vdi_nbd_conn *vdi_nbd_conn_new(void);
void vdi_nbd_conn_free(struct vdi_nbd_conn *c);
/* Wait up to `ms` for every connection to be closed; true if none is
 * left open. */
bool vdi_nbd_conns_wait(unsigned ms);

/* The data path (callbacks of struct nbdkit_plugin, API version 2). */
int vdi_nbd_pread(void *h, void *buf, uint32_t count, uint64_t offset,
		  uint32_t flags);
int vdi_nbd_pwrite(void *h, const void *buf, uint32_t count,
		   uint64_t offset, uint32_t flags);
int vdi_nbd_flush(void *h, uint32_t flags);
int vdi_nbd_trim(void *h, uint32_t count, uint64_t offset, uint32_t flags);
int vdi_nbd_zero(void *h, uint32_t count, uint64_t offset, uint32_t flags);
/* Log a failed request ("what of count bytes at offset: msg") and set
 * the NBD error for libvdi's `err`; -1. */
int vdi_nbd_fail(int err, const char *msg, const char *what, uint64_t count,
		 uint64_t offset);

/* Extents (vdi_nbd_map.c): the container files of static images are
 * opened for SEEK_DATA/SEEK_HOLE once the image is open. */
int vdi_nbd_map_open(void);
void vdi_nbd_map_close(void);
struct nbdkit_extents;
int vdi_nbd_extents(void *h, uint32_t count, uint64_t offset, uint32_t flags,
		    struct nbdkit_extents *extents);

#endif /* LIBVDI_NBD_H */
