/* Opening and freeing an image (the handle's other layers are set up and
 * torn down by 5-sync/open.c); the allocator and the on-disk block map. */
#include "2-image/image.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "0-base/error.h"
#include "0-base/fileio.h"
#include "2-image/private.h"

#define ENTRIES_PER_SECTOR VDI_SECTOR_ENTRIES

static unsigned query_dio_align(int fd)
{
#ifdef STATX_DIOALIGN
	struct statx stx;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
		unsigned a = stx.stx_dio_offset_align;

		if (stx.stx_dio_mem_align > a)
			a = stx.stx_dio_mem_align;
		return a < VDI_SECTOR ? VDI_SECTOR : a;
	}
#endif
	return 4096;
}

/* Bytes of the block map read (and scanned) at a time at open. */
#define BMAP_CHUNK (1u << 20)
/* Entries scanned as one group (a 4 KiB page of the map). */
#define BMAP_GROUP 1024u
/* Entries [i, i + n) of the map were just read into `w`, as on disk: put
 * them in host order, and count the data entries among the first `lim`
 * (the blocks the file holds entries for whole; the padding after the
 * last block is kept as it is), marking the groups of BMAP_GROUP entries
 * that hold one in `data_groups`, and store the groups that hold
 * anything but free entries into `map` (see there: the others stay
 * untouched memory).  A group of free entries (most of a thin image's
 * map) costs one AND over it.  `i` is a multiple of BMAP_GROUP.  Until
 * open returns, no other thread sees the map. */
static void scan_chunk(struct vdi_image *img, uint32_t *w, uint32_t i,
		       uint32_t n, uint32_t lim, uint64_t *max_index)
{
	uint32_t g, k;
	uint32_t nb = i >= lim ? 0 : lim - i < n ? lim - i : n;

#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	for (k = 0; k < n; k++)
		w[k] = __builtin_bswap32(w[k]);
#endif
	for (g = 0; g < n; g += BMAP_GROUP) {
		uint32_t l[4] = { UINT32_MAX, UINT32_MAX, UINT32_MAX,
				  UINT32_MAX };
		uint32_t end = n - g < BMAP_GROUP ? n : g + BMAP_GROUP;
		uint32_t dend = nb < g ? g : nb < end ? nb : end; /* entries */
		uint32_t grp = (i + g) / BMAP_GROUP, all;

		/* FREE and ZERO differ only in bit 0, and every data entry
		 * lacks one of bits 1-31: the AND of entries without data is
		 * FREE or ZERO, and with one it is below both.  Four lanes,
		 * for the compiler. */
		for (k = g; k + 4 <= dend; k += 4) {
			l[0] &= w[k];
			l[1] &= w[k + 1];
			l[2] &= w[k + 2];
			l[3] &= w[k + 3];
		}
		for (; k < dend; k++)
			l[0] &= w[k];
		all = l[0] & l[1] & l[2] & l[3];
		if (dend > g && vdi_entry_is_data(all)) {
			img->data_groups[grp / 64] |= 1ull << (grp % 64);
			for (k = g; k < dend; k++) {
				/* (An entry that reads as VDI_BMAP_MISSING on
				 * disk is left out, as a missing one is.) */
				if (!vdi_entry_is_data(w[k]) ||
				    w[k] == VDI_BMAP_MISSING)
					continue;
				img->blocks_mapped++;
				if ((uint64_t)w[k] + 1 > *max_index)
					*max_index = (uint64_t)w[k] + 1;
			}
		}
		/* The padding past the entries counts for the copy only. */
		for (k = dend; k < end; k++)
			all &= w[k];
		if (all == VDI_BMAP_FREE)
			continue;
		for (k = g; k < end; k++)
			atomic_init(&img->map[i + k], ~w[k]);
	}
}

/* Read the block map into `map`, a chunk at a time, and derive the
 * allocator state from it in the same pass.  The next free physical block
 * comes from the map and the file size, never from the header's count: a
 * header that lags the map must not make two virtual blocks share one
 * physical block. */
static int load_bmap(struct vdi_image *img, uint64_t file_size)
{
	const struct vdi_header *h = &img->hdr;
	uint64_t avail = 0, slots_in_file = 0, max_index = 0;
	uint64_t in_file = 0; /* entries the file holds whole */
	uint32_t i, entries, lim, *buf;
	void *map;
	int ret;

	img->bmap_sectors = (uint32_t)((vdi_bmap_bytes(h) + VDI_SECTOR - 1) /
				       VDI_SECTOR);
	entries = img->bmap_sectors * ENTRIES_PER_SECTOR;
	/* Validation put the map inside the file; its last sector may run
	 * into bytes the file does not have only when the data offset is not
	 * past it, which validation also excluded (or there are no blocks). */
	img->map_bytes = ((entries ? entries : 1) * sizeof(*img->map) + 4095) /
			 4096 * 4096;
	/* Untouched pages read as zeros (free entries) and cost nothing;
	 * MAP_NORESERVE: a 512 TiB image's 2 GiB map is not charged to the
	 * commit limit before it is used. */
	map = mmap(NULL, img->map_bytes, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	img->map = map == MAP_FAILED ? NULL : map;
	buf = malloc(BMAP_CHUNK);
	img->dirty = calloc((img->bmap_sectors + 63) / 64 + 1, sizeof(uint64_t));
	img->data_groups = calloc(entries / BMAP_GROUP / 64 + 1,
				  sizeof(uint64_t));
	if (!img->map || !buf || !img->dirty || !img->data_groups) {
		free(buf);
		return vdi_error(-ENOMEM, "vdi_open", img->path,
				 "cannot allocate the block map (%" PRIu32
				 " entries)", h->blocks);
	}
	if (file_size > h->offset_bmap) {
		avail = file_size - h->offset_bmap;
		in_file = avail / 4;
	}
	lim = in_file < h->blocks ? (uint32_t)in_file : h->blocks;
	for (i = 0; i < entries;) {
		uint32_t n = entries - i < BMAP_CHUNK / 4 ? entries - i
							  : BMAP_CHUNK / 4;
		uint64_t at = 4 * (uint64_t)i, len = 4 * (uint64_t)n;
		uint64_t have = at >= avail ? 0 : avail - at;
		unsigned char *dst = (unsigned char *)buf;

		if (have < len)
			memset(dst + have, 0, len - have);
		if (have) {
			ret = vdi_file_read(img->meta_fd, dst,
					    have < len ? have : len,
					    h->offset_bmap + at, VDI_FILE_SEAM);
			if (ret < 0) {
				free(buf);
				return vdi_error(ret, "vdi_open", img->path,
						 "cannot read the block map: "
						 "%s", strerror(-ret));
			}
		}
		scan_chunk(img, buf, i, n, lim, &max_index);
		i += n;
	}
	free(buf);
	/* Only a read-only open gets here with the map cut short: the
	 * entries the file does not hold whole are missing. */
	for (i = lim; i < h->blocks; i++) {
		atomic_init(&img->map[i], ~VDI_BMAP_MISSING);
		img->map_missing++;
	}

	if (file_size > h->offset_data)
		slots_in_file = (file_size - h->offset_data + img->slot_size - 1) /
				img->slot_size;
	img->bad_lo = (uint32_t)(slots_in_file < UINT32_MAX ? slots_in_file
							    : UINT32_MAX);
	img->bad_hi = max_index > slots_in_file ? (uint32_t)max_index
						: img->bad_lo;
	if (img->map_missing)
		img->bad_hi = VDI_BMAP_MISSING + 1;
	img->slot_end = (uint32_t)max_index;
	img->count_on_disk = h->blocks_allocated;
	img->next_free = max_index > slots_in_file ? max_index : slots_in_file;
	img->next_free_open = img->next_free;
	img->ref_end = img->next_free;
	return 0;
}

/* The file's size is set ahead of the allocator (extend_ahead) only on
 * ext4, where it was measured.  Where a file cannot have holes (exFAT, FAT)
 * a larger size would be written out as zeros. */
static bool on_ext4(int fd)
{
	struct statfs sf;

	return fstatfs(fd, &sf) == 0 && sf.f_type == EXT4_SUPER_MAGIC;
}

/* A writable open: find slots named by two entries or more (one pass
 * over the groups of entries that hold data, a bit per slot) and mark
 * every block using one, so that writes to them
 * are refused rather than changing another block's data. */
static int find_shared(struct vdi_image *img)
{
	uint64_t *seen, *dup;
	/* Slots past the end of the file are fenced anyway: the bitmaps are
	 * bounded by the file's size, whatever the entries say. */
	uint32_t vb, end = img->slot_end < img->bad_lo ? img->slot_end
						       : img->bad_lo;
	uint32_t words = end / 64 + 1, g;
	uint32_t groups = (img->hdr.blocks + BMAP_GROUP - 1) / BMAP_GROUP;
	bool any = false;
	int ret = 0;

	/* Two entries at least must name the same slot. */
	if (img->blocks_mapped < 2)
		return 0;
	seen = calloc(words, sizeof(*seen));
	dup = calloc(words, sizeof(*dup));
	if (!seen || !dup) {
		ret = vdi_error(-ENOMEM, "vdi_open", img->path,
				"out of memory for %" PRIu32 " slots", end);
		goto out_free;
	}
	for (g = 0; g < groups; g++) {
		if (!(img->data_groups[g / 64] >> (g % 64) & 1))
			continue;
		for (vb = g * BMAP_GROUP;
		     vb < img->hdr.blocks && vb < (g + 1) * BMAP_GROUP; vb++) {
			uint32_t e = vdi_map_get(img, vb); /* as on disk */

			if (!vdi_entry_is_data(e) || e >= end)
				continue;
			if (seen[e / 64] >> (e % 64) & 1) {
				dup[e / 64] |= 1ull << (e % 64);
				any = true;
			}
			seen[e / 64] |= 1ull << (e % 64);
		}
	}
	if (!any)
		goto out_free;
	img->shared = calloc(img->hdr.blocks / 64 + 1, sizeof(uint64_t));
	if (!img->shared) {
		ret = vdi_error(-ENOMEM, "vdi_open", img->path,
				"out of memory");
		goto out_free;
	}
	for (g = 0; g < groups; g++) {
		if (!(img->data_groups[g / 64] >> (g % 64) & 1))
			continue;
		for (vb = g * BMAP_GROUP;
		     vb < img->hdr.blocks && vb < (g + 1) * BMAP_GROUP; vb++) {
			uint32_t e = vdi_map_get(img, vb);

			if (vdi_entry_is_data(e) && e < end &&
			    (dup[e / 64] >> (e % 64) & 1))
				img->shared[vb / 64] |= 1ull << (vb % 64);
		}
	}
out_free:
	free(seen);
	free(dup);
	return ret;
}

int vdi_shared_error(const struct vdi_image *img, uint32_t vb)
{
	return vdi_error(-EUCLEAN, "vdi_queue_submit", img->path,
			 "block %" PRIu32 " shares physical block %" PRIu32
			 " with another block: a write would change both; run "
			 "'vdi check -r all'", vb, vdi_map_get(img, vb));
}

void vdi_image_free(struct vdi_image *img)
{
	if (!img)
		return;
	vdi_image_free(img->parent);
	if (img->fd >= 0)
		close(img->fd);
	if (img->meta_fd >= 0)
		close(img->meta_fd);
	if (img->lock_fd >= 0)
		close(img->lock_fd);
	free(img->zero_buf);
	vdi_disk_free(img);
	if (img->map)
		munmap((void *)img->map, img->map_bytes);
	free(img->dirty);
	free(img->data_groups);
	free(img->shared);
	free((void *)img->pending);
	free(img->path);
	pthread_mutex_destroy(&img->lock);
	pthread_cond_destroy(&img->prepared);
	vdi_fresh_destroy(&img->fresh);
	free(img);
}

int vdi_image_open(const char *path, unsigned flags,
		   const char *const *parents, size_t nparents, unsigned depth,
		   struct vdi_image **out)
{
	struct vdi_image *img;
	struct stat st;
	char why[256];
	int oflags, ret;
	ssize_t n;

	*out = NULL;
	vdi_error_clear();
	if (flags & ~(VDI_OPEN_PUBLIC_FLAGS | VDI_OPEN_COMMIT))
		return vdi_error(-EINVAL, "vdi_open", path,
				 "unknown flags 0x%x", flags);
	img = calloc(1, sizeof(*img));
	if (!img || !(img->path = strdup(path))) {
		free(img);
		return vdi_error(-ENOMEM, "vdi_open", path, "out of memory");
	}
	img->flags = flags;
	img->fd = img->meta_fd = img->lock_fd = -1;
	pthread_mutex_init(&img->lock, NULL);
	pthread_cond_init(&img->prepared, NULL);
	vdi_fresh_init(&img->fresh, 0);

	oflags = ((flags & VDI_OPEN_RDONLY) ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	img->meta_fd = open(path, oflags);
	if (img->meta_fd < 0) {
		ret = vdi_error(-errno, "vdi_open", path, "%s", strerror(errno));
		goto out_free;
	}
	if (fstat(img->meta_fd, &st) < 0) {
		ret = vdi_error(-errno, "vdi_open", path, "%s", strerror(errno));
		goto out_free;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = vdi_error(-EINVAL, "vdi_open", path,
				"not a regular file");
		goto out_free;
	}
	ret = vdi_image_lock(img);
	if (ret < 0)
		goto out_free;

	n = pread(img->meta_fd, img->preamble, sizeof(img->preamble), 0);
	if (n < 0) {
		ret = vdi_error(-errno, "vdi_open", path,
				"cannot read the header: %s", strerror(errno));
		goto out_free;
	}
	ret = vdi_header_decode(img->preamble, (size_t)n, &img->hdr, why,
				sizeof(why));
	if (ret == 0)
		ret = vdi_header_validate(&img->hdr, (uint64_t)st.st_size, why,
					  sizeof(why));
	/* A file that ends inside its block map or before its data area
	 * opens read-only, for vdi check to say so (and vdi_repair to mend
	 * it): the blocks it does not hold fail to read. */
	if (ret < 0 && (flags & VDI_OPEN_RDONLY) &&
	    vdi_header_validate(&img->hdr, UINT64_MAX, NULL, 0) == 0)
		ret = 0;
	if (ret < 0) {
		vdi_error(ret, "vdi_open", path, "%s", why);
		goto out_free;
	}
	if (vdi_header_is_legacy(&img->hdr) &&
	    (flags & (VDI_OPEN_RDONLY | VDI_OPEN_DIRECT)) != VDI_OPEN_RDONLY) {
		ret = vdi_error((flags & VDI_OPEN_RDONLY) ? -ENOTSUP : -EROFS,
				"vdi_open", path,
				"legacy VDI %" PRIu32 ".%" PRIu32 " header: such "
				"images open read-only and without O_DIRECT "
				"(their data is not sector-aligned); 'vdi "
				"convert' makes a VDI 1.1 copy",
				img->hdr.version >> 16, img->hdr.version & 0xffff);
		goto out_free;
	}
	img->disk_size = vdi_header_disk_size(&img->hdr);
	img->block_shift = (unsigned)__builtin_ctz(img->hdr.block_size);
	img->slot_size = vdi_slot_size(&img->hdr);

	ret = load_bmap(img, (uint64_t)st.st_size);
	if (ret < 0)
		goto out_free;

	img->fd = open(path, oflags | ((flags & VDI_OPEN_DIRECT) ? O_DIRECT : 0));
	if (img->fd < 0) {
		ret = vdi_error(-errno, "vdi_open", path, "%s%s", strerror(errno),
				errno == EINVAL && (flags & VDI_OPEN_DIRECT)
					? " (the file system refuses O_DIRECT)"
					: "");
		goto out_free;
	}
	img->dio_align = (flags & VDI_OPEN_DIRECT) ? query_dio_align(img->fd)
						   : 1;
	if (flags & VDI_OPEN_DIRECT) {
		uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);

		if (st.st_blksize > 0 && (uint64_t)st.st_blksize > pg)
			pg = (uint64_t)st.st_blksize;
		if (img->hdr.offset_data % pg)
			img->shared_page_end =
				(img->hdr.offset_data + pg - 1) / pg * pg;
	}
	if (img->hdr.type == VDI_TYPE_DIFF && !(flags & VDI_OPEN_NO_PARENT)) {
		ret = vdi_chain_open_parent(img, parents, nparents, depth);
		if (ret < 0)
			goto out_free;
		img->pending = calloc(img->hdr.blocks / 64 + 1,
				      sizeof(*img->pending));
		if (!img->pending) {
			ret = vdi_error(-ENOMEM, "vdi_open", path,
					"out of memory");
			goto out_free;
		}
	}
	if (!(flags & VDI_OPEN_RDONLY)) {
		void *z;

		if (posix_memalign(&z, 4096, VDI_ZERO_BUF)) {
			ret = vdi_error(-ENOMEM, "vdi_open", path, "out of memory");
			goto out_free;
		}
		img->zero_buf = memset(z, 0, VDI_ZERO_BUF);
		/* See `fresh`.  Not with parents: a copy-up writes its slot
		 * outside the queues, where nothing is tracked.  Only where
		 * slots are two file-system blocks or more (so that widening
		 * reaches into the next slot at most). */
		if ((flags & VDI_OPEN_DIRECT) && !img->parent &&
		    img->hdr.type != VDI_TYPE_STATIC && st.st_blksize > 0 &&
		    st.st_blksize <= VDI_ZERO_BUF &&
		    img->slot_size >= 2 * (uint64_t)st.st_blksize &&
		    (img->hdr.offset_data % (uint64_t)st.st_blksize ||
		     img->slot_size % (uint64_t)st.st_blksize))
			img->fresh.fsb = (uint32_t)st.st_blksize;
		img->extend_ahead =
			(flags & VDI_OPEN_DIRECT) &&
			img->hdr.type != VDI_TYPE_STATIC && st.st_blksize > 0 &&
			((img->hdr.offset_data % (uint64_t)st.st_blksize == 0 &&
			  img->slot_size % (uint64_t)st.st_blksize == 0) ||
			 vdi_fresh_on(&img->fresh)) &&
			on_ext4(img->fd);
		ret = find_shared(img);
		if (ret < 0)
			goto out_free;
	}
	/* What it said holds only until the first allocation. */
	free(img->data_groups);
	img->data_groups = NULL;
	*out = img;
	return 0;

out_free:
	vdi_image_free(img);
	return ret;
}

static void mark_dirty(struct vdi_image *img, uint32_t vb)
{
	vdi_image_mark_sector_dirty(img, vb / ENTRIES_PER_SECTOR);
}

void vdi_image_mark_sector_dirty(struct vdi_image *img, uint32_t s)
{
	if (!(img->dirty[s / 64] & (1ull << (s % 64)))) {
		img->dirty[s / 64] |= 1ull << (s % 64);
		img->dirty_count++;
	}
}

uint32_t vdi_image_next_dirty(const struct vdi_image *img, uint32_t s)
{
	uint32_t w = s / 64;
	uint64_t bits;

	if (!img->dirty_count || s >= img->bmap_sectors)
		return img->bmap_sectors;
	bits = img->dirty[w] & (~0ull << (s % 64));
	while (!bits) {
		if (++w > (img->bmap_sectors - 1) / 64)
			return img->bmap_sectors;
		bits = img->dirty[w];
	}
	s = w * 64 + (uint32_t)__builtin_ctzll(bits);
	return s < img->bmap_sectors ? s : img->bmap_sectors;
}

void vdi_image_touch(struct vdi_image *img)
{
	uuid_t u;

	if (atomic_load_explicit(&img->modify_set, memory_order_acquire))
		return;
	pthread_mutex_lock(&img->lock);
	if (!atomic_load_explicit(&img->modify_set, memory_order_relaxed)) {
		uuid_generate(u);
		vdi_uuid_swap(img->hdr.uuid_modify, u);
		img->header_dirty = true;
		img->written = true;
		atomic_store_explicit(&img->modify_set, true,
				      memory_order_release);
	}
	pthread_mutex_unlock(&img->lock);
}

/* Before the first allocation through this handle: slots past the last
 * one any entry names hold no block (a crash lost their entries, or
 * another writer's count ran ahead).  Allocating after them would leave
 * them unused below the header's count, where QEMU and VirtualBox expect
 * only slots in use; so the file is cut after the last named slot and
 * allocation starts there, as theirs does.  Not with entries past the end
 * of the file (fenced: allocation must stay past them), and nothing is
 * lost if the cut fails: allocation then goes on past the end.  No entry
 * is staged (3-durable) then: only a block allocated through this handle
 * is staged, and none was since open or the last cut (vdi_reclaim flushes
 * before it cuts). */
static void cut_leaked_tail(struct vdi_image *img)
{
	uint64_t end = img->slot_end;

	if (img->hdr.type == VDI_TYPE_STATIC || img->bad_lo != img->bad_hi ||
	    img->next_free <= end)
		return;
	if (ftruncate(img->meta_fd, (off_t)vdi_slot_offset(img, end)) < 0)
		return;
	vdi_image_file_cut(img, (uint32_t)end);
}

void vdi_image_file_cut(struct vdi_image *img, uint32_t used)
{
	img->next_free = img->next_free_open = img->ref_end = used;
	img->bad_lo = img->bad_hi = used;
	/* The size set ahead and the slots reserved ahead went with it. */
	img->file_ahead = 0;
	img->reserved_to = 0;
	/* What it knew of the blocks past `used` went too. */
	vdi_fresh_forget(&img->fresh);
}

/* A block whose slot a thread prepares outside the lock (see
 * `preparing`). */
struct vdi_prep {
	struct vdi_prep *next;
	uint32_t vb;
};

/* Wait while a thread prepares a slot for block `vb`.  Under the lock. */
static void wait_prepared(struct vdi_image *img, uint32_t vb)
{
	const struct vdi_prep *p = img->preparing;

	while (p) {
		if (p->vb != vb) {
			p = p->next;
			continue;
		}
		pthread_cond_wait(&img->prepared, &img->lock);
		p = img->preparing;
	}
}

/* A new slot's space is reserved for a first write shorter than this
 * (see reserve_slot). */
#define RESERVE_BELOW ((uint64_t)16 << 10)

/* How far ahead of the last slot handed out the file's size is kept, in
 * slots, and how close the allocator may come before it is moved on. */
#define AHEAD_SLOTS 64
#define AHEAD_MARGIN 8

/* ext4 runs a direct write that extends the file synchronously, under
 * its exclusive inode lock, where one into a hole inside the file's size
 * goes out asynchronously as raw-sparse's do.  New slots are at the end of
 * the file, so every allocating write extended it: 1 MiB writes into a
 * fresh image had 0-55% of their direct I/O queued asynchronously
 * (iomap:iomap_dio_rw_queued) and twice raw-sparse's context switches,
 * 100% and the same with the size set ahead (docs/benchmarks.md).  The
 * space past the last slot is a hole: `vdi check` calls it that, QEMU and
 * VirtualBox allocate at the count, and a later writable open cuts it
 * (cut_leaked_tail) if a crash left it.  On layouts whose slots straddle
 * file-system blocks only where writes are widened (`fresh`): with the
 * slots filled with zeros instead, it measured slower.  Under the lock;
 * never makes the file shorter, and failing costs only speed. */
static void extend_ahead(struct vdi_image *img, uint64_t index)
{
	struct rlimit rl;
	struct stat st;
	uint64_t to;

	if (!img->extend_ahead ||
	    img->file_ahead >= vdi_slot_offset(img, index + AHEAD_MARGIN))
		return;
	to = vdi_slot_offset(img, index + AHEAD_SLOTS);
	/* Never past a file size limit: ftruncate there would raise
	 * SIGXFSZ, which kills a process that writes no further than the
	 * limit. */
	if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    to > (uint64_t)rl.rlim_cur)
		to = (uint64_t)rl.rlim_cur;
	if (fstat(img->meta_fd, &st) < 0)
		return;
	if ((uint64_t)st.st_size >= to)
		img->file_ahead = (uint64_t)st.st_size;
	else if (ftruncate(img->meta_fd, (off_t)to) == 0)
		img->file_ahead = to;
}

void vdi_image_trim_ahead(struct vdi_image *img)
{
	uint64_t end = vdi_slot_offset(img, img->next_free);
	struct stat st;

	if (!img->file_ahead || img->file_ahead <= end ||
	    fstat(img->meta_fd, &st) < 0 || (uint64_t)st.st_size <= end ||
	    (uint64_t)st.st_size > img->file_ahead)
		return;
	/* Only the hole set ahead goes; a failure leaves it, harmless. */
	if (ftruncate(img->meta_fd, (off_t)end) == 0)
		img->file_ahead = 0;
}

/* Reserve a new slot's space (unwritten extents) before a first write
 * into it shorter than RESERVE_BELOW.  ext4 must allocate a block for a
 * direct write into a hole, which it cannot do without blocking, so
 * io_uring hands every such write to an io-wq worker (a wake-up and a
 * context switch each way); into reserved space the write goes out from
 * the submitting thread.  Measured, 4k random writes into a fresh image:
 * none handed to io-wq instead of all, p50 50 us against 63-86 at QD1,
 * 1.2-1.6x the MB/s at QD32, and the machine's CPU per write down to
 * raw-sparse's; longer first writes measured slower with it
 * (docs/benchmarks.md, "Reserving a new slot").  RESERVE_SLOTS slots
 * at a time, from this one up to the size set ahead: ext4's fallocate
 * first waits for every direct write in flight (inode_dio_wait), and
 * once per slot that wait held the submitting thread 1,000 times per
 * 1,024 new slots, putting p99 at 1.6-2.0 ms against raw-sparse's 0.9-1.2;
 * once per 16 slots, 0.6 ms (docs/benchmarks.md, "Reserving slots
 * ahead").  A block then takes its whole slot on disk at once, as QEMU's
 * and VirtualBox's do.  Reserved space reads as zeros and is a hole to
 * SEEK_DATA, so a slot a crash leaves unnamed is as before; what is
 * reserved past the last slot goes with the size set ahead at close
 * (vdi_image_trim_ahead).  Failing costs only speed.  Where the size is
 * set ahead (extend_ahead). */
#define RESERVE_SLOTS 16

static void reserve_slot(struct vdi_image *img, uint64_t index, uint64_t len)
{
	uint64_t from = vdi_slot_offset(img, index), to;

	if (!img->extend_ahead || len >= RESERVE_BELOW || index < img->reserved_to)
		return;
	to = vdi_slot_offset(img, index + RESERVE_SLOTS);
	if (to > img->file_ahead)
		to = img->file_ahead;
	if (to < from + img->slot_size)
		to = from + img->slot_size;
	if (fallocate(img->meta_fd, FALLOC_FL_KEEP_SIZE, (off_t)from,
		      (off_t)(to - from)) == 0)
		img->reserved_to = (to - img->hdr.offset_data) / img->slot_size;
}

int vdi_image_alloc(struct vdi_image *img, uint32_t vb, uint64_t len,
		    uint32_t *index)
{
	bool full = len >= img->hdr.block_size;
	struct vdi_prep prep = { .vb = vb };
	bool copy = false, listed = false;
	uint32_t e;
	int ret = 0, keep;

	pthread_mutex_lock(&img->lock);
	wait_prepared(img, vb);
	e = vdi_map_get(img, vb);
	if (vdi_entry_is_data(e)) {
		*index = e;
		goto out;
	}
	/* An entry that points further past the end of the file than one
	 * block per virtual block could reach fences allocation: allocating
	 * after it would make a file of whatever size the entry says. */
	if (img->next_free >= VDI_BMAP_ZERO ||
	    (uint64_t)img->bad_hi > (uint64_t)img->bad_lo + img->hdr.blocks) {
		ret = vdi_error(-EUCLEAN, "vdi_queue_submit", img->path,
				"cannot allocate block %" PRIu32 ": the block "
				"map points to physical block %" PRIu32 ", far "
				"past the end of the file; run 'vdi check -r "
				"all'", vb, img->bad_hi - 1);
		goto out;
	}
	if (!full && e == VDI_BMAP_FREE && img->hdr.type == VDI_TYPE_DIFF &&
	    !img->parent) {
		ret = vdi_chain_no_parent(img, vb, "vdi_queue_submit");
		goto out;
	}
	/* The entry on disk stays as it is until the data is there: a copy
	 * of its map sector keeps it (made here too, so that running out of
	 * memory fails before a slot is handed out). */
	ret = vdi_disk_keep(img, vb);
	if (ret < 0)
		goto out;
	if (img->next_free == img->next_free_open)
		cut_leaked_tail(img);
	if (!full)
		copy = vdi_chain_has_parent_data(img, vb);
	*index = (uint32_t)img->next_free++;
	img->written = true;
	/* Before the entry is stored: a request that finds it finds the
	 * slot tracked. */
	vdi_fresh_grow(&img->fresh, vdi_slot_offset(img, *index),
		       vdi_slot_offset(img, *index + 1));
	extend_ahead(img, *index);
	if (!copy) /* (a copy-up writes the whole slot) */
		reserve_slot(img, *index, len);
	if (copy) {
		/* The parents' block, copied up without the lock: other
		 * blocks allocate meanwhile; requests for this one wait until
		 * its slot is ready and its entry published. */
		prep.next = img->preparing;
		img->preparing = &prep;
		listed = true;
		pthread_mutex_unlock(&img->lock);
		ret = vdi_chain_copy_up(img, vb, *index);
		pthread_mutex_lock(&img->lock);
		/* A failed copy-up leaves the block pending: reads still go
		 * to the parents, and the next partial write copies up again
		 * (vdi_chain_copy_up_pending). */
		if (ret < 0)
			vdi_set_pending(img, vb, true);
	}
	if (full && img->pending) {
		uint32_t pe;

		/* The parents hold this block: until the write lands, they
		 * still give its data. */
		vdi_chain_resolve(img->parent, vb, &pe);
		if (vdi_entry_is_data(pe))
			vdi_set_pending(img, vb, true);
	}
	/* Again, under the lock up to the store: while it was let go, a
	 * flush may have dropped the copy (it matched `map` then). */
	keep = vdi_disk_keep(img, vb);
	if (keep == 0) {
		vdi_map_set(img, vb, *index);
		atomic_fetch_add_explicit(&img->stats.blocks_allocated, 1,
					  memory_order_relaxed);
	} else {
		ret = keep; /* (the slot stays unused, named by no entry) */
	}
	if (listed) {
		/* Published: requests for the block may go on. */
		for (struct vdi_prep **pp = &img->preparing; *pp;
		     pp = &(*pp)->next)
			if (*pp == &prep) {
				*pp = prep.next;
				break;
			}
		pthread_cond_broadcast(&img->prepared);
	}
out:
	pthread_mutex_unlock(&img->lock);
	return ret;
}

/* The on-disk entry of `vb` changed from `old` to `e`: counts, dirty
 * sector, header.  Under the lock. */
static void disk_entry_changed(struct vdi_image *img, uint32_t vb,
			       uint32_t old, uint32_t e)
{
	if (!vdi_entry_is_data(old) && vdi_entry_is_data(e))
		img->blocks_mapped++;
	else if (vdi_entry_is_data(old) && !vdi_entry_is_data(e))
		img->blocks_mapped--;
	mark_dirty(img, vb);
	if (vdi_entry_is_data(e) && e + 1 > img->slot_end)
		img->slot_end = e + 1;
	if (img->hdr.blocks_allocated != vdi_image_count(img)) {
		img->hdr.blocks_allocated = vdi_image_count(img);
		img->header_dirty = true;
	}
}

void vdi_image_set_disk_entry(struct vdi_image *img, uint32_t vb, uint32_t e)
{
	struct vdi_disk_sector *ds = vdi_disk_sector(img, vb / ENTRIES_PER_SECTOR);
	uint32_t old = ds ? ds->e[vb % ENTRIES_PER_SECTOR] : vdi_map_get(img, vb);

	/* Without a copy, the disk view is `map`, and `e` is its entry. */
	if (old == e || !ds)
		return;
	ds->e[vb % ENTRIES_PER_SECTOR] = e;
	disk_entry_changed(img, vb, old, e);
}

void vdi_image_set_entry(struct vdi_image *img, uint32_t vb, uint32_t e)
{
	struct vdi_disk_sector *ds = vdi_disk_sector(img, vb / ENTRIES_PER_SECTOR);
	uint32_t old = ds ? ds->e[vb % ENTRIES_PER_SECTOR] : vdi_map_get(img, vb);

	vdi_map_set(img, vb, e);
	if (ds)
		ds->e[vb % ENTRIES_PER_SECTOR] = e;
	if (old != e)
		disk_entry_changed(img, vb, old, e);
}

uint32_t vdi_image_count(const struct vdi_image *img)
{
	return img->slot_end > img->blocks_mapped ? img->slot_end
						  : img->blocks_mapped;
}

void vdi_image_recount(struct vdi_image *img)
{
	uint32_t vb, end = 0;

	for (vb = 0; vb < img->hdr.blocks; vb++) {
		uint32_t e = vdi_disk_get(img, vb);

		if (vdi_entry_is_data(e) && e + 1 > end)
			end = e + 1;
	}
	img->slot_end = end;
	if (img->hdr.blocks_allocated != vdi_image_count(img)) {
		img->hdr.blocks_allocated = vdi_image_count(img);
		img->header_dirty = true;
	}
}

uint32_t vdi_image_make_zero(struct vdi_image *img, uint32_t vb)
{
	uint32_t e;

	pthread_mutex_lock(&img->lock);
	wait_prepared(img, vb);
	e = vdi_map_get(img, vb);
	/* A block with data keeps its slot: freeing a slot online would
	 * leave a hole below the count, or make the count point at a slot in
	 * use (the caller punches it instead). */
	if (e == VDI_BMAP_FREE) {
		img->written = true;
		vdi_image_set_entry(img, vb, VDI_BMAP_ZERO);
	}
	pthread_mutex_unlock(&img->lock);
	return e;
}

int vdi_image_extend(struct vdi_image *img, const char *fn)
{
	uint64_t end = vdi_slot_offset(img, img->next_free), need;
	struct stat st;
	int err;

	if (img->next_free == img->next_free_open)
		return 0;
	if (fstat(img->meta_fd, &st) < 0)
		return vdi_error(-errno, fn, img->path, "fstat: %s",
				 strerror(errno));
	if ((uint64_t)st.st_size >= end)
		return 0;
	/* Up to every block handed out: no write still in flight lies past
	 * that, so the size set here never cuts one short (st_size may be
	 * stale by then). */
	if (ftruncate(img->meta_fd, (off_t)end) == 0)
		return 0;
	err = errno;
	/* A file size limit (EFBIG) may lie below blocks whose writes failed
	 * for that very reason.  What must be covered are the blocks whose
	 * entries are, or are about to be, on disk (ref_end).  Allocating
	 * the last byte extends the file to there without ever making it
	 * shorter, whatever is still in flight. */
	need = vdi_slot_offset(img, img->ref_end);
	if (img->ref_end <= img->next_free_open || (uint64_t)st.st_size >= need ||
	    fallocate(img->meta_fd, 0, (off_t)need - 1, 1) == 0)
		return 0;
	return vdi_error(-err, fn, img->path,
			 "cannot extend the file to %" PRIu64 " bytes: %s", end,
			 strerror(err));
}

uint64_t vdi_get_size(const struct vdi_image *img)
{
	return img->disk_size;
}

static void copy_text(char *dst, const char *src, size_t n)
{
	size_t i;

	for (i = 0; i < n && src[i]; i++)
		dst[i] = src[i];
	dst[i] = '\0';
}

int vdi_get_info(struct vdi_image *img, struct vdi_info *info)
{
	const struct vdi_header *h = &img->hdr;
	struct stat st;

	memset(info, 0, sizeof(*info));
	pthread_mutex_lock(&img->lock);
	info->disk_size = img->disk_size;
	info->disk_size_stored = h->disk_size;
	info->version = h->version;
	info->header_size = h->header_size;
	info->type = h->type;
	info->image_flags = h->flags;
	info->offset_bmap = h->offset_bmap;
	info->offset_data = h->offset_data;
	info->block_size = h->block_size;
	info->block_extra = h->block_extra;
	info->blocks = h->blocks;
	info->blocks_allocated = h->blocks_allocated;
	info->blocks_mapped = img->blocks_mapped;
	info->cylinders = h->cylinders;
	info->heads = h->heads;
	info->sectors = h->sectors;
	info->sector_size = h->sector_size;
	info->lchs_cylinders = h->lchs_cylinders;
	info->lchs_heads = h->lchs_heads;
	info->lchs_sectors = h->lchs_sectors;
	info->lchs_sector_size = h->lchs_sector_size;
	vdi_uuid_swap(info->uuid_create, h->uuid_create);
	vdi_uuid_swap(info->uuid_modify, h->uuid_modify);
	vdi_uuid_swap(info->uuid_link, h->uuid_link);
	vdi_uuid_swap(info->uuid_parent_modify, h->uuid_parent_modify);
	copy_text(info->description, h->description, VDI_DESC_SIZE);
	copy_text(info->banner, h->banner, VDI_BANNER_SIZE);
	pthread_mutex_unlock(&img->lock);
	if (fstat(img->meta_fd, &st) == 0)
		info->file_size = (uint64_t)st.st_size;
	return 0;
}

void vdi_get_stats(struct vdi_image *img, struct vdi_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->sqes = atomic_load(&img->stats.sqes);
	st->enters = atomic_load(&img->stats.enters);
	st->data_read_bytes = atomic_load(&img->stats.data_read_bytes);
	st->data_write_bytes = atomic_load(&img->stats.data_write_bytes);
	st->meta_writes = atomic_load(&img->stats.meta_writes);
	st->meta_write_bytes = atomic_load(&img->stats.meta_write_bytes);
	st->blocks_allocated = atomic_load(&img->stats.blocks_allocated);
	st->flushes = atomic_load(&img->stats.flushes);
}
