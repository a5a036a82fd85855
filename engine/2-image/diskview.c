/* The block map as it is, or is about to be, on disk.
 *
 * An open image holds one full copy of the block map, `map`, which the
 * I/O follows.  The disk view differs from it only where an allocation has
 * not yet reached the disk: its data write is in flight, or completed but
 * not yet known durable (staged, 3-durable).  Only the block-map sectors
 * holding such entries are kept twice, as copies in a small hash keyed by
 * sector, so that the memory an image needs beyond `map` follows what is
 * in flight or staged, not the size of the disk.  A copy is made before
 * `map` moves ahead (vdi_disk_keep, from the allocator) and dropped once
 * `map` matches it again and none of its entries is staged
 * (vdi_disk_prune, after a flush moved the staged entries in). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "0-base/error.h"
#include "2-image/image.h"

/* Buckets of a new hash; it doubles when the copies outnumber them. */
#define DISK_HASH_MIN 64

static uint32_t bucket(const struct vdi_image *img, uint32_t s)
{
	/* Sectors near each other go to different buckets. */
	return (uint32_t)((s * 0x9E3779B1u) >> 7) & img->disk_hash_mask;
}

struct vdi_disk_sector *vdi_disk_sector(const struct vdi_image *img,
					uint32_t s)
{
	struct vdi_disk_sector *ds;

	if (!img->disk_count)
		return NULL;
	for (ds = img->disk_hash[bucket(img, s)]; ds; ds = ds->hnext)
		if (ds->sector == s)
			return ds;
	return NULL;
}

/* Make the hash twice as large (or make the first one).  Under the
 * lock. */
static int grow(struct vdi_image *img)
{
	uint32_t n = img->disk_hash ? (img->disk_hash_mask + 1) * 2
				    : DISK_HASH_MIN;
	struct vdi_disk_sector **old = img->disk_hash, *ds;

	img->disk_hash = calloc(n, sizeof(*img->disk_hash));
	if (!img->disk_hash) {
		img->disk_hash = old;
		return -ENOMEM;
	}
	img->disk_hash_mask = n - 1;
	for (ds = img->disk_list; ds; ds = ds->lnext) {
		uint32_t b = bucket(img, ds->sector);

		ds->hnext = img->disk_hash[b];
		img->disk_hash[b] = ds;
	}
	free(old);
	return 0;
}

int vdi_disk_keep(struct vdi_image *img, uint32_t vb)
{
	uint32_t s = vb / VDI_SECTOR_ENTRIES, i, b;
	struct vdi_disk_sector *ds;

	if (vdi_disk_sector(img, s))
		return 0;
	/* (A hash that cannot grow still works, with longer chains.) */
	if ((!img->disk_hash || img->disk_count > img->disk_hash_mask) &&
	    grow(img) < 0 && !img->disk_hash)
		goto out_nomem;
	ds = calloc(1, sizeof(*ds));
	if (!ds)
		goto out_nomem;
	ds->sector = s;
	/* No copy yet: the disk view of the sector is what `map` holds,
	 * padding included. */
	for (i = 0; i < VDI_SECTOR_ENTRIES; i++)
		ds->e[i] = vdi_map_peek(img, s * VDI_SECTOR_ENTRIES + i);
	b = bucket(img, s);
	ds->hnext = img->disk_hash[b];
	img->disk_hash[b] = ds;
	ds->lnext = img->disk_list;
	img->disk_list = ds;
	img->disk_count++;
	return 0;

out_nomem:
	return vdi_error(-ENOMEM, "vdi_queue_submit", img->path,
			 "out of memory for block %" PRIu32 "'s map sector",
			 vb);
}

/* Does the copy still differ from `map`, or hold a staged entry? */
static bool still_needed(const struct vdi_image *img,
			 const struct vdi_disk_sector *ds)
{
	uint32_t i, base = ds->sector * VDI_SECTOR_ENTRIES;

	for (i = 0; i < VDI_SECTOR_ENTRIES / 64; i++)
		if (ds->staged[i])
			return true;
	for (i = 0; i < VDI_SECTOR_ENTRIES; i++)
		if (ds->e[i] != vdi_map_peek(img, base + i))
			return true;
	return false;
}

static void unhash(struct vdi_image *img, const struct vdi_disk_sector *ds)
{
	struct vdi_disk_sector **p = &img->disk_hash[bucket(img, ds->sector)];

	while (*p != ds)
		p = &(*p)->hnext;
	*p = ds->hnext;
}

void vdi_disk_prune(struct vdi_image *img)
{
	struct vdi_disk_sector **p = &img->disk_list, *ds;

	while ((ds = *p)) {
		if (still_needed(img, ds)) {
			p = &ds->lnext;
			continue;
		}
		*p = ds->lnext;
		unhash(img, ds);
		img->disk_count--;
		free(ds);
	}
}

void vdi_disk_free(struct vdi_image *img)
{
	struct vdi_disk_sector *ds;

	while ((ds = img->disk_list)) {
		img->disk_list = ds->lnext;
		free(ds);
	}
	free(img->disk_hash);
	img->disk_hash = NULL;
	img->disk_hash_mask = 0;
	img->disk_count = 0;
}
