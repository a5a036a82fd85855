/* fio engine for VirtualBox Disk Images, on libvdi's asynchronous queues.
 *
 *   fio --ioengine=external:/path/to/vdi.so --filename=disk.vdi ...
 *
 * The job's file is a VDI image; fio's offsets are offsets in the virtual
 * disk.  Each fio thread (or process) has its own vdi_queue per open image,
 * and all threads of one process share the image handle (vdi_registry.c).
 *
 * Request flow, as fio drives an asynchronous engine (vdi_io.c):
 *   ->queue      puts the io_u on the vdi_queue with the io_u as its tag
 *   ->commit     vdi_queue_submit(); the issue time of every io_u queued
 *                since the last commit is stamped here, at real submission
 *   ->getevents  vdi_queue_reap() with fio's min, max and timeout
 *   ->event      turns a vdi_completion back into the io_u
 *
 * The engine is DISKLESSIO: fio never opens, lays out, extends, pre-reads or
 * invalidates the container file itself; ->get_file_size reports the virtual
 * disk size, creating the image first when it is missing.  See
 * docs/fio-engine.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "vdi_engine.h"
#include "optgroup.h"
#include "vdi_registry.h"

#define VDI_FIO_PUBLIC __attribute__((visibility("default")))

static struct fio_option vdi_fio_opts[] = {
	{
		.name	= "vdi_recreate",
		.lname	= "Recreate the VDI image",
		.type	= FIO_OPT_STR_SET,
		.off1	= offsetof(struct vdi_fio_options, recreate),
		.help	= "Replace the image with a fresh one at the start of the run",
		.category = FIO_OPT_C_ENGINE,
		.group	= FIO_OPT_G_INVALID,
	},
	{
		.name	= "vdi_static",
		.lname	= "Create a static VDI",
		.type	= FIO_OPT_STR_SET,
		.off1	= offsetof(struct vdi_fio_options, fixed),
		.help	= "Create images as static (fully preallocated) VDIs",
		.category = FIO_OPT_C_ENGINE,
		.group	= FIO_OPT_G_INVALID,
	},
	{
		.name	= "vdi_block_size",
		.lname	= "VDI block size",
		.type	= FIO_OPT_STR_VAL,
		.off1	= offsetof(struct vdi_fio_options, block_size),
		.help	= "Block size of images the engine creates (power of two, 128k..128m)",
		.def	= "0",
		.category = FIO_OPT_C_ENGINE,
		.group	= FIO_OPT_G_INVALID,
	},
	{
		.name	= "vdi_sqpoll",
		.lname	= "SQPOLL queues",
		.type	= FIO_OPT_STR_SET,
		.off1	= offsetof(struct vdi_fio_options, sqpoll),
		.help	= "Ask for a kernel thread polling the submission queue",
		.category = FIO_OPT_C_ENGINE,
		.group	= FIO_OPT_G_INVALID,
	},
	{
		.name	= "vdi_iopoll",
		.lname	= "IOPOLL queues",
		.type	= FIO_OPT_STR_SET,
		.off1	= offsetof(struct vdi_fio_options, iopoll),
		.help	= "Ask for polled completions (needs direct=1)",
		.category = FIO_OPT_C_ENGINE,
		.group	= FIO_OPT_G_INVALID,
	},
	{
		.name	= "vdi_fixedbufs",
		.lname	= "Registered buffers",
		.type	= FIO_OPT_STR_SET,
		.off1	= offsetof(struct vdi_fio_options, fixedbufs),
		.help	= "Register fio's I/O buffers with the ring",
		.category = FIO_OPT_C_ENGINE,
		.group	= FIO_OPT_G_INVALID,
	},
	{
		.name	= "vdi_stats",
		.lname	= "Print libvdi statistics",
		.type	= FIO_OPT_STR_SET,
		.off1	= offsetof(struct vdi_fio_options, stats),
		.help	= "Print libvdi's counters (SQEs, syscalls, metadata writes) at close",
		.category = FIO_OPT_C_ENGINE,
		.group	= FIO_OPT_G_INVALID,
	},
	{
		.name	= NULL,
	},
};


/* ---- setup ---------------------------------------------------------------- */

static int vdi_fio_init(struct thread_data *td)
{
	struct vdi_fio_options *o = vdi_opts(td);
	struct vdi_fio_data *d;
	unsigned long long bs = o->block_size;

	if (td->o.pre_read) {
		vdi_note("pre_read is not supported: fio would read the container file, not the virtual disk");
		return 1;
	}
	if (bs && ((bs & (bs - 1)) || bs < VDI_MIN_BLOCK_SIZE || bs > VDI_MAX_BLOCK_SIZE)) {
		vdi_note("vdi_block_size=%llu is not a power of two between %u and %u",
			 bs, VDI_MIN_BLOCK_SIZE, VDI_MAX_BLOCK_SIZE);
		return 1;
	}

	d = calloc(1, sizeof(*d));
	if (!d)
		goto out_nomem;
	d->depth = td->o.iodepth ? td->o.iodepth : 1;
	d->events = calloc(d->depth, sizeof(*d->events));
	d->pending = calloc(d->depth, sizeof(*d->pending));
	if (!d->events || !d->pending)
		goto out_free;
	td->io_ops_data = d;
	return 0;

out_free:
	free(d->events);
	free(d->pending);
	free(d);
out_nomem:
	td_verror(td, ENOMEM, "vdi init");
	return 1;
}

static void vdi_fio_cleanup(struct thread_data *td)
{
	struct vdi_fio_data *d = td->io_ops_data;

	if (!d)
		return;
	free(d->events);
	free(d->pending);
	free(d);
	td->io_ops_data = NULL;
}

/* The virtual size a new image needs so that every job of this section
 * fits: its start offset (the last subjob's, with offset_increment) plus its
 * size per file.  0 when the job gives no size. */
static uint64_t vdi_job_extent(struct thread_data *td)
{
	struct thread_options *o = &td->o;
	uint64_t per_file, start = 0, incr = 0;

	if (o->file_size_high)
		per_file = o->file_size_high;
	else if (o->nr_files > 1)
		per_file = o->size / o->nr_files;
	else
		per_file = o->size;
	if (!per_file)
		return 0;
	if (!o->start_offset_percent)
		start = o->start_offset;
	if (!o->offset_increment_percent)
		incr = o->offset_increment;
	if (o->numjobs > 1)
		start += (uint64_t)(o->numjobs - 1) * incr;
	return start + per_file;
}

/* Runs in fio's setup phase (in the parent process unless
 * create_serialize=0), before any job does I/O: create or recreate the
 * image, then report the virtual disk's size. */
static int vdi_fio_get_file_size(struct thread_data *td, struct fio_file *f)
{
	struct vdi_fio_options *o = vdi_opts(td);
	struct vfio_create c;
	char err[512];
	uint64_t size;
	int created, ret;

	if (fio_file_size_known(f))
		return 0;

	memset(&c, 0, sizeof(c));
	c.size = vdi_job_extent(td);
	c.block_size = (uint32_t)o->block_size;
	c.fixed = o->fixed;
	c.recreate = o->recreate && !read_only;
	c.may_create = td->o.allow_create && !read_only;
	ret = vfio_prepare(f->file_name, &c, &created, err, sizeof(err));
	if (ret < 0) {
		vdi_note("%s", err);
		td_verror(td, -ret, "vdi create");
		return 1;
	}
	if (created)
		vdi_note("created %s: %s VDI of %llu bytes, block size %u",
			 f->file_name, c.fixed ? "static" : "dynamic",
			 (unsigned long long)c.size,
			 c.block_size ? c.block_size : VDI_DEFAULT_BLOCK_SIZE);

	ret = vfio_peek_size(f->file_name, &size, err, sizeof(err));
	if (ret < 0) {
		vdi_note("%s", err);
		td_verror(td, -ret, "vdi size");
		return 1;
	}
	f->real_file_size = size;
	fio_file_set_size_known(f);
	return 0;
}

/* ---- open and close ------------------------------------------------------------ */

static void vdi_fio_register_buffers(struct thread_data *td, struct fio_file *f,
				     struct vdi_fio_file *vf)
{
	struct vdi_fio_data *d = td->io_ops_data;
	unsigned nr = td->io_u_all.nr, i;
	struct iovec *iov;
	int ret;

	iov = calloc(nr ? nr : 1, sizeof(*iov));
	if (!iov) {
		vdi_note_once(d, NOTE_FIXEDBUFS,
			      "%s: vdi_fixedbufs: out of memory; using normal reads and writes",
			      f->file_name);
		return;
	}
	for (i = 0; i < nr; i++) {
		struct io_u *io_u = td->io_u_all.io_us[i];

		if (io_u->index >= nr || !io_u->buf) {
			vdi_note_once(d, NOTE_FIXEDBUFS,
				      "%s: vdi_fixedbufs: unexpected io_u layout; using normal reads and writes",
				      f->file_name);
			goto out_free;
		}
		iov[io_u->index].iov_base = io_u->buf;
		iov[io_u->index].iov_len = td_max_bs(td);
	}
	ret = vdi_queue_register_buffers(vf->q, iov, nr);
	if (ret < 0)
		vdi_note_once(d, NOTE_FIXEDBUFS,
			      "%s: the kernel refused to register the buffers (%s); "
			      "using normal reads and writes", f->file_name, vdi_errmsg());
	else
		vf->fixedbufs = true;
out_free:
	free(iov);
}

/* Whether the block device under `path` completes polled I/O: its
 * queue/io_poll in sysfs is 1.  io_uring accepts IORING_SETUP_IOPOLL on any
 * file, but on a device without poll queues every polled read then fails
 * with EOPNOTSUPP, and vdi_queue_flags() cannot tell. */
static bool vdi_dev_polls(const char *path)
{
	char sys[128], buf[8];
	struct stat st;
	FILE *fp;
	bool polls = false;
	int i;

	if (stat(path, &st) < 0 || !major(st.st_dev))
		return false;
	/* A partition's queue/ is its disk's. */
	for (i = 0; i < 2 && !polls; i++) {
		snprintf(sys, sizeof(sys), "/sys/dev/block/%u:%u/%squeue/io_poll",
			 major(st.st_dev), minor(st.st_dev), i ? "../" : "");
		fp = fopen(sys, "r");
		if (!fp)
			continue;
		polls = fgets(buf, sizeof(buf), fp) && buf[0] == '1';
		fclose(fp);
	}
	return polls;
}

static int vdi_fio_open_file(struct thread_data *td, struct fio_file *f)
{
	struct vdi_fio_options *o = vdi_opts(td);
	struct vdi_fio_data *d = td->io_ops_data;
	struct vdi_fio_file *vf;
	unsigned flags = 0, qflags = 0, got;
	uint64_t size, end;
	int differ, ret;
	char err[512];

	if (td->o.odirect)
		flags |= VDI_OPEN_DIRECT;
	if (read_only || (!td_write(td) && !td_trim(td)))
		flags |= VDI_OPEN_RDONLY;

	vf = calloc(1, sizeof(*vf));
	if (!vf) {
		td_verror(td, ENOMEM, "vdi open");
		return 1;
	}

	ret = vfio_image_get(f->file_name, flags, &vf->img, &differ, err, sizeof(err));
	if (ret == -EBUSY) {
		vdi_note("%s is in use by another process: libvdi locks an image against "
			 "concurrent writers. Jobs that share one image must run as threads "
			 "of one fio process: add thread=1", f->file_name);
		td_verror(td, EBUSY, "vdi open");
		goto out_free;
	} else if (ret < 0) {
		vdi_note("%s", err);
		td_verror(td, -ret, "vdi open");
		goto out_free;
	}
	if (differ)
		vdi_note_once(d, NOTE_SHARED_DIRECT,
			      "%s: another job opened the image with direct=%d; sharing its handle",
			      f->file_name, !td->o.odirect);

	/* Refuse a job that reaches past the virtual disk before it does any
	 * I/O, so that the image stays untouched. */
	size = vdi_get_size(vf->img);
	end = f->file_offset + f->io_size;
	if (f->io_size != -1ULL &&
	    (f->file_offset > size || end > size || end < f->file_offset)) {
		vdi_note("%s: the job covers bytes %llu to %llu but the virtual disk has %llu bytes; "
			 "nothing was done. Fit size=/offset= to the disk, or recreate the image "
			 "at the job's size with vdi_recreate=1",
			 f->file_name, (unsigned long long)f->file_offset,
			 (unsigned long long)end, (unsigned long long)size);
		td_verror(td, EINVAL, "vdi job range");
		goto out_put;
	}

	/* The job's thread makes every call on its queue (FIO_NO_OFFLOAD:
	 * fio refuses io_submit_mode=offload; checked again here). */
	if (td->o.io_submit_mode != IO_MODE_OFFLOAD)
		qflags |= VDI_QUEUE_ONE_THREAD;
	if (o->sqpoll)
		qflags |= VDI_QUEUE_SQPOLL;
	if (o->iopoll) {
		if (!td->o.odirect)
			vdi_note_once(d, NOTE_IOPOLL_DIRECT,
				      "vdi_iopoll needs direct=1; ignored");
		else if (!vdi_dev_polls(f->file_name))
			vdi_note_once(d, NOTE_IOPOLL_DEVICE,
				      "%s: the device under it has no poll queues "
				      "(queue/io_poll is not 1); vdi_iopoll ignored",
				      f->file_name);
		else
			qflags |= VDI_QUEUE_IOPOLL;
	}
	ret = vdi_queue_create(vf->img, d->depth, qflags, &vf->q);
	if (ret < 0) {
		vdi_note("%s: %s", f->file_name, vdi_errmsg());
		td_verror(td, -ret, "vdi_queue_create");
		goto out_put;
	}
	got = vdi_queue_flags(vf->q);
	if ((qflags & VDI_QUEUE_SQPOLL) && !(got & VDI_QUEUE_SQPOLL))
		vdi_note_once(d, NOTE_SQPOLL, "the kernel refused SQPOLL; submitting with io_uring_enter()");
	if ((qflags & VDI_QUEUE_IOPOLL) && !(got & VDI_QUEUE_IOPOLL))
		vdi_note_once(d, NOTE_IOPOLL_REFUSED, "the kernel refused IOPOLL; completions come by interrupt");
	if (o->fixedbufs)
		vdi_fio_register_buffers(td, f, vf);
	/* What was asked for and what is in use, so that a fallback is never
	 * silent (tests/fio/fio-test.sh, case options, reads this line). */
	if (o->sqpoll || o->iopoll || o->fixedbufs)
		vdi_note_once(d, NOTE_MODES,
			      "%s: ring modes in use: sqpoll=%d iopoll=%d fixedbufs=%d "
			      "(asked: sqpoll=%d iopoll=%d fixedbufs=%d)", f->file_name,
			      !!(got & VDI_QUEUE_SQPOLL), !!(got & VDI_QUEUE_IOPOLL),
			      vf->fixedbufs, !!o->sqpoll, !!o->iopoll, !!o->fixedbufs);

	FILE_SET_ENG_DATA(f, vf);
	return 0;

out_put:
	vfio_image_put(vf->img, err, sizeof(err));
out_free:
	free(vf);
	return 1;
}

static int vdi_fio_close_file(struct thread_data *td, struct fio_file *f)
{
	struct vdi_fio_options *o = vdi_opts(td);
	struct vdi_fio_file *vf = FILE_ENG_DATA(f);
	char err[512];
	int ret;

	if (!vf)
		return 0;
	/* fio closes a file only when no io_u on it is in flight. */
	vdi_queue_destroy(vf->q);
	if (o->stats) {
		struct vdi_stats st;

		vdi_get_stats(vf->img, &st);
		vdi_note("%s: libvdi stats (whole image): sqes=%llu enters=%llu read=%llu written=%llu "
			 "meta_writes=%llu meta_bytes=%llu blocks_allocated=%llu flushes=%llu",
			 f->file_name, (unsigned long long)st.sqes,
			 (unsigned long long)st.enters,
			 (unsigned long long)st.data_read_bytes,
			 (unsigned long long)st.data_write_bytes,
			 (unsigned long long)st.meta_writes,
			 (unsigned long long)st.meta_write_bytes,
			 (unsigned long long)st.blocks_allocated,
			 (unsigned long long)st.flushes);
	}
	ret = vfio_image_put(vf->img, err, sizeof(err));
	free(vf);
	FILE_SET_ENG_DATA(f, NULL);
	f->fd = -1;
	if (ret < 0) {
		vdi_note("%s", err);
		td_verror(td, -ret, "vdi close");
		return 1;
	}
	return 0;
}

static int vdi_fio_invalidate(struct thread_data *td, struct fio_file *f)
{
	/* libvdi has no cache of its own; the container's page cache is not
	 * fio's business (direct=1 bypasses it). */
	return 0;
}

VDI_FIO_PUBLIC struct ioengine_ops ioengine = {
	.name			= "vdi",
	.version		= FIO_IOOPS_VERSION,
	.flags			= FIO_DISKLESSIO | FIO_NOEXTEND | FIO_NO_OFFLOAD |
				  FIO_ASYNCIO_SETS_ISSUE_TIME,
	.init			= vdi_fio_init,
	.cleanup		= vdi_fio_cleanup,
	.queue			= vdi_fio_queue,
	.commit			= vdi_fio_commit,
	.getevents		= vdi_fio_getevents,
	.event			= vdi_fio_event,
	.open_file		= vdi_fio_open_file,
	.close_file		= vdi_fio_close_file,
	.invalidate		= vdi_fio_invalidate,
	.get_file_size		= vdi_fio_get_file_size,
	.options		= vdi_fio_opts,
	.option_struct_size	= sizeof(struct vdi_fio_options),
};
