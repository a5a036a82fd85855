/* Layer 2, the image: the handle shared by every queue (header, block
 * maps, allocator, the chain of parents) and slot I/O, the synchronous
 * reads and writes of blocks, block map and header.  What the layers above
 * (3-durable .. 6-ops) use of it.  Internal. */
#ifndef LIBVDI_IMAGE_H
#define LIBVDI_IMAGE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "1-format/format.h"
#include "2-image/fresh.h"
#include "vdi.h"

struct vdi_durable;
struct vdi_prep;
struct vdi_queue;

struct vdi_image {
	char *path;
	unsigned flags;
	int fd;       /* data I/O; O_DIRECT when asked */
	int meta_fd;  /* header and block map; always buffered */
	int lock_fd;  /* holds the OFD lock; never given to a ring */
	unsigned dio_align; /* O_DIRECT offset/length/memory alignment */
	/* Direct opens of layouts whose data area starts inside a page: the
	 * end of that page, which holds the block map's end and the first
	 * slot's start (else 0).  The block map is written through the page
	 * cache, so writes of data there go through it too (4-queue): a
	 * direct write cannot drop a page that a map write dirtied meanwhile,
	 * and its writeback would put the page's older copy of the data back
	 * (the kernel says EIO at the next fdatasync). */
	uint64_t shared_page_end;

	struct vdi_header hdr;
	unsigned char preamble[VDI_PREAMBLE_SIZE]; /* sector 0 as on disk */
	uint64_t disk_size;
	unsigned block_shift;
	uint64_t slot_size;

	/* The map I/O follows: every entry, and the padding after the last
	 * one up to the end of its sector as it was read (written back
	 * unchanged).  Entries change only from FREE/ZERO to an index, under
	 * `lock`; readers load them without the lock.  Each entry is held
	 * inverted (~entry: vdi_map_get, vdi_map_set), in anonymous memory
	 * that is never written where the map holds only free entries: such
	 * a page reads as zeros, which are free entries, and costs no memory.
	 * A thin image then holds only the pages of its map that name data
	 * (a page is 1,024 blocks), not 4 bytes per block of its size. */
	_Atomic uint32_t *map;
	size_t map_bytes;      /* its mapping's length */
	/* The map as it is (or is about to be) on disk, kept only where it
	 * differs from `map`: a copy of each block-map sector in which an
	 * allocation has not yet reached the disk view (it enters it once
	 * the data write that made it has completed and is durable, so the
	 * block map never points at data that is not there).  Memory follows
	 * what is in flight or staged, not the size of the disk.  A hash of
	 * sector copies, and a list of them all (diskview.c).  Under
	 * `lock`. */
	struct vdi_disk_sector **disk_hash;
	uint32_t disk_hash_mask;  /* buckets - 1; 0 before the first copy */
	uint32_t disk_count;      /* copies */
	struct vdi_disk_sector *disk_list;
	uint32_t bmap_sectors;
	/* During open only: a bit per 1024 entries (a page of the map) that
	 * hold a data entry, so that the passes after the read skip the rest
	 * (image.c). */
	uint64_t *data_groups;
	uint64_t *dirty;       /* bit per block-map sector */
	/* Dirty sectors.  Changed under `lock`; atomic, as `header_dirty`,
	 * because vdi_meta_batch reads both without it to learn that a
	 * batch has nothing to write. */
	_Atomic uint32_t dirty_count;
	/* Differencing images: blocks allocated by a whole-block write,
	 * without copying the parent's block up, whose write has not yet
	 * completed (or failed).  Until one does, the slot does not hold the
	 * block: reads go to the parent, and a partial write copies the
	 * parent's block up first (bit per virtual block; NULL for images
	 * without parent).  Set and cleared under `lock`, read without. */
	_Atomic uint64_t *pending;
	/* Blocks whose new slot a thread is preparing outside `lock` (the
	 * parents' block copied up).  One node on each preparing thread's
	 * stack; the map entry is published when the slot is ready, and a
	 * request that would allocate or zero one of these blocks waits on
	 * `prepared` meanwhile.  Under `lock`. */
	struct vdi_prep *preparing;
	pthread_cond_t prepared;
	/* Direct opens of images without parents whose data area is not
	 * aligned to the file system's blocks (QEMU's and old VirtualBox
	 * layouts): the file-system blocks of the slots this handle
	 * allocated, and which of them a write reached (fresh.h), so that
	 * 4-queue can widen writes to whole blocks. */
	struct vdi_fresh fresh;
	atomic_bool header_dirty; /* see dirty_count */

	/* Entries in [bad_lo, bad_hi) point past the end of the file as it
	 * was at open: reading or writing those blocks fails with EIO.
	 * Allocation starts past both them and the end of the file, where the
	 * file reads as zeros: a new block needs no zero-filling. */
	uint32_t bad_lo, bad_hi;
	/* Writable opens: blocks whose slot another block's entry names too
	 * (bit per virtual block; NULL when none).  Writing one would change
	 * the other: writes fail with EUCLEAN, reads work. */
	uint64_t *shared;
	uint32_t map_missing;  /* entries past the end of the file (see
				* VDI_BMAP_MISSING) */

	pthread_mutex_t lock;
	uint64_t next_free;    /* next physical block to hand out */
	uint64_t next_free_open; /* next_free as it was at open */
	uint64_t ref_end;      /* one past the highest physical block that an
				* entry on disk points at, or will at the next
				* flush (staged): the file must reach its end */
	uint32_t blocks_mapped; /* entries on disk that point at data */
	/* One past the highest slot an entry on disk names.  The header's
	 * count is never below it: QEMU and VirtualBox allocate the next
	 * block at slot `blocks allocated`.  It only grows, until an offline
	 * operation that moved blocks recounts (vdi_image_recount). */
	uint32_t slot_end;
	/* The count in the header as last written (or read): map sectors
	 * naming slots at or past it wait until a header with a count that
	 * covers them is on disk. */
	uint32_t count_on_disk;
	bool written;          /* anything written through this handle */
	/* Allocation keeps the file's size ahead of the slots it hands out
	 * (extend_ahead in image.c): aligned layouts opened O_DIRECT.
	 * file_ahead is the size it last set or saw (0: none yet). */
	bool extend_ahead;
	uint64_t file_ahead;
	/* Slots below this one had their space reserved (reserve_slot). */
	uint64_t reserved_to;
	unsigned char *zero_buf; /* VDI_ZERO_BUF bytes of zeros, aligned */
	struct vdi_image *parent; /* differencing images: opened read-only */
	/* A new modification UUID was made.  Read without the lock by
	 * vdi_image_touch (on every write), set under it. */
	atomic_bool modify_set;

	/* Owned by the layers above, opaque here. */
	struct vdi_durable *dur; /* staging, write-back, flush order
				  * (3-durable/durable.c) */
	unsigned live_queues;  /* queues made by users, not the sync pool
				* (4-queue) */
	struct vdi_queue *sync_pool; /* 5-sync/sync.c */
	struct vdi_queue *user_queues; /* the users' queues, under `lock`
					* (4-queue) */

	struct {
		atomic_uint_fast64_t sqes, enters, data_read_bytes,
			data_write_bytes, meta_writes, meta_write_bytes,
			blocks_allocated, flushes;
	} stats;
};

#define VDI_ZERO_BUF (1u << 20)

/* Entries in a block-map sector. */
#define VDI_SECTOR_ENTRIES (VDI_SECTOR / 4)

/* A block-map sector as it is, or is about to be, on disk, while it
 * differs from `map` (diskview.c). */
struct vdi_disk_sector {
	struct vdi_disk_sector *hnext; /* hash chain */
	struct vdi_disk_sector *lnext; /* list of all copies */
	uint32_t sector;
	/* Owned by 3-durable: entries whose block's write completed and
	 * whose entry waits for the next flush or close (staged), bit per
	 * entry.  A copy holding staged entries is never dropped. */
	uint64_t staged[VDI_SECTOR_ENTRIES / 64];
	uint32_t e[VDI_SECTOR_ENTRIES];
};

/* In memory only, for a read-only open of an image whose file ends inside
 * its block map: the entry of a block the file does not hold.  It counts
 * as data past the end of the file, so reading the block fails with EIO
 * (see `bad_lo`), and vdi_check reports the cut map. */
#define VDI_BMAP_MISSING 0xFFFFFFFDu

static inline bool vdi_entry_is_data(uint32_t e)
{
	return e < VDI_BMAP_ZERO;
}

static inline uint32_t vdi_map_get(const struct vdi_image *img, uint32_t vb)
{
	return ~atomic_load_explicit(&img->map[vb], memory_order_acquire);
}

/* `map`'s entry i, for readers under the lock (or before others see it). */
static inline uint32_t vdi_map_peek(const struct vdi_image *img, uint32_t i)
{
	return ~atomic_load_explicit(&img->map[i], memory_order_relaxed);
}

/* Publish entry `e` of `vb` in `map` (release: its slot is ready). */
static inline void vdi_map_set(struct vdi_image *img, uint32_t vb, uint32_t e)
{
	atomic_store_explicit(&img->map[vb], ~e, memory_order_release);
}

static inline bool vdi_is_shared(const struct vdi_image *img, uint32_t vb)
{
	return img->shared && (img->shared[vb / 64] >> (vb % 64) & 1);
}

/* -EUCLEAN with a message: block `vb` shares its slot.  (image.c) */
int vdi_shared_error(const struct vdi_image *img, uint32_t vb);

static inline bool vdi_entry_is_bad(const struct vdi_image *img, uint32_t e)
{
	return e >= img->bad_lo && e < img->bad_hi;
}

/* File offset where physical block `index` starts (its extra bytes first). */
static inline uint64_t vdi_slot_offset(const struct vdi_image *img,
				       uint64_t index)
{
	return img->hdr.offset_data + index * img->slot_size;
}

/* Allocate a physical block for virtual block `vb` if it has none; returns
 * its index in *index.  `len` is how much of the block the caller's
 * write covers.  In a differencing image, unless that is the whole block,
 * the block's data is copied up from the parent chain first.  Takes the
 * lock. */
int vdi_image_alloc(struct vdi_image *img, uint32_t vb, uint64_t len,
		    uint32_t *index);

/* Before the first write through this handle: a new modification UUID, as
 * VirtualBox does, so that children made from the old state see the
 * change.  Takes the lock. */
void vdi_image_touch(struct vdi_image *img);

/* Internal open flag (vdi_commit): accept a parent whose modification
 * UUID is the one an interrupted commit of this image gave it. */
#define VDI_OPEN_COMMIT 0x80000000u
#define VDI_OPEN_PUBLIC_FLAGS                                              \
	(VDI_OPEN_RDONLY | VDI_OPEN_DIRECT | VDI_OPEN_NOLOCK |              \
	 VDI_OPEN_NO_PARENT)

/* Open the image at `path` and, for a differencing image, its chain of
 * parents (read-only), with the paths of the first `nparents` of them
 * (NULL entries are searched for) and the depth in a chain.  Only this
 * layer's part of a handle: 5-sync/open.c makes the rest.  (image.c) */
int vdi_image_open(const char *path, unsigned flags,
		   const char *const *parents, size_t nparents, unsigned depth,
		   struct vdi_image **out);

/* Release everything the image and its parents hold, without writing
 * anything back (the layers above have let go of theirs).  NULL is a
 * no-op.  (image.c) */
void vdi_image_free(struct vdi_image *img);

/* ---- the chain of parents (chain.c) ---- */

/* A differencing image opened with VDI_OPEN_NO_PARENT was asked for block
 * `vb` of its parent: -ENOLINK with a message (0 for other images, whose
 * free blocks are zeros). */
int vdi_chain_no_parent(struct vdi_image *img, uint32_t vb, const char *fn);
/* A partial write to a block still pending (see `pending`): copy the
 * parent's block into physical block `index` first, once.  Takes the
 * lock. */
int vdi_chain_copy_up_pending(struct vdi_image *img, uint32_t vb,
			      uint32_t index);
/* Which image of the chain holds block `vb`: its entry in *entry (data,
 * ZERO, or FREE at the end of the chain). */
struct vdi_image *vdi_chain_resolve(struct vdi_image *img, uint32_t vb,
				    uint32_t *entry);

/* The modification UUID vdi_commit gives the parent of `child`: derived
 * from the child's creation UUID and the parent state the child was made
 * from, so that an interrupted commit is recognised when it runs again
 * (VDI_OPEN_COMMIT). */
void vdi_commit_uuid(const struct vdi_image *child, unsigned char out[16]);

static inline bool vdi_is_pending(const struct vdi_image *img, uint32_t vb)
{
	return img->pending &&
	       (atomic_load_explicit(&img->pending[vb / 64],
				     memory_order_acquire) >> (vb % 64) & 1);
}

/* Mark or unmark block `vb` pending.  Under the lock. */
static inline void vdi_set_pending(struct vdi_image *img, uint32_t vb,
				   bool on)
{
	uint64_t bit = 1ull << (vb % 64);

	if (!img->pending)
		return;
	if (on)
		atomic_fetch_or_explicit(&img->pending[vb / 64], bit,
					 memory_order_release);
	else
		atomic_fetch_and_explicit(&img->pending[vb / 64], ~bit,
					  memory_order_release);
}

/* ---- the block map as on disk (diskview.c) ---- */

/* The copy of block-map sector `s`, or NULL when the disk view of it is
 * what `map` holds.  Under the lock. */
struct vdi_disk_sector *vdi_disk_sector(const struct vdi_image *img,
					uint32_t s);

/* The entry of `vb` as it is, or is about to be, on disk.  Under the
 * lock. */
static inline uint32_t vdi_disk_get(const struct vdi_image *img, uint32_t vb)
{
	const struct vdi_disk_sector *ds =
		img->disk_count ? vdi_disk_sector(img, vb / VDI_SECTOR_ENTRIES)
				: NULL;

	return ds ? ds->e[vb % VDI_SECTOR_ENTRIES] : vdi_map_peek(img, vb);
}

/* Before `map`'s entry for `vb` moves ahead of the disk (an allocation):
 * keep a copy of its sector as it is on disk.  0, or -ENOMEM with a
 * message.  Under the lock. */
int vdi_disk_keep(struct vdi_image *img, uint32_t vb);

/* Drop the copies that `map` matches again and that hold no staged
 * entry.  Under the lock. */
void vdi_disk_prune(struct vdi_image *img);

/* Release every copy (vdi_image_free). */
void vdi_disk_free(struct vdi_image *img);

/* Set the on-disk entry of `vb` to `e` (`map`'s entry, or one its kept
 * sector copy waits for), mark its sector dirty and keep the header's
 * count in step.  Under the lock. */
void vdi_image_set_disk_entry(struct vdi_image *img, uint32_t vb, uint32_t e);

/* Set both `map`'s entry of `vb` and the one on disk to `e` (no data write
 * to wait for: zero entries, offline moves).  Under the lock. */
void vdi_image_set_entry(struct vdi_image *img, uint32_t vb, uint32_t e);

/* Make `vb` a zero block if it is free: no data is involved, so the
 * on-disk map follows at once.  A block with data keeps its entry (and
 * its slot, so that the slots in use stay exactly 0 .. blocks allocated -
 * 1); the caller punches the slot, and the block reads zeros from it.
 * Returns the entry as it was.  Takes the lock. */
uint32_t vdi_image_make_zero(struct vdi_image *img, uint32_t vb);

/* The header's count for the map as it is on disk: the number of data
 * entries, or one past the highest slot they name if that is more (then
 * slots below it are unused: leaked, never handed to a new block by QEMU
 * or VirtualBox).  Under the lock. */
uint32_t vdi_image_count(const struct vdi_image *img);

/* After an offline operation freed or moved data entries: recompute
 * slot_end from the map on disk and set the header's count from it.  Call only
 * once the map entries that no longer name the high slots are durable.
 * Under the lock. */
void vdi_image_recount(struct vdi_image *img);

/* Make the file long enough to hold every block handed out or, when that
 * fails (a file size limit below blocks whose writes failed), at least
 * every block that an entry on disk points at or is about to (ref_end).
 * Never makes the file shorter.  `fn` names the caller in messages.
 * Under the lock. */
int vdi_image_extend(struct vdi_image *img, const char *fn);

/* At close: cut the size set ahead of the allocator back to the last slot
 * handed out.  Under the lock, nothing in flight. */
void vdi_image_trim_ahead(struct vdi_image *img);

/* The file was cut after slot `used` - 1: allocation starts there again,
 * and nothing past it is set or reserved ahead any more. */
void vdi_image_file_cut(struct vdi_image *img, uint32_t used);

/* Mark block-map sector `sector` for the next write-back.  Under the
 * lock. */
void vdi_image_mark_sector_dirty(struct vdi_image *img, uint32_t sector);

/* The first dirty block-map sector at or after `s` (bmap_sectors when
 * none), a word of the bitmap at a time.  Under the lock. */
uint32_t vdi_image_next_dirty(const struct vdi_image *img, uint32_t s);

/* ---- slot I/O (slot.c) ---- */

/* Fill `buf` with block-map sectors [first, first + n) as on disk.
 * Under the lock. */
void vdi_image_bmap_bytes(const struct vdi_image *img, uint32_t first,
			  uint32_t n, unsigned char *buf);

/* Write back every dirty block-map sector and the header with pwrite.
 * Under the lock, with no metadata in flight. */
int vdi_image_writeback_sync(struct vdi_image *img);

/* Read physical block `index` with its extra bytes (slot_size bytes); what
 * the file does not hold reads as zeros. */
int vdi_read_slot(struct vdi_image *img, uint64_t index, unsigned char *buf);

/* Write back the dirty map and header, then fdatasync.  Under the lock. */
int vdi_image_commit_meta(struct vdi_image *img);

/* Does [start, end) of the file hold no data?  Only the whole pages in it
 * are asked about: a block that does not start on a page keeps its edge
 * pages allocated after a punch. */
bool vdi_range_is_hole(int fd, uint64_t start, uint64_t end);

/* fdatasync the image (through the fault seam). */
int vdi_image_sync(struct vdi_image *img);

/* Take the inter-process locks (lock.c); -EBUSY when another
 * process, libvdi or QEMU, holds the image in a conflicting way. */
int vdi_image_lock(struct vdi_image *img);

#endif
