/* Shared between the files of the fio engine: per-thread and per-file
 * state, and how the engine talks to the user.  Includes fio's headers, so
 * only the engine's own files may include it. */
#ifndef VDI_FIO_ENGINE_H
#define VDI_FIO_ENGINE_H

#include <stdbool.h>

#include <vdi.h>

#include "fio.h"

/* Engine options.  fio stores the thread_data pointer in the first member,
 * so it must be a pointer, and no option may live at offset 0. */
struct vdi_fio_options {
	void *td;
	unsigned int recreate;
	unsigned int fixed;
	unsigned long long block_size;
	unsigned int sqpoll;
	unsigned int iopoll;
	unsigned int fixedbufs;
	unsigned int stats;
};

/* One open image of one fio thread: f->engine_data. */
struct vdi_fio_file {
	struct vdi_image *img;
	struct vdi_queue *q;
	unsigned queued;   /* queued since the last vdi_queue_submit() */
	bool fixedbufs;    /* fio's buffers are registered with q */
};

/* Per fio thread: td->io_ops_data. */
struct vdi_fio_data {
	unsigned depth;
	struct vdi_completion *events; /* filled by ->getevents */
	struct io_u **pending;         /* queued, issue time not stamped yet */
	unsigned nr_pending;
	unsigned noted;                /* NOTE_* already printed */
};

/* Notes printed once per fio thread, not on every (re)open of a file. */
enum {
	NOTE_SQPOLL = 1 << 1,
	NOTE_IOPOLL_DIRECT = 1 << 2,
	NOTE_IOPOLL_DEVICE = 1 << 3,
	NOTE_IOPOLL_REFUSED = 1 << 4,
	NOTE_FIXEDBUFS = 1 << 5,
	NOTE_SHARED_DIRECT = 1 << 6,
	NOTE_IO_ERROR = 1 << 7,
	NOTE_MODES = 1 << 8,
};

/* Warnings and notes go to stderr: stdout may carry fio's JSON output. */
#define vdi_note(fmt, ...) log_err("fio: vdi: " fmt "\n", ##__VA_ARGS__)
#define vdi_note_once(d, bit, fmt, ...)				\
	do {							\
		if (!((d)->noted & (bit))) {			\
			(d)->noted |= (bit);			\
			vdi_note(fmt, ##__VA_ARGS__);		\
		}						\
	} while (0)

static inline struct vdi_fio_options *vdi_opts(struct thread_data *td)
{
	return td->eo;
}

/* vdi_io.c: the request path. */
enum fio_q_status vdi_fio_queue(struct thread_data *td, struct io_u *io_u);
int vdi_fio_commit(struct thread_data *td);
int vdi_fio_getevents(struct thread_data *td, unsigned int min,
		      unsigned int max, const struct timespec *t);
struct io_u *vdi_fio_event(struct thread_data *td, int event);

#endif
