/* vdi_compact: zero blocks become zero entries, data blocks move down into
 * the holes, the file is cut after the last one.  Offline (the image is
 * opened exclusively) and synchronous; every move is crash-safe. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "0-base/error.h"
#include "0-base/fileio.h"
#include "2-image/image.h"

/* Moves made durable together: copies, one fdatasync, then the map. */
#define MOVE_BATCH 32

static bool all_zero(const unsigned char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* What a free entry of `img` would read for block `vb`: 1 if the same
 * as `data` (zeros when no parent has the block), 0 if not, or a negative
 * errno.  `pbuf` holds one slot of the parent. */
static int same_as_parents(struct vdi_image *img, uint32_t vb,
			   const unsigned char *data, unsigned char *pbuf)
{
	struct vdi_image *src;
	uint32_t e;
	int ret;

	src = vdi_chain_resolve(img->parent, vb, &e);
	if (!vdi_entry_is_data(e))
		return all_zero(data, img->hdr.block_size);
	if (vdi_entry_is_bad(src, e))
		return 0;
	ret = vdi_read_slot(src, e, pbuf);
	if (ret < 0)
		return vdi_error(ret, "vdi_compact", src->path,
				 "cannot read block %" PRIu32 ": %s", vb,
				 strerror(-ret));
	return memcmp(data, pbuf + src->hdr.block_extra,
		      img->hdr.block_size) == 0;
}

/* The blocks of zeros this call turned into zero entries, with their
 * slots: should moving blocks into the slots fail (a full file system),
 * restore_freed() gives back those no block took. */
struct freed {
	struct freed_slot {
		uint32_t vb, slot;
	} *v;
	size_t n, cap;
};

static int freed_add(struct freed *f, uint32_t vb, uint32_t slot)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 64;
		struct freed_slot *v = realloc(f->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		f->v = v;
		f->cap = cap;
	}
	f->v[f->n++] = (struct freed_slot){ vb, slot };
	return 0;
}

/* A move failed: every block of zeros this call freed whose slot no entry
 * names gets it back, punched first (a failed copy may have left part of
 * another block there), so that no slot below the count stays unused
 * (QEMU and VirtualBox need the slots in use to be exactly those below
 * it).  Then the count follows the map.  The call's error stands. */
static void restore_freed(struct vdi_image *img, const struct freed *f)
{
	uint64_t *named = calloc(img->next_free / 64 + 1, sizeof(*named));
	uint32_t vb;
	size_t i;

	if (!named)
		return;
	for (vb = 0; vb < img->hdr.blocks; vb++) {
		uint32_t e = vdi_disk_get(img, vb);

		if (vdi_entry_is_data(e) && e < img->next_free)
			named[e / 64] |= 1ull << (e % 64);
	}
	for (i = 0; i < f->n; i++) {
		uint32_t s = f->v[i].slot;

		if (named[s / 64] >> (s % 64) & 1 ||
		    vdi_disk_get(img, f->v[i].vb) != VDI_BMAP_ZERO ||
		    fallocate(img->meta_fd,
			      FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)vdi_slot_offset(img, s),
			      (off_t)img->slot_size) < 0)
			continue;
		named[s / 64] |= 1ull << (s % 64);
		vdi_image_set_entry(img, f->v[i].vb, s);
	}
	free(named);
	if (vdi_image_commit_meta(img) == 0) {
		vdi_image_recount(img);
		vdi_image_commit_meta(img);
	}
}

/* Data blocks that the parents already give become free entries (in a
 * differencing image); then those all zeros become zero entries. */
static int find_zero_blocks(struct vdi_image *img, unsigned char *buf,
			    unsigned char *pbuf, struct vdi_compact_result *res,
			    struct freed *freed, vdi_progress_fn progress,
			    void *opaque)
{
	uint32_t vb;
	int ret;

	for (vb = 0; vb < img->hdr.blocks; vb++) {
		uint32_t e = vdi_disk_get(img, vb), to;
		const unsigned char *data = buf + img->hdr.block_extra;

		if (progress)
			progress(opaque, vb, (uint64_t)img->hdr.blocks * 2);
		if (!vdi_entry_is_data(e))
			continue;
		/* A discarded block's slot is punched out: zeros, unread. */
		ret = 0;
		if (vdi_range_is_hole(img->meta_fd, vdi_slot_offset(img, e),
				      vdi_slot_offset(img, (uint64_t)e + 1)))
			memset(buf, 0, img->slot_size);
		else
			ret = vdi_read_slot(img, e, buf);
		if (ret < 0)
			return vdi_error(ret, "vdi_compact", img->path,
					 "cannot read block %" PRIu32 ": %s", vb,
					 strerror(-ret));
		ret = img->parent ? same_as_parents(img, vb, data, pbuf) : 0;
		if (ret < 0)
			return ret;
		if (ret) {
			to = VDI_BMAP_FREE;
			res->parent_blocks++;
		} else if (all_zero(data, img->hdr.block_size)) {
			/* In a child this also hides the parent's data. */
			to = VDI_BMAP_ZERO;
			res->zero_blocks++;
			if (freed_add(freed, vb, e) < 0)
				return vdi_error(-ENOMEM, "vdi_compact",
						 img->path, "out of memory");
		} else {
			continue;
		}
		vdi_image_set_entry(img, vb, to);
	}
	/* The freed blocks are about to be overwritten: the map must no
	 * longer point at them on disk first. */
	return vdi_image_commit_meta(img);
}

struct move {
	uint32_t vb, to;
};

static int apply_moves(struct vdi_image *img, const struct move *mv,
		       unsigned n)
{
	unsigned i;
	int ret = vdi_image_sync(img); /* the copies first */

	if (ret < 0)
		return ret;
	for (i = 0; i < n; i++) {
		vdi_image_set_entry(img, mv[i].vb, mv[i].to);
	}
	return vdi_image_commit_meta(img);
}

/* Move the highest data blocks into the lowest holes. */
static int fill_holes(struct vdi_image *img, unsigned char *buf,
		      uint32_t *used_out, struct vdi_compact_result *res,
		      vdi_progress_fn progress, void *opaque)
{
	uint64_t slots = img->next_free, p, hole = 0;
	uint32_t *owner = calloc(slots ? slots : 1, sizeof(*owner));
	struct move mv[MOVE_BATCH];
	uint32_t vb, used = 0;
	unsigned nmv = 0;
	int ret = 0;

	if (!owner)
		return vdi_error(-ENOMEM, "vdi_compact", img->path,
				 "out of memory");
	for (vb = 0; vb < img->hdr.blocks; vb++)
		if (vdi_entry_is_data(vdi_disk_get(img, vb))) {
			owner[vdi_disk_get(img, vb)] = vb + 1;
			used++;
		}
	for (p = slots; p-- > used && ret == 0;) {
		if (!owner[p])
			continue;
		while (owner[hole])
			hole++;
		ret = vdi_read_slot(img, p, buf);
		if (ret == 0)
			ret = vdi_file_write(img->meta_fd, buf, img->slot_size,
					     vdi_slot_offset(img, hole),
					     VDI_FILE_SEAM);
		if (ret < 0) {
			ret = vdi_error(ret, "vdi_compact", img->path,
					"cannot move block %" PRIu32 ": %s",
					owner[p] - 1, strerror(-ret));
			break;
		}
		mv[nmv++] = (struct move){ owner[p] - 1, (uint32_t)hole };
		owner[hole] = owner[p];
		owner[p] = 0;
		res->blocks_moved++;
		if (nmv == MOVE_BATCH) {
			ret = apply_moves(img, mv, nmv);
			nmv = 0;
		}
		if (progress)
			progress(opaque, img->hdr.blocks + (slots - p) *
					 img->hdr.blocks / (slots ? slots : 1),
				 (uint64_t)img->hdr.blocks * 2);
	}
	if (ret == 0 && nmv)
		ret = apply_moves(img, mv, nmv);
	free(owner);
	*used_out = used;
	return ret;
}

/* Cut the file after slot `used` - 1, once the map and count are durable. */
static int cut_after(struct vdi_image *img, uint32_t used, const char *fn)
{
	uint64_t end = vdi_slot_offset(img, used);
	int ret;

	vdi_image_recount(img);
	ret = vdi_image_commit_meta(img);
	if (ret < 0)
		return ret;
	if (ftruncate(img->meta_fd, (off_t)end) < 0)
		return vdi_error(-errno, fn, img->path,
				 "cannot cut the file at %" PRIu64 ": %s", end,
				 strerror(errno));
	vdi_image_file_cut(img, used);
	return vdi_image_sync(img);
}

int vdi_reclaim(struct vdi_image *img, struct vdi_compact_result *res)
{
	struct freed freed = { 0 };
	unsigned char *buf = NULL;
	struct stat st;
	uint32_t vb, used = 0;
	int ret;

	memset(res, 0, sizeof(*res));
	vdi_error_clear();
	if (img->flags & VDI_OPEN_RDONLY)
		return vdi_error(-EROFS, __func__, img->path,
				 "the image is open read-only");
	if (img->live_queues)
		return vdi_error(-EBUSY, __func__, img->path,
				 "%u queues are open on the image",
				 img->live_queues);
	ret = vdi_flush(img);
	if (ret < 0)
		return ret;
	if (fstat(img->meta_fd, &st) < 0)
		return vdi_error(-errno, __func__, img->path, "fstat: %s",
				 strerror(errno));
	res->file_size_before = res->file_size_after = (uint64_t)st.st_size;
	if (img->hdr.type == VDI_TYPE_STATIC)
		return 0;
	/* Blocks far past the end of the file, or sharing slots: moving
	 * blocks around them is for vdi_repair. */
	if (img->bad_lo != img->bad_hi || img->shared)
		return vdi_error(-EUCLEAN, __func__, img->path,
				 "the block map is damaged; run 'vdi check -r "
				 "all'");
	buf = malloc(img->slot_size);
	if (!buf)
		return vdi_error(-ENOMEM, __func__, img->path, "out of memory");
	pthread_mutex_lock(&img->lock);
	/* Blocks move below: what the queues knew of new slots goes. */
	vdi_fresh_forget(&img->fresh);
	for (vb = 0; vb < img->hdr.blocks; vb++) {
		uint32_t e = vdi_disk_get(img, vb);

		if (!vdi_entry_is_data(e) ||
		    !vdi_range_is_hole(img->meta_fd, vdi_slot_offset(img, e),
				       vdi_slot_offset(img, (uint64_t)e + 1)))
			continue;
		/* Reads zeros either way; a zero entry also hides a
		 * parent's block, as the punched slot did. */
		if (freed_add(&freed, vb, e) < 0) {
			ret = vdi_error(-ENOMEM, __func__, img->path,
					"out of memory");
			break;
		}
		vdi_image_set_entry(img, vb, VDI_BMAP_ZERO);
		res->zero_blocks++;
	}
	if (ret < 0 || !res->zero_blocks) {
		if (ret < 0)
			restore_freed(img, &freed);
		goto out_unlock;
	}
	/* No entry names the freed slots on disk before any is reused. */
	ret = vdi_image_commit_meta(img);
	if (ret == 0) {
		ret = fill_holes(img, buf, &used, res, NULL, NULL);
		if (ret < 0)
			restore_freed(img, &freed);
	}
	if (ret == 0)
		ret = cut_after(img, used, __func__);
	if (ret == 0)
		res->file_size_after = vdi_slot_offset(img, used);
out_unlock:
	pthread_mutex_unlock(&img->lock);
	free(buf);
	free(freed.v);
	return ret;
}

int vdi_compact(const char *path, struct vdi_compact_result *res,
		vdi_progress_fn progress, void *opaque)
{
	return vdi_compact_chain(path, NULL, 0, res, progress, opaque);
}

int vdi_compact_chain(const char *path, const char *const *parents,
		      size_t nparents, struct vdi_compact_result *res,
		      vdi_progress_fn progress, void *opaque)
{
	struct vdi_image *img;
	struct vdi_check_result cr;
	struct freed freed = { 0 };
	unsigned char *buf = NULL, *pbuf = NULL;
	struct stat st;
	uint32_t used = 0;
	int ret;

	memset(res, 0, sizeof(*res));
	ret = vdi_open_chain(path, 0, parents, nparents, &img);
	if (ret < 0)
		return ret;
	if (img->hdr.type == VDI_TYPE_STATIC) {
		ret = vdi_error(-ENOTSUP, __func__, path,
				"only dynamic and differencing images can be "
				"compacted (this one is static)");
		goto out;
	}
	ret = vdi_check(img, &cr, NULL, NULL);
	if (ret == 0 && cr.corruptions)
		ret = vdi_error(-EUCLEAN, __func__, path,
				"the image has %" PRIu64 " problems; run 'vdi "
				"check -r all' first", cr.corruptions);
	if (ret < 0)
		goto out;
	if (fstat(img->meta_fd, &st) < 0) {
		ret = vdi_error(-errno, __func__, path, "fstat: %s",
				strerror(errno));
		goto out;
	}
	res->file_size_before = (uint64_t)st.st_size;
	buf = malloc(img->slot_size);
	/* A slot of any image of the chain: block extra is at most the
	 * (shared) block size. */
	pbuf = img->parent ? malloc(2 * (size_t)img->hdr.block_size) : NULL;
	if (!buf || (img->parent && !pbuf)) {
		ret = vdi_error(-ENOMEM, __func__, path, "out of memory");
		goto out;
	}
	pthread_mutex_lock(&img->lock);
	ret = find_zero_blocks(img, buf, pbuf, res, &freed, progress, opaque);
	if (ret == 0) {
		ret = fill_holes(img, buf, &used, res, progress, opaque);
		if (ret < 0)
			restore_freed(img, &freed);
	}
	/* Every entry now names a slot below `used`, durably: only now may
	 * the header's count come down to it, and only then the file. */
	if (ret == 0) {
		ret = cut_after(img, used, __func__);
		res->file_size_after = vdi_slot_offset(img, used);
	}
	pthread_mutex_unlock(&img->lock);
	if (progress && ret == 0)
		progress(opaque, (uint64_t)img->hdr.blocks * 2,
			 (uint64_t)img->hdr.blocks * 2);
out:
	free(buf);
	free(pbuf);
	free(freed.v);
	if (ret < 0) {
		vdi_close(img);
		return ret;
	}
	return vdi_close(img);
}
