/* Read-only consistency check of the on-disk block map. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "0-base/error.h"
#include "2-image/image.h"
#include "3-durable/durable.h"

/* Problems of one kind reported one by one before they are summed up. */
#define REPORT_LIMIT 1000

enum { K_RANGE, K_EOF, K_DUP, K_LEAK, K_COUNT, K_SHORT, K_KINDS };

struct reporter {
	vdi_check_report_fn fn;
	void *opaque;
	unsigned count[K_KINDS];
};

static void report(struct reporter *rp, int kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(struct reporter *rp, int kind, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!rp->fn || rp->count[kind]++ >= REPORT_LIMIT)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rp->fn(rp->opaque, msg);
}


int vdi_check(struct vdi_image *img, struct vdi_check_result *res,
	      vdi_check_report_fn fn, void *opaque)
{
	const struct vdi_header *h = &img->hdr;
	struct reporter rp = { fn, opaque, { 0 } };
	uint32_t *owner = NULL; /* physical block -> virtual block + 1 */
	uint64_t slots, used_end = 0, i, bytes;
	uint32_t staged = 0;
	struct stat st;
	int ret = 0;

	memset(res, 0, sizeof(*res));
	vdi_error_clear();
	if (fstat(img->meta_fd, &st) < 0)
		return vdi_error(-errno, __func__, img->path, "fstat: %s",
				 strerror(errno));
	/* One entry per physical block the file holds now (blocks this
	 * handle allocated included): bounded by the file's real size, never
	 * by what the header claims. */
	slots = (uint64_t)st.st_size > h->offset_data
			? ((uint64_t)st.st_size - h->offset_data +
			   img->slot_size - 1) / img->slot_size
			: 0;
	owner = calloc(slots ? slots : 1, sizeof(*owner));
	if (!owner)
		return vdi_error(-ENOMEM, __func__, img->path,
				 "out of memory for %" PRIu64 " blocks", slots);

	pthread_mutex_lock(&img->lock);
	for (i = 0; i < h->blocks; i++) {
		/* Staged allocations count: they are the handle's, and reach
		 * the disk at its next flush. */
		uint32_t e = vdi_is_staged(img, (uint32_t)i) ? vdi_map_get(img, (uint32_t)i)
							     : vdi_disk_get(img, i);

		if (!vdi_entry_is_data(e) || e == VDI_BMAP_MISSING)
			continue;
		res->blocks_mapped++;
		staged += vdi_is_staged(img, (uint32_t)i) &&
			  !vdi_entry_is_data(vdi_disk_get(img, i));
		if (e >= h->blocks) {
			res->out_of_range++;
			report(&rp, K_RANGE,
			       "block %" PRIu64 " maps to physical block %" PRIu32
			       ", not below the block count %" PRIu32,
			       i, e, h->blocks);
		}
		if (!vdi_is_staged(img, (uint32_t)i) &&
		    e >= h->blocks_allocated) {
			res->past_count++;
			report(&rp, K_COUNT,
			       "block %" PRIu64 " maps to physical block %" PRIu32
			       ", not below the header's allocated-block count "
			       "%" PRIu32 " (where QEMU and VirtualBox put the "
			       "next new block)", i, e, h->blocks_allocated);
		}
		/* (Blocks this handle allocated: the file is extended to
		 * them at its next flush.) */
		if (e < slots && e < img->next_free_open &&
		    vdi_slot_offset(img, (uint64_t)e + 1) > (uint64_t)st.st_size) {
			res->short_blocks++;
			report(&rp, K_SHORT,
			       "block %" PRIu64 " (physical block %" PRIu32
			       ") is cut short: the file ends %" PRIu64
			       " bytes before the end of its data",
			       i, e, vdi_slot_offset(img, (uint64_t)e + 1) -
				     (uint64_t)st.st_size);
		}
		if (e >= slots) {
			res->past_eof++;
			report(&rp, K_EOF,
			       "block %" PRIu64 " maps to physical block %" PRIu32
			       ", past the end of the file", i, e);
			continue;
		}
		if (owner[e]) {
			res->duplicates++;
			report(&rp, K_DUP,
			       "physical block %" PRIu32 " is used by blocks %"
			       PRIu32 " and %" PRIu64, e, owner[e] - 1, i);
			continue;
		}
		owner[e] = (uint32_t)i + 1;
		if (vdi_slot_offset(img, (uint64_t)e + 1) > used_end)
			used_end = vdi_slot_offset(img, (uint64_t)e + 1);
	}
	res->map_missing = img->map_missing;
	if (img->map_missing)
		report(&rp, K_EOF,
		       "the block map is cut short by the end of the file: "
		       "the entries of the last %" PRIu32 " blocks (from block "
		       "%" PRIu32 ") are missing", img->map_missing,
		       h->blocks - img->map_missing);
	/* The header counts what the on-disk map has (staged blocks are
	 * not there yet). */
	if (h->blocks_allocated != res->blocks_mapped - staged) {
		res->allocated_mismatch = 1;
		report(&rp, K_RANGE,
		       "header says %" PRIu32 " blocks are allocated, the "
		       "block map has %" PRIu32, h->blocks_allocated,
		       res->blocks_mapped - staged);
	}
	pthread_mutex_unlock(&img->lock);

	for (i = 0; i < slots; i++) {
		if (owner[i])
			continue;
		/* A discarded block's space punched out of the file costs
		 * nothing: a hole, not a leak. */
		if (vdi_range_is_hole(img->meta_fd, vdi_slot_offset(img, i),
				      vdi_slot_offset(img, i + 1))) {
			res->holes++;
			continue;
		}
		/* The bytes the file holds: a last slot may be partial
		 * (junk after the last block). */
		bytes = vdi_slot_offset(img, i + 1) < (uint64_t)st.st_size
				? img->slot_size
				: (uint64_t)st.st_size - vdi_slot_offset(img, i);
		res->leaks++;
		res->leaked_bytes += bytes;
		report(&rp, K_LEAK,
		       "physical block %" PRIu64 " at offset %" PRIu64
		       " is not used by any block (%" PRIu64 " bytes leaked)",
		       i, vdi_slot_offset(img, i), bytes);
	}
	for (i = 0; i < K_KINDS; i++)
		if (rp.fn && rp.count[i] > REPORT_LIMIT) {
			char msg[128];

			snprintf(msg, sizeof(msg),
				 "... and %u more problems of the same kind",
				 rp.count[i] - REPORT_LIMIT);
			rp.fn(rp.opaque, msg);
		}
	res->corruptions = (uint64_t)res->out_of_range + res->past_eof +
			   res->duplicates + res->allocated_mismatch +
			   res->past_count + res->short_blocks +
			   (res->map_missing ? 1 : 0);
	res->image_end_offset = used_end > h->offset_data ? used_end
							  : h->offset_data;
	free(owner);
	return ret;
}
