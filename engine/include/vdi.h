/* libvdi: VirtualBox Disk Image (VDI) I/O on io_uring.
 *
 * Error model: every call that can fail returns a negative errno (or NULL)
 * and leaves a message for the calling thread, read with vdi_errmsg().  The
 * message names the call, the file and the problem, for example
 *   "vdi_open: disk.vdi: block size 3000 is not a power of two".
 *
 * Threading: one struct vdi_image may be shared by many threads.  Each
 * thread that does I/O creates its own struct vdi_queue (one io_uring) from
 * the image; a queue is used by one thread at a time.  The synchronous calls
 * (vdi_pread, vdi_pwrite, vdi_flush) use a queue owned by the calling thread
 * and created on first use.  A thread with requests in flight on its queue
 * goes on to reap them: on images whose data area is not on a file-system
 * block boundary (qemu-img's) opened with VDI_OPEN_DIRECT, a write through
 * another thread's queue may wait for the completion of one that shares a
 * file-system block with it (docs/design.md, "Widening writes into new
 * slots").  This thread's own calls never wait for its own queues.
 *
 * Structures: those the library fills end in reserved space that it
 * zeroes; those the caller fills (struct vdi_create_opts) must be zeroed
 * whole, reserved space included.  Later fields come out of that space,
 * so a structure keeps its size within a symbol version
 * (tests/abi/sizes.c holds them to it).
 */
#ifndef LIBVDI_VDI_H
#define LIBVDI_VDI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VDI_VERSION_MAJOR 0
#define VDI_VERSION_MINOR 2

struct vdi_image;
struct vdi_queue;

/* The message left by the last failing libvdi call on this thread ("" if
 * none).  The pointer stays valid until the next libvdi call on the thread. */
const char *vdi_errmsg(void);

/* ---- Images ---------------------------------------------------------- */

enum vdi_image_type {
	VDI_TYPE_DYNAMIC = 1,
	VDI_TYPE_STATIC = 2,
	VDI_TYPE_UNDO = 3,
	VDI_TYPE_DIFF = 4,
};

/* vdi_open flags */
#define VDI_OPEN_RDONLY 0x1u /* read-only; takes a shared lock */
#define VDI_OPEN_DIRECT 0x2u /* O_DIRECT; unaligned requests still work */
#define VDI_OPEN_NOLOCK 0x4u /* take no OFD lock (the caller serialises) */
/* A differencing image alone, without its parent chain: for looking at or
 * repairing the image itself.  Reads of blocks that would come from the
 * parent, and partial writes that would copy a parent's block up, fail with
 * -ENOLINK; everything else works. */
#define VDI_OPEN_NO_PARENT 0x8u

/* Open an existing image.  Takes OFD locks in QEMU's byte-lock scheme: one
 * writer or many readers, among libvdi and QEMU processes alike; -EBUSY
 * "image is in use by another process" on a conflict. */
int vdi_open(const char *path, unsigned flags, struct vdi_image **out);

/* vdi_open for a differencing image whose parent is at `parent` (NULL:
 * look for the file whose UUID the image links to among the .vdi files in
 * its directory; the parent's own parent is looked for likewise).  Parents
 * are opened read-only.  A parent whose UUID, modification UUID, size or
 * block size does not match is a clear error (-EINVAL, -ESTALE). */
int vdi_open_parent(const char *path, unsigned flags, const char *parent,
		    struct vdi_image **out);

/* vdi_open_parent naming more of the chain: parents[0] is the image's
 * parent, parents[1] that parent's parent, and so on; a NULL entry, or a
 * level past `nparents`, is looked for by UUID next to its child. */
int vdi_open_chain(const char *path, unsigned flags,
		   const char *const *parents, size_t nparents,
		   struct vdi_image **out);

/* The parent of a differencing image (NULL otherwise), and the path an
 * image was opened by: to walk a chain. */
struct vdi_image *vdi_get_parent(struct vdi_image *img);
const char *vdi_get_filename(const struct vdi_image *img);

/* Write back pending metadata, release the lock and free the handle.
 * Returns 0 or the first error met while writing back; the handle is freed
 * either way, except for -EBUSY: queues made from the image are still
 * open (destroy them first, then close again).  vdi_close(NULL) is a
 * no-op returning 0. */
int vdi_close(struct vdi_image *img);

#define VDI_DEFAULT_BLOCK_SIZE (1u << 20)
#define VDI_MIN_BLOCK_SIZE (1u << 17) /* the range VirtualBox opens */
#define VDI_MAX_BLOCK_SIZE (1u << 27)

struct vdi_create_opts {
	enum vdi_image_type type; /* 0 means VDI_TYPE_DYNAMIC */
	uint32_t block_size;      /* 0 means VDI_DEFAULT_BLOCK_SIZE */
	const char *description;  /* NULL for none; at most 255 bytes */
	const unsigned char *uuid; /* 16 bytes, RFC 4122 order; NULL: random */
	int overwrite;            /* replace an existing file */
	/* A differencing image of this parent (VirtualBox snapshot): `size`
	 * must be 0 or the parent's, the block size is the parent's, and the
	 * link and parent-modification UUIDs are the parent's. */
	const char *parent;
	uint32_t flags;           /* VDI_CREATE_* (libvdi 0.2) */
	uint32_t reserved32;      /* zero */
	uint64_t reserved[5];     /* zero: room for later options */
};

/* vdi_create_opts.flags.  With overwrite: refuse (-EBUSY) to replace a
 * file that another process has open under QEMU's byte locks (a libvdi
 * or QEMU writer, or reader), as vdi_open would refuse to open it for
 * writing; the old file is held with a writer's locks until the new one
 * has replaced it, so that nothing opens it in between.  A caller that
 * holds such locks on the old file itself must not set it (its own locks
 * would count as another's). */
#define VDI_CREATE_REFUSE_IN_USE 0x1u

/* Create a new image of `size` bytes (rounded up to 512).  `opts` may be
 * NULL.  -EEXIST if `path` exists and opts->overwrite is 0.  Static
 * images are fully preallocated.  The block map and the data area start
 * on 1 MiB boundaries.  The file is created next to `path` under a
 * temporary name and renamed into place, so a failure leaves nothing. */
int vdi_create(const char *path, uint64_t size,
	       const struct vdi_create_opts *opts);

/* Everything the header says, decoded.  UUIDs are in RFC 4122 byte order
 * (as uuid_unparse() expects), converted from VirtualBox's order. */
struct vdi_info {
	uint64_t disk_size;        /* virtual size, rounded up to 512 */
	uint64_t disk_size_stored; /* as stored in the header */
	uint64_t file_size;        /* size of the container file */
	uint32_t version;          /* major << 16 | minor */
	uint32_t header_size;      /* 384 or 400 */
	uint32_t type;             /* enum vdi_image_type */
	uint32_t image_flags;
	uint32_t offset_bmap;
	uint32_t offset_data;
	uint32_t block_size;
	uint32_t block_extra;
	uint32_t blocks;           /* blocks in the image */
	uint32_t blocks_allocated; /* as the header says */
	uint32_t blocks_mapped;    /* entries pointing at data, counted */
	uint32_t cylinders, heads, sectors, sector_size; /* legacy geometry */
	uint32_t lchs_cylinders, lchs_heads, lchs_sectors, lchs_sector_size;
	unsigned char uuid_create[16];
	unsigned char uuid_modify[16];
	unsigned char uuid_link[16];
	unsigned char uuid_parent_modify[16];
	char description[257];
	char banner[65];
	uint64_t reserved[8];      /* zeroed: room for later fields */
};

int vdi_get_info(struct vdi_image *img, struct vdi_info *info);

/* Virtual disk size in bytes. */
uint64_t vdi_get_size(const struct vdi_image *img);

/* ---- Allocation map --------------------------------------------------- */

#define VDI_BMAP_FREE 0xFFFFFFFFu
#define VDI_BMAP_ZERO 0xFFFFFFFEu

enum vdi_extent_kind {
	VDI_EXTENT_UNALLOCATED = 0, /* reads as zeros, no data in the file */
	VDI_EXTENT_ZERO = 1,        /* discarded block: reads as zeros */
	VDI_EXTENT_DATA = 2,        /* data stored at file_offset */
	VDI_EXTENT_BAD = 3,         /* entry points outside the file */
};

struct vdi_extent {
	uint64_t start;       /* virtual offset */
	uint64_t length;
	uint64_t file_offset; /* VDI_EXTENT_DATA, and where a BAD one points */
	enum vdi_extent_kind kind;
};

/* Describe the longest run of same-kind blocks starting at virtual offset
 * `start` (data runs must also be contiguous in the file).  Returns 0, or
 * -EINVAL past the end of the disk. */
int vdi_map_extent(struct vdi_image *img, uint64_t start,
		   struct vdi_extent *ext);

/* ---- Consistency check --------------------------------------------------- */

struct vdi_check_result {
	uint64_t corruptions;      /* problems that may lose or mix up data */
	uint64_t leaks;            /* unreferenced blocks holding space */
	uint64_t leaked_bytes;
	uint32_t blocks_mapped;    /* entries that point at data */
	uint32_t out_of_range;     /* index >= blocks in image */
	uint32_t past_eof;         /* data block not inside the file */
	uint32_t duplicates;       /* physical block used by two entries */
	uint32_t allocated_mismatch; /* header count differs from the map */
	uint32_t holes;            /* unused blocks already punched out of the
				    * file (no space used; not leaks) */
	uint64_t image_end_offset; /* where the last used data ends */
	uint32_t past_count;       /* index >= the header's blocks allocated
				    * (QEMU and VirtualBox allocate there) */
	uint32_t short_blocks;     /* data block cut short by the file's end */
	uint32_t map_missing;      /* block-map entries past the file's end
				    * (one corruption: the map is cut) */
	uint32_t reserved32;       /* zeroed */
	uint64_t reserved[4];      /* zeroed: room for later fields */
};

/* Called once for each problem found, with a one-line description. */
typedef void (*vdi_check_report_fn)(void *opaque, const char *problem);

/* Read-only consistency check of an open image. */
int vdi_check(struct vdi_image *img, struct vdi_check_result *res,
	      vdi_check_report_fn report, void *opaque);

/* ---- Asynchronous I/O ---------------------------------------------------- */

#define VDI_QUEUE_SQPOLL 0x1u  /* kernel thread polls the submission queue */
#define VDI_QUEUE_IOPOLL 0x2u  /* polled completions (needs VDI_OPEN_DIRECT
				* and a device with poll queues) */
/* The caller promises that the thread creating the queue makes every call
 * on it, destroy included, for the queue's whole life.  The ring then
 * leaves completions for that thread to run when it waits or reaps
 * (IORING_SETUP_SINGLE_ISSUER and DEFER_TASKRUN, Linux 6.1); a request
 * submitted from another thread completes with -EEXIST. */
#define VDI_QUEUE_ONE_THREAD 0x4u

/* Create a queue (one io_uring) able to hold `depth` requests in flight.
 * Flags the kernel refuses are dropped; vdi_queue_flags() tells which
 * stayed. */
int vdi_queue_create(struct vdi_image *img, unsigned depth, unsigned flags,
		     struct vdi_queue **out);

/* Wait for every request in flight, then free the queue.  NULL is a no-op. */
void vdi_queue_destroy(struct vdi_queue *q);

unsigned vdi_queue_flags(const struct vdi_queue *q);

/* Register caller buffers with the ring; then vdi_queue_read_fixed() and
 * vdi_queue_write_fixed() may name them by index. */
int vdi_queue_register_buffers(struct vdi_queue *q, const struct iovec *iov,
			       unsigned nr);

/* Queue a request.  Nothing reaches the kernel until vdi_queue_submit().
 * The iovec array is copied; the buffers must stay valid until the
 * request completes.  -EAGAIN when `depth` requests are already queued or
 * in flight: reap some first.  -EINVAL beyond the end of the disk. */
int vdi_queue_readv(struct vdi_queue *q, const struct iovec *iov, int iovcnt,
		    uint64_t offset, void *tag);
int vdi_queue_writev(struct vdi_queue *q, const struct iovec *iov, int iovcnt,
		     uint64_t offset, void *tag);
int vdi_queue_read(struct vdi_queue *q, void *buf, size_t len,
		   uint64_t offset, void *tag);
int vdi_queue_write(struct vdi_queue *q, const void *buf, size_t len,
		    uint64_t offset, void *tag);
int vdi_queue_read_fixed(struct vdi_queue *q, void *buf, size_t len,
			 uint64_t offset, unsigned buf_index, void *tag);
int vdi_queue_write_fixed(struct vdi_queue *q, const void *buf, size_t len,
			  uint64_t offset, unsigned buf_index, void *tag);

/* Make [offset, offset + len) read as zeros.  Whole blocks of a dynamic
 * image that hold data keep their slots, punched out of the file (they
 * read zeros; the slots in use and the header's count, where QEMU and
 * VirtualBox allocate, do not change; vdi_reclaim gives them back); whole
 * free blocks become zero entries (0xFFFFFFFE); parts of blocks that hold
 * data get zeros written; blocks with no data need no I/O.  In a static
 * image zeros are written.  The two calls do the same: discard names the
 * intent of a TRIM. */
int vdi_queue_write_zeroes(struct vdi_queue *q, uint64_t offset,
			   uint64_t len, void *tag);
int vdi_queue_discard(struct vdi_queue *q, uint64_t offset, uint64_t len,
		      void *tag);

/* A flush completes after every write that completed before it was queued
 * is durable, with the block map and header that point at it. */
int vdi_queue_flush(struct vdi_queue *q, void *tag);

/* Send every queued request to the kernel, together with block-map changes
 * that point at no data (zero entries; once per batch).  Entries of new
 * blocks are written by the next flush, after an fdatasync, or at close.
 * Returns the number of caller requests taken from the queue (metadata
 * writes are not counted); never fails.  Every queued request is taken,
 * and every request taken completes exactly once, through
 * vdi_queue_reap():
 *  - one that fails while being prepared (EIO for a block that points past
 *    the end of the file, say) completes with its error;
 *  - when io_uring_enter takes only some of the SQEs, or fails with EINTR,
 *    EAGAIN or EBUSY, the rest are submitted again (after reaping
 *    completions, which frees what the kernel lacked), for at most about
 *    half a second;
 *  - when the kernel refuses SQEs for good (ENOMEM, say, or EAGAIN that
 *    persists), the requests they belong to complete with that error, and
 *    vdi_errmsg() names it.  A write that fails so leaves its range as
 *    after any failed write (old or new data; a block it allocated is not
 *    entered in the block map); a flush that fails so leaves the block
 *    map to the next flush.  The queue stays usable.
 * So after a submit, reaping until vdi_queue_pending() is 0 never waits
 * for a request that did not reach the kernel. */
int vdi_queue_submit(struct vdi_queue *q);

/* vdi_queue_submit(), and when it hands the kernel any I/O, the same
 * io_uring_enter waits until at least one completion is ready: one system
 * call where vdi_queue_submit() and a waiting vdi_queue_reap() take two.
 * For a caller that waits for its request at once (a server's worker
 * thread with one request in flight).  The completion is then reaped as
 * usual; vdi_queue_reap() finds it without entering the kernel.  When no
 * I/O is handed over (a read of blocks without data, a request that
 * failed while being prepared) it returns without waiting, as
 * vdi_queue_submit() does. */
int vdi_queue_submit_wait(struct vdi_queue *q);

struct vdi_completion {
	void *tag;
	int64_t res; /* bytes transferred (0 for a flush) or -errno */
};

/* Reap between `min` and `max` completions into `out`.  Waits at most
 * `timeout` (NULL: no limit) for the first `min`.  Returns the number
 * reaped (possibly fewer than `min` on timeout) or a negative errno.
 * It never waits for completions that cannot come: once no submitted
 * request is left in flight it returns what it has, so with nothing
 * pending it returns 0 at once, whatever `min`.  Loop on
 * vdi_queue_pending() rather than on a count of completions expected. */
int vdi_queue_reap(struct vdi_queue *q, struct vdi_completion *out,
		   unsigned min, unsigned max, const struct timespec *timeout);

/* Requests queued or in flight on this queue. */
unsigned vdi_queue_pending(const struct vdi_queue *q);

/* ---- Synchronous I/O ------------------------------------------------------ */

/* Whole transfers: the return value is `len`, or a negative errno. */
ssize_t vdi_pread(struct vdi_image *img, void *buf, size_t len,
		  uint64_t offset);
ssize_t vdi_pwrite(struct vdi_image *img, const void *buf, size_t len,
		   uint64_t offset);
int vdi_flush(struct vdi_image *img);
int vdi_write_zeroes(struct vdi_image *img, uint64_t offset, uint64_t len);
int vdi_discard(struct vdi_image *img, uint64_t offset, uint64_t len);

/* ---- Offline maintenance ------------------------------------------------ */

/* Progress of a long operation: `done` of `total` units so far. */
typedef void (*vdi_progress_fn)(void *opaque, uint64_t done, uint64_t total);

struct vdi_compact_result {
	uint64_t file_size_before, file_size_after;
	uint32_t zero_blocks;   /* data blocks found all zeros, now zero entries */
	uint32_t blocks_moved;  /* data blocks moved down into holes */
	uint32_t parent_blocks; /* differencing: blocks equal to what the
				 * parents give, now free entries */
	uint32_t reserved32;
	uint64_t reserved[3];   /* zeroed: room for later fields */
};

/* Compact a dynamic or differencing image in place, as VBoxManage
 * modifymedium --compact does: blocks of zeros become zero entries (in a
 * differencing image, blocks that read the same as the parents become
 * free entries first), the remaining blocks move down into the holes, and
 * the file is cut after the last one.  The virtual disk is unchanged, and
 * so is the modification UUID.  Each move
 * is crash-safe: the copy is durable before the map points at it, and the
 * old place is reused only after that.  The image must not be open
 * elsewhere and must have no corruption (run vdi_repair first): -EBUSY,
 * -EUCLEAN. */
int vdi_compact(const char *path, struct vdi_compact_result *res,
		vdi_progress_fn progress, void *opaque);

/* Give back, through an open writable handle, the slots of blocks that a
 * discard or write-zeroes punched out (online those blocks keep their
 * slots, so that the slots in use stay exactly 0 .. blocks allocated - 1,
 * the rule QEMU and VirtualBox allocate by): every data block whose slot
 * is all hole becomes a zero entry, the highest blocks move into the
 * freed slots (each copy durable before the map points at it), the
 * header's count comes down, and the file is cut.  No data is read but
 * that of the blocks moved.  The handle's data is flushed first; no other
 * queue may be open on it (-EBUSY) and no other thread may use it during
 * the call.  Static images: nothing to do.  res->zero_blocks counts the
 * blocks freed. */
int vdi_reclaim(struct vdi_image *img, struct vdi_compact_result *res);
/* vdi_compact of a differencing image whose parents are named as for
 * vdi_open_chain (NULL entries and levels past `nparents`: looked for
 * next to their child). */
int vdi_compact_chain(const char *path, const char *const *parents,
		      size_t nparents, struct vdi_compact_result *res,
		      vdi_progress_fn progress, void *opaque);

#define VDI_RESIZE_SHRINK 0x1u /* allow a smaller size */

/* Change the virtual size of a dynamic or static image.  Growing past what
 * the block map has room for moves the block map to where the first data
 * blocks were (they are copied to the end of the file first); the header,
 * written last, switches to the new layout in one sector.  Static images
 * get their new blocks preallocated.  Shrinking needs VDI_RESIZE_SHRINK and
 * is refused (-ENOTEMPTY, naming the first block) when any data would be
 * cut off that is not all zeros. */
int vdi_resize(const char *path, uint64_t new_size, unsigned flags);
/* vdi_resize calling `progress` (if not NULL) with blocks done out of a
 * total: the blocks a shrink reads, the blocks a growing map moves, and
 * one for the rest; the last call has done == total.  (libvdi 0.2) */
int vdi_resize_with_progress(const char *path, uint64_t new_size,
			     unsigned flags, vdi_progress_fn progress,
			     void *opaque);

/* Merge a differencing image into its parent (`parent_path` or NULL to
 * search, as vdi_open_parent): its data blocks are written over the
 * parent's, its zero blocks zero the parent's.  The child is then pointed
 * at the parent's new state, which reads the same as the child did. */
int vdi_commit(const char *path, const char *parent_path,
	       vdi_progress_fn progress, void *opaque);

/* What vdi_amend() changes; NULL members are left as they are.  UUIDs
 * are 16 bytes in RFC 4122 order. */
struct vdi_amend_opts {
	const char *description;   /* at most 255 bytes; "" clears it */
	const unsigned char *uuid; /* the image's own (creation) UUID */
	/* A differencing image's link to its parent: the parent's UUID, and
	 * the modification UUID of the parent state it was made from. */
	const unsigned char *parent_uuid;
	const unsigned char *parent_modify_uuid;
	uint64_t reserved[6];      /* zero: room for later options */
};

/* Change the header of the image at `path` in place, durably, as
 * VBoxManage modifymedium --description, internalcommands sethduuid and
 * sethdparentuuid do; the disk's data, and the modification UUID, are
 * left alone.  The image is opened alone (VDI_OPEN_NO_PARENT) and must
 * not be in use (-EBUSY).  Parent UUIDs are refused (-EINVAL) for an
 * image that is not a differencing image, and the null UUID is refused.
 * Nothing checks that children or parents still match: that is the
 * caller's business (vdi amend warns). */
int vdi_amend(const char *path, const struct vdi_amend_opts *opts);

#define VDI_REBASE_UNSAFE 0x1u /* switch the link only, copy nothing */

/* Give the differencing image at `path` the parent `new_parent` (NULL:
 * none; the image becomes a dynamic image holding all its data), as
 * qemu-img rebase does.  Safe, by default: the image is opened with its
 * current chain (`parents` as for vdi_open_chain), each block it takes
 * from its parents that reads differently from `new_parent` is copied
 * into it, then the link (parent UUID and parent modification UUID) is
 * switched in one durable header write; the image reads the same
 * before and after, and a rebase stopped half way runs again.  With
 * VDI_REBASE_UNSAFE only the link is switched, the old parents are not
 * opened (they may be gone or changed), and what the image reads is
 * what `new_parent` gives: for a parent known to hold the same data.
 * The new parent must have the same size and block size, and must not
 * read from `path` (-ELOOP).  The image's modification UUID is kept.
 * `progress` gets blocks done and the block count. */
int vdi_rebase(const char *path, const char *const *parents,
	       size_t nparents, const char *new_parent, unsigned flags,
	       vdi_progress_fn progress, void *opaque);

/* ---- Statistics ---------------------------------------------------------- */

struct vdi_stats {
	uint64_t sqes;            /* SQEs submitted, data and metadata */
	uint64_t enters;          /* io_uring_enter system calls */
	uint64_t data_read_bytes;
	uint64_t data_write_bytes;
	uint64_t meta_writes;     /* block-map and header write SQEs */
	uint64_t meta_write_bytes;
	uint64_t blocks_allocated; /* by this handle */
	uint64_t flushes;
	uint64_t reserved[8];     /* zeroed: room for later counters */
};

void vdi_get_stats(struct vdi_image *img, struct vdi_stats *st);

/* ---- Repair (engine/repair.c) -------------------------------------------- */

#define VDI_REPAIR_LEAKS 0x1u  /* leaked space at the end, the header count */
#define VDI_REPAIR_ERRORS 0x2u /* corruptions: bad, shared, out-of-range */
#define VDI_REPAIR_ALL (VDI_REPAIR_LEAKS | VDI_REPAIR_ERRORS)

struct vdi_repair_result {
	struct vdi_check_result before; /* vdi_check before anything changed */
	uint64_t corruptions_fixed; /* entries freed or moved, header count */
	uint64_t leaks_fixed;       /* leaked blocks cut off the file's end */
	uint64_t bytes_trimmed;
	uint64_t leaks_left;        /* leaked blocks in the middle, left as is
				     * (only while entries share slots or point
				     * past the end and -r leaks is asked) */
	uint64_t reserved[4];       /* zeroed: room for later fields */
};

/* Repair the image at `path` offline: it must not be open elsewhere (the
 * writer's lock is taken; -EBUSY otherwise).  First runs vdi_check,
 * reporting each problem through `report`, then, one durable change at a
 * time, reporting each ("repaired: ..." / "not repaired: ..."):
 *  - both flags: raises a header count that is not past every slot in
 *    use (QEMU and VirtualBox allocate there); moves the blocks of the
 *    highest slots into unused slots below them; then sets the count to
 *    the map's and cuts the file after the last slot.
 *  - VDI_REPAIR_ERRORS: frees entries that point past the end of the file
 *    (they read as zeros afterwards); of several entries sharing one
 *    physical block keeps the first and frees the others; copies blocks
 *    whose index is not below the block count to a free index below it,
 *    data made durable before the entry is repointed; frees the entries
 *    of a block map cut short and extends the file to its data area;
 *    extends a file that cuts its last block short.
 * Reachable data is never lost.  Returns the number of fixes (0: nothing
 * to do) or a negative errno with vdi_errmsg(). */
int vdi_repair(const char *path, unsigned what,
	       struct vdi_repair_result *res, vdi_check_report_fn report,
	       void *opaque);
/* vdi_repair calling `progress` (if not NULL, with `progress_opaque`)
 * with steps done out of a total: one for the check, one for each block
 * copied, one for the rest; the last call has done == total.
 * (libvdi 0.2) */
int vdi_repair_with_progress(const char *path, unsigned what,
			     struct vdi_repair_result *res,
			     vdi_check_report_fn report, void *opaque,
			     vdi_progress_fn progress, void *progress_opaque);

#ifdef __cplusplus
}
#endif

#endif /* LIBVDI_VDI_H */
