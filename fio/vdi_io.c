/* The request path of the fio engine: ->queue, ->commit, ->getevents and
 * ->event over libvdi's queues.  See vdi_engine.c for the rest. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "vdi_engine.h"

enum fio_q_status vdi_fio_queue(struct thread_data *td, struct io_u *io_u)
{
	struct vdi_fio_data *d = td->io_ops_data;
	struct vdi_fio_file *vf = FILE_ENG_DATA(io_u->file);
	int ret;

	fio_ro_check(td, io_u);

	if (d->nr_pending == d->depth)
		return FIO_Q_BUSY;

	switch (io_u->ddir) {
	case DDIR_READ:
		if (vf->fixedbufs)
			ret = vdi_queue_read_fixed(vf->q, io_u->xfer_buf, io_u->xfer_buflen,
						   io_u->offset, io_u->index, io_u);
		else
			ret = vdi_queue_read(vf->q, io_u->xfer_buf, io_u->xfer_buflen,
					     io_u->offset, io_u);
		break;
	case DDIR_WRITE:
		if (vf->fixedbufs)
			ret = vdi_queue_write_fixed(vf->q, io_u->xfer_buf, io_u->xfer_buflen,
						    io_u->offset, io_u->index, io_u);
		else
			ret = vdi_queue_write(vf->q, io_u->xfer_buf, io_u->xfer_buflen,
					      io_u->offset, io_u);
		break;
	case DDIR_SYNC:
	case DDIR_DATASYNC:
	case DDIR_SYNC_FILE_RANGE:
		/* A VDI flush makes data and the block map durable together;
		 * there is nothing weaker to offer. */
		ret = vdi_queue_flush(vf->q, io_u);
		break;
	case DDIR_TRIM:
		/* Whole blocks become zero entries and give their space
		 * back; parts of blocks read as zeros afterwards. */
		ret = vdi_queue_discard(vf->q, io_u->offset, io_u->xfer_buflen,
					io_u);
		break;
	default:
		io_u->error = EINVAL;
		return FIO_Q_COMPLETED;
	}

	if (ret == -EAGAIN)
		return FIO_Q_BUSY;
	if (ret < 0) {
		io_u->error = -ret;
		return FIO_Q_COMPLETED;
	}
	vf->queued++;
	d->pending[d->nr_pending++] = io_u;
	return FIO_Q_QUEUED;
}

/* Stamp the issue time of the io_us just submitted, as fio does for
 * synchronous engines at ->queue: the submission latency (slat) then ends
 * when the request really went to the kernel. */
static void vdi_fio_stamp(struct thread_data *td, struct vdi_fio_data *d)
{
	struct timespec now;
	unsigned i;

	if (fio_fill_issue_time(td)) {
		fio_gettime(&now, NULL);
		for (i = 0; i < d->nr_pending; i++) {
			memcpy(&d->pending[i]->issue_time, &now, sizeof(now));
			io_u_queued(td, d->pending[i]);
		}
		if (td->o.read_iolog_file)
			memcpy(&td->last_issue, &now, sizeof(now));
	}
	io_u_mark_submit(td, d->nr_pending);
	d->nr_pending = 0;
}

/* vdi_fio_commit with requests queued.  Not inlined: fio calls ->commit
 * about twice per I/O, and the call with nothing to do should not pay for
 * this one's registers. */
static __attribute__((noinline)) int commit_pending(struct thread_data *td,
						    struct vdi_fio_data *d)
{
	struct fio_file *f;
	unsigned i;
	int ret = 0, r;

	for_each_file(td, f, i) {
		struct vdi_fio_file *vf = FILE_ENG_DATA(f);

		if (!vf || !vf->queued)
			continue;
		r = vdi_queue_submit(vf->q);
		if (r < 0) {
			vdi_note("%s: %s", f->file_name, vdi_errmsg());
			td_verror(td, -r, "vdi_queue_submit");
			ret = r;
			continue;
		}
		vf->queued = 0;
	}
	vdi_fio_stamp(td, d);
	return ret;
}

int vdi_fio_commit(struct thread_data *td)
{
	struct vdi_fio_data *d = td->io_ops_data;

	return d->nr_pending ? commit_pending(td, d) : 0;
}

static void ts_add(struct timespec *t, const struct timespec *d)
{
	t->tv_sec += d->tv_sec;
	t->tv_nsec += d->tv_nsec;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

/* Time left until `deadline`; false when it has passed. */
static bool ts_left(const struct timespec *deadline, struct timespec *left)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	left->tv_sec = deadline->tv_sec - now.tv_sec;
	left->tv_nsec = deadline->tv_nsec - now.tv_nsec;
	if (left->tv_nsec < 0) {
		left->tv_sec--;
		left->tv_nsec += 1000000000L;
	}
	return left->tv_sec >= 0;
}

int vdi_fio_getevents(struct thread_data *td, unsigned int min,
		      unsigned int max, const struct timespec *t)
{
	struct vdi_fio_data *d = td->io_ops_data;
	struct vdi_fio_file *busy, *only = NULL;
	struct timespec deadline, left;
	struct fio_file *f;
	unsigned events = 0, nbusy = 0, i;
	int r;

	if (max > d->depth)
		max = d->depth;
	if (min > max)
		min = max;

	for_each_file(td, f, i) {
		struct vdi_fio_file *vf = FILE_ENG_DATA(f);

		if (vf && vdi_queue_pending(vf->q)) {
			only = vf;
			nbusy++;
		}
	}
	if (!nbusy)
		return 0;

	/* One image with requests in flight (the usual case): one call that
	 * waits in the kernel for `min` completions or the timeout. */
	if (nbusy == 1) {
		do
			r = vdi_queue_reap(only->q, d->events, min, max, t);
		while (r == -EINTR);
		if (r < 0) {
			vdi_note("%s", vdi_errmsg());
			td_verror(td, -r, "vdi_queue_reap");
		}
		return r;
	}

	/* Several images: take what is ready on each, then wait on one that
	 * has requests in flight for the rest, until `min` or the deadline. */
	if (t) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		ts_add(&deadline, t);
	}
	for (;;) {
		busy = NULL;
		for_each_file(td, f, i) {
			struct vdi_fio_file *vf = FILE_ENG_DATA(f);

			if (!vf || !vdi_queue_pending(vf->q) || events == max)
				continue;
			r = vdi_queue_reap(vf->q, d->events + events, 0, max - events, NULL);
			if (r < 0 && r != -EINTR)
				goto out_err;
			if (r > 0)
				events += r;
			if (vdi_queue_pending(vf->q))
				busy = vf;
		}
		if (events >= min || !busy)
			break;
		if (t && !ts_left(&deadline, &left))
			break;
		r = vdi_queue_reap(busy->q, d->events + events, 1, max - events,
				   t ? &left : NULL);
		if (r < 0 && r != -EINTR)
			goto out_err;
		if (r > 0)
			events += r;
	}
	return events;

out_err:
	vdi_note("%s", vdi_errmsg());
	td_verror(td, -r, "vdi_queue_reap");
	return r;
}

struct io_u *vdi_fio_event(struct thread_data *td, int event)
{
	struct vdi_fio_data *d = td->io_ops_data;
	struct vdi_completion *c = &d->events[event];
	struct io_u *io_u = c->tag;

	if (c->res < 0) {
		io_u->error = (unsigned)-c->res;
		/* fio names only the errno: say once what libvdi said. */
		if (*vdi_errmsg())
			vdi_note_once(d, NOTE_IO_ERROR, "%s", vdi_errmsg());
	} else if (ddir_rw(io_u->ddir) && (unsigned long long)c->res != io_u->xfer_buflen) {
		if ((unsigned long long)c->res > io_u->xfer_buflen)
			io_u->error = EIO;
		else
			io_u->resid = io_u->xfer_buflen - c->res;
	} else {
		io_u->error = 0;
	}
	return io_u;
}
