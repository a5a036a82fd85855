/* Offline repair of the block map, header count and file length.  The
 * image is opened here with the writer's lock and worked on with plain
 * pread/pwrite/fdatasync: no ring, no cache of the map, one change at a
 * time in an order that a crash at any point leaves no worse than it was
 * (data is copied and made durable before an entry points at it; an
 * entry is freed and made durable before the space it used is cut off).
 * Reachable data is never lost: only entries that cannot be read (past
 * the end of the file) or that read another block's data (the later
 * users of a shared physical block) are freed. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "0-base/error.h"
#include "0-base/fileio.h"
#include "1-format/format.h"
#include "2-image/image.h"
#include "6-ops/steps.h"

#define COPY_CHUNK (1u << 20)

struct repair {
	const char *path;
	int fd;
	struct vdi_header h;
	unsigned char preamble[VDI_PREAMBLE_SIZE];
	uint64_t file_size;
	uint64_t slot_size;
	uint64_t slots;      /* physical blocks the file holds (a partial one too) */
	uint32_t *map;       /* the block map as on disk, kept in step */
	uint32_t *owner;     /* physical block (< slots) -> virtual block + 1 */
	uint32_t count_read; /* the header's count as found */
	bool fix_errors;     /* VDI_REPAIR_ERRORS */
	uint32_t missing;    /* map entries past the end of the file */
	vdi_check_report_fn fn;
	void *opaque;
	struct vdi_repair_result *res;
	/* Progress in steps: the check, each block copied, the rest. */
	struct vdi_steps steps;
};

static void say(struct repair *rp, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(struct repair *rp, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!rp->fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rp->fn(rp->opaque, msg);
}

static int sync_file(struct repair *rp)
{
	if (fdatasync(rp->fd) < 0)
		return vdi_error(-errno, "vdi_repair", rp->path,
				 "fdatasync: %s", strerror(errno));
	return 0;
}

static uint64_t slot_off(const struct repair *rp, uint64_t index)
{
	return rp->h.offset_data + index * rp->slot_size;
}

/* Write one block-map entry and make it durable. */
static int set_entry(struct repair *rp, uint32_t vb, uint32_t value)
{
	unsigned char b[4] = { (unsigned char)value, (unsigned char)(value >> 8),
			       (unsigned char)(value >> 16),
			       (unsigned char)(value >> 24) };
	int ret = vdi_file_write(rp->fd, b, 4, rp->h.offset_bmap + 4ull * vb,
				 0);

	if (ret < 0)
		return vdi_error(ret, "vdi_repair", rp->path,
				 "cannot write the entry of block %" PRIu32
				 ": %s", vb, strerror(-ret));
	rp->map[vb] = value;
	return sync_file(rp);
}

/* Copy physical block `from` (its extra bytes too) to `to`, durably. */
static int copy_slot(struct repair *rp, uint64_t from, uint64_t to)
{
	unsigned char *buf = malloc(COPY_CHUNK);
	uint64_t done = 0;
	int ret = 0;

	if (!buf)
		return vdi_error(-ENOMEM, "vdi_repair", rp->path,
				 "out of memory");
	while (done < rp->slot_size && ret == 0) {
		size_t n = rp->slot_size - done < COPY_CHUNK
				   ? (size_t)(rp->slot_size - done)
				   : COPY_CHUNK;

		ret = vdi_file_read(rp->fd, buf, n, slot_off(rp, from) + done,
				    VDI_FILE_ZEROS_AT_EOF);
		if (ret == 0)
			ret = vdi_file_write(rp->fd, buf, n,
					     slot_off(rp, to) + done, 0);
		done += n;
	}
	free(buf);
	if (ret < 0)
		return vdi_error(ret, "vdi_repair", rp->path,
				 "cannot copy physical block %" PRIu64
				 " to %" PRIu64 ": %s", from, to,
				 strerror(-ret));
	ret = sync_file(rp);
	if (ret == 0)
		vdi_step(&rp->steps);
	return ret;
}

static int load(struct repair *rp)
{
	char why[256];
	struct stat st;
	ssize_t n;
	int ret;
	uint32_t i;

	if (fstat(rp->fd, &st) < 0)
		return vdi_error(-errno, "vdi_repair", rp->path, "fstat: %s",
				 strerror(errno));
	if (!S_ISREG(st.st_mode))
		return vdi_error(-EINVAL, "vdi_repair", rp->path,
				 "not a regular file");
	rp->file_size = (uint64_t)st.st_size;
	n = pread(rp->fd, rp->preamble, sizeof(rp->preamble), 0);
	if (n < 0)
		return vdi_error(-errno, "vdi_repair", rp->path,
				 "cannot read the header: %s", strerror(errno));
	ret = vdi_header_decode(rp->preamble, (size_t)n, &rp->h, why,
				sizeof(why));
	if (ret == 0)
		ret = vdi_header_validate(&rp->h, rp->file_size, why,
					  sizeof(why));
	/* A file cut inside its block map or before its data area: mended
	 * by mend_cut_map() when errors are repaired. */
	if (ret < 0 && rp->fix_errors &&
	    vdi_header_validate(&rp->h, UINT64_MAX, NULL, 0) == 0)
		ret = 0;
	if (ret < 0)
		return vdi_error(ret, "vdi_repair", rp->path, "%s", why);
	if (vdi_header_is_legacy(&rp->h))
		return vdi_error(-EROFS, "vdi_repair", rp->path,
				 "legacy VDI 0.x header: not repaired in "
				 "place; 'vdi convert' makes a VDI 1.1 copy");
	rp->slot_size = vdi_slot_size(&rp->h);
	rp->count_read = rp->h.blocks_allocated;
	if (rp->file_size > rp->h.offset_data)
		rp->slots = (rp->file_size - rp->h.offset_data +
			     rp->slot_size - 1) / rp->slot_size;
	rp->map = calloc(rp->h.blocks ? rp->h.blocks : 1, sizeof(uint32_t));
	rp->owner = calloc(rp->slots ? rp->slots : 1, sizeof(uint32_t));
	if (!rp->map || !rp->owner)
		return vdi_error(-ENOMEM, "vdi_repair", rp->path,
				 "out of memory for %" PRIu32 " blocks",
				 rp->h.blocks);
	if (rp->h.blocks) {
		unsigned char *raw = malloc(vdi_bmap_bytes(&rp->h));

		if (!raw)
			return vdi_error(-ENOMEM, "vdi_repair", rp->path,
					 "out of memory");
		ret = vdi_file_read(rp->fd, raw, vdi_bmap_bytes(&rp->h),
				    rp->h.offset_bmap, VDI_FILE_ZEROS_AT_EOF);
		for (i = 0; ret == 0 && i < rp->h.blocks; i++) {
			rp->map[i] = (uint32_t)raw[4 * i] |
				     (uint32_t)raw[4 * i + 1] << 8 |
				     (uint32_t)raw[4 * i + 2] << 16 |
				     (uint32_t)raw[4 * i + 3] << 24;
			if (rp->h.offset_bmap + 4ull * i + 4 > rp->file_size) {
				rp->map[i] = VDI_BMAP_MISSING;
				rp->missing++;
			}
		}
		free(raw);
		if (ret < 0)
			return vdi_error(ret, "vdi_repair", rp->path,
					 "cannot read the block map: %s",
					 strerror(-ret));
	}
	return 0;
}

/* The file ends inside its block map or before its data area: the file
 * is extended to the data area and the missing entries are written free
 * (the blocks they named are gone with the file's end; entries that
 * remain and point past it are freed next, by free_bad_entries). */
static int mend_cut_map(struct repair *rp)
{
	uint32_t vb, first = rp->h.blocks;
	int ret;

	if (rp->file_size >= rp->h.offset_data)
		return 0;
	if (ftruncate(rp->fd, (off_t)rp->h.offset_data) < 0)
		return vdi_error(-errno, "vdi_repair", rp->path,
				 "cannot extend to %" PRIu32 " bytes: %s",
				 rp->h.offset_data, strerror(errno));
	for (vb = 0; vb < rp->h.blocks; vb++) {
		if (rp->map[vb] != VDI_BMAP_MISSING)
			continue;
		if (first == rp->h.blocks)
			first = vb;
		ret = set_entry(rp, vb, VDI_BMAP_FREE);
		if (ret < 0)
			return ret;
	}
	rp->res->corruptions_fixed++;
	if (rp->missing)
		say(rp, "repaired: the block map was cut short by the end of "
		    "the file; the entries of the last %" PRIu32 " blocks "
		    "(from block %" PRIu32 ") are now free, and the file "
		    "extended to %" PRIu32 " bytes", rp->missing, first,
		    rp->h.offset_data);
	else
		say(rp, "repaired: the file ended before its data area; "
		    "extended to %" PRIu32 " bytes", rp->h.offset_data);
	rp->file_size = rp->h.offset_data;
	rp->missing = 0;
	return sync_file(rp);
}

/* Free entries past the end of the file, and every user of a shared
 * physical block but the first; fill `owner`. */
static int free_bad_entries(struct repair *rp, bool fix)
{
	uint32_t vb;
	int ret;

	for (vb = 0; vb < rp->h.blocks; vb++) {
		uint32_t e = rp->map[vb];

		if (!vdi_entry_is_data(e))
			continue;
		if (e >= rp->slots) {
			if (!fix)
				continue;
			ret = set_entry(rp, vb, VDI_BMAP_FREE);
			if (ret < 0)
				return ret;
			rp->res->corruptions_fixed++;
			say(rp, "repaired: block %" PRIu32 " mapped to physical "
			    "block %" PRIu32 ", past the end of the file; its "
			    "entry is now free (reads as zeros)", vb, e);
			continue;
		}
		if (rp->owner[e]) {
			if (!fix)
				continue;
			ret = set_entry(rp, vb, VDI_BMAP_FREE);
			if (ret < 0)
				return ret;
			rp->res->corruptions_fixed++;
			say(rp, "repaired: block %" PRIu32 " shared physical "
			    "block %" PRIu32 " with block %" PRIu32 "; its "
			    "entry is now free (block %" PRIu32 " keeps the "
			    "data)", vb, e, rp->owner[e] - 1, rp->owner[e] - 1);
			continue;
		}
		rp->owner[e] = vb + 1;
	}
	return 0;
}

/* Entries whose index is not below the block count (but inside the
 * file): copy the data to a free index below it, then repoint. */
static int move_into_range(struct repair *rp)
{
	uint64_t next = 0;
	uint32_t vb;
	int ret;

	for (vb = 0; vb < rp->h.blocks; vb++) {
		uint32_t e = rp->map[vb];

		if (!vdi_entry_is_data(e) || e < rp->h.blocks)
			continue;
		/* At most `blocks` entries use data and this one is not
		 * below the count, so some index below it is free; it lies
		 * inside the file, since the file reaches past index e. */
		while (next < rp->h.blocks && next < rp->slots &&
		       rp->owner[next])
			next++;
		if (next >= rp->h.blocks || next >= rp->slots)
			return vdi_error(-ENOSPC, "vdi_repair", rp->path,
					 "no free physical block below %" PRIu32
					 " for block %" PRIu32, rp->h.blocks,
					 vb);
		ret = copy_slot(rp, e, next);
		if (ret == 0)
			ret = set_entry(rp, vb, (uint32_t)next);
		if (ret < 0)
			return ret;
		rp->owner[next] = vb + 1;
		rp->owner[e] = 0;
		rp->res->corruptions_fixed++;
		say(rp, "repaired: block %" PRIu32 " mapped to physical block %"
		    PRIu32 ", not below the block count %" PRIu32 "; its data "
		    "moved to physical block %" PRIu64, vb, e, rp->h.blocks,
		    next);
	}
	return 0;
}

/* The count QEMU and VirtualBox would allocate at must lie past every
 * slot an entry names: the number of data entries, or one past the
 * highest slot named if that is more (slots below it are then unused). */
static uint32_t safe_count(const struct repair *rp, uint32_t *mapped_out)
{
	uint32_t vb, mapped = 0, end = 0;

	for (vb = 0; vb < rp->h.blocks; vb++) {
		uint32_t e = rp->map[vb];

		if (!vdi_entry_is_data(e))
			continue;
		mapped++;
		if (e + 1 > end)
			end = e + 1;
	}
	if (mapped_out)
		*mapped_out = mapped;
	return end > mapped ? end : mapped;
}

static int write_count(struct repair *rp, uint32_t count)
{
	int ret;

	rp->h.blocks_allocated = count;
	vdi_header_encode(&rp->h, rp->preamble);
	ret = vdi_file_write(rp->fd, rp->preamble, VDI_PREAMBLE_SIZE, 0, 0);
	if (ret < 0)
		return vdi_error(ret, "vdi_repair", rp->path,
				 "cannot write the header: %s", strerror(-ret));
	return sync_file(rp);
}

/* First of all: a count that does not lie past every slot in use lets
 * the next QEMU or VirtualBox write overwrite a block.  Raise it (the
 * count is set to its exact value once blocks are moved). */
static int raise_count(struct repair *rp)
{
	uint32_t count = safe_count(rp, NULL);

	if (count <= rp->h.blocks_allocated)
		return 0;
	return write_count(rp, count);
}

/* Slots below the last one in use that no entry uses (leaked, or a
 * discarded block's punched slot): move the blocks of the highest slots
 * into them, lowest first, as vdi_compact does.  Each copy is durable
 * before its entry moves, and each entry durable before the next copy
 * overwrites anything; the count stays past every slot in use
 * throughout. */
static int fill_holes(struct repair *rp)
{
	uint64_t hole = 0, p;
	int ret;

	for (p = rp->slots; p-- > 0;) {
		uint32_t vb;

		if (!rp->owner[p])
			continue;
		while (hole < p && rp->owner[hole])
			hole++;
		if (hole >= p)
			break;
		vb = rp->owner[p] - 1;
		if (rp->map[vb] != p)
			continue; /* a shared slot's later user: left as is */
		ret = copy_slot(rp, p, hole);
		if (ret == 0)
			ret = set_entry(rp, vb, (uint32_t)hole);
		if (ret < 0)
			return ret;
		rp->owner[hole] = vb + 1;
		rp->owner[p] = 0;
		rp->res->leaks_fixed++;
		say(rp, "repaired: block %" PRIu32 " moved from physical block %"
		    PRIu64 " into unused physical block %" PRIu64, vb, p, hole);
	}
	return 0;
}

/* The blocks move_into_range() and fill_holes() will copy, found by
 * running both over a copy of `owner` without copying anything: the
 * progress total, known before the first copy. */
static int plan_copies(struct repair *rp, bool into_range, bool holes,
		       uint64_t *copies)
{
	uint32_t *own = malloc((rp->slots ? rp->slots : 1) * sizeof(*own));
	uint64_t next = 0, hole = 0, p, n = 0;
	uint32_t vb;

	if (!own)
		return vdi_error(-ENOMEM, "vdi_repair", rp->path,
				 "out of memory");
	memcpy(own, rp->owner, rp->slots * sizeof(*own));
	for (vb = 0; into_range && vb < rp->h.blocks; vb++) {
		uint32_t e = rp->map[vb];

		if (!vdi_entry_is_data(e) || e < rp->h.blocks)
			continue;
		while (next < rp->h.blocks && next < rp->slots && own[next])
			next++;
		if (next >= rp->h.blocks || next >= rp->slots)
			break; /* move_into_range() fails here */
		own[next] = vb + 1;
		own[e] = 0;
		n++;
	}
	for (p = rp->slots; holes && p-- > 0;) {
		if (!own[p])
			continue;
		while (hole < p && own[hole])
			hole++;
		if (hole >= p)
			break;
		own[hole] = own[p];
		own[p] = 0;
		n++;
	}
	free(own);
	*copies = n;
	return 0;
}

static int fix_count(struct repair *rp)
{
	uint32_t mapped, count = safe_count(rp, &mapped);
	int ret;

	if (count == rp->h.blocks_allocated)
		return 0;
	if (count == rp->count_read) /* raised for the moves, back again */
		return write_count(rp, count);
	say(rp, "repaired: the header's allocated-block count was %" PRIu32
	    ", the block map has %" PRIu32, rp->count_read, mapped);
	rp->h.blocks_allocated = count;
	vdi_header_encode(&rp->h, rp->preamble);
	ret = vdi_file_write(rp->fd, rp->preamble, VDI_PREAMBLE_SIZE, 0, 0);
	if (ret < 0)
		return vdi_error(ret, "vdi_repair", rp->path,
				 "cannot write the header: %s", strerror(-ret));
	rp->res->corruptions_fixed++;
	return sync_file(rp);
}

/* Cut leaked blocks off the end of the file; report those in the middle. */
static int trim_leaks(struct repair *rp, bool fix_short)
{
	uint64_t used_end = rp->h.offset_data, i, leaked_mid = 0;
	uint32_t vb;

	for (vb = 0; vb < rp->h.blocks; vb++) {
		uint32_t e = rp->map[vb];

		if (vdi_entry_is_data(e) && slot_off(rp, (uint64_t)e + 1) > used_end)
			used_end = slot_off(rp, (uint64_t)e + 1);
	}
	for (i = 0; i < rp->slots && slot_off(rp, i + 1) <= used_end; i++) {
		if (rp->owner[i])
			continue;
		/* A hole (never written, or punched) costs nothing. */
		if (vdi_range_is_hole(rp->fd, slot_off(rp, i), slot_off(rp, i + 1)))
			continue;
		{
			leaked_mid++;
			say(rp, "not repaired: physical block %" PRIu64
			    " at offset %" PRIu64 " is leaked in the middle "
			    "of the file (compacting the image reclaims it)",
			    i, slot_off(rp, i));
		}
	}
	rp->res->leaks_left = leaked_mid;
	if (rp->file_size < used_end && fix_short) {
		/* The last block is cut short: what is missing reads as
		 * zeros, and the file holds all of it again. */
		if (ftruncate(rp->fd, (off_t)used_end) < 0)
			return vdi_error(-errno, "vdi_repair", rp->path,
					 "cannot extend to %" PRIu64 " bytes: %s",
					 used_end, strerror(errno));
		rp->res->corruptions_fixed++;
		say(rp, "repaired: the file ended %" PRIu64 " bytes short of "
		    "its last data block; extended to %" PRIu64 " bytes (the "
		    "missing part reads as zeros)", used_end - rp->file_size,
		    used_end);
		rp->file_size = used_end;
		return sync_file(rp);
	}
	if (rp->file_size <= used_end)
		return 0;
	/* Every entry is durable already: nothing points past used_end. */
	if (ftruncate(rp->fd, (off_t)used_end) < 0)
		return vdi_error(-errno, "vdi_repair", rp->path,
				 "cannot truncate to %" PRIu64 " bytes: %s",
				 used_end, strerror(errno));
	rp->res->leaks_fixed += (rp->file_size - used_end + rp->slot_size - 1) /
				rp->slot_size;
	rp->res->bytes_trimmed = rp->file_size - used_end;
	say(rp, "repaired: %" PRIu64 " leaked bytes cut off the end of the "
	    "file (it now ends at %" PRIu64 ")", rp->file_size - used_end,
	    used_end);
	rp->file_size = used_end;
	return sync_file(rp);
}

int vdi_repair(const char *path, unsigned what,
	       struct vdi_repair_result *res, vdi_check_report_fn report,
	       void *opaque)
{
	return vdi_repair_with_progress(path, what, res, report, opaque, NULL,
					NULL);
}

int vdi_repair_with_progress(const char *path, unsigned what,
			     struct vdi_repair_result *res,
			     vdi_check_report_fn report, void *opaque,
			     vdi_progress_fn progress, void *progress_opaque)
{
	struct repair rp = { .path = path, .fd = -1, .fn = report,
			     .opaque = opaque, .res = res,
			     .steps = { .fn = progress,
					.opaque = progress_opaque } };
	struct vdi_image *lock = NULL, *ro = NULL;
	uint64_t copies = 0;
	bool holes;
	int ret;

	memset(res, 0, sizeof(*res));
	vdi_error_clear();
	if (!what || (what & ~VDI_REPAIR_ALL))
		return vdi_error(-EINVAL, "vdi_repair", path,
				 "what 0x%x is not a set of VDI_REPAIR_* flags",
				 what);
	/* The writer's lock, on a descriptor of its own, as vdi_open does. */
	lock = calloc(1, sizeof(*lock));
	if (!lock || !(lock->path = strdup(path))) {
		free(lock);
		return vdi_error(-ENOMEM, "vdi_repair", path, "out of memory");
	}
	lock->lock_fd = -1;
	ret = vdi_image_lock(lock);
	if (ret < 0)
		goto out;
	/* What is wrong, in the words of vdi_check. */
	ret = vdi_open(path, VDI_OPEN_RDONLY | VDI_OPEN_NOLOCK | VDI_OPEN_NO_PARENT,
		       &ro);
	if (ret == 0)
		ret = vdi_check(ro, &res->before, report, opaque);
	vdi_close(ro);
	if (ret < 0)
		goto out;

	rp.fd = open(path, O_RDWR | O_CLOEXEC);
	if (rp.fd < 0) {
		ret = vdi_error(-errno, "vdi_repair", path, "%s",
				strerror(errno));
		goto out;
	}
	rp.fix_errors = what & VDI_REPAIR_ERRORS;
	ret = load(&rp);
	if (ret == 0)
		ret = mend_cut_map(&rp);
	if (ret == 0)
		ret = raise_count(&rp);
	if (ret == 0)
		ret = free_bad_entries(&rp, what & VDI_REPAIR_ERRORS);
	/* Moving blocks while entries still share slots or point past the
	 * end of the file (-r leaks alone) could cut a sharer's data off. */
	holes = (what & VDI_REPAIR_ERRORS) ||
		!(res->before.duplicates || res->before.past_eof);
	if (ret == 0)
		ret = plan_copies(&rp, what & VDI_REPAIR_ERRORS, holes,
				  &copies);
	if (ret == 0) {
		rp.steps.total = copies + 2;
		vdi_step(&rp.steps); /* the check and the map read */
	}
	if (ret == 0 && (what & VDI_REPAIR_ERRORS))
		ret = move_into_range(&rp);
	if (ret == 0 && holes)
		ret = fill_holes(&rp);
	/* The header count lags the map after a crash: a leak's companion,
	 * fixed with either flag. */
	if (ret == 0)
		ret = fix_count(&rp);
	if (ret == 0)
		ret = trim_leaks(&rp, what & VDI_REPAIR_ERRORS);
	if (ret == 0)
		vdi_steps_finish(&rp.steps);
	if (ret == 0)
		ret = (int)(res->leaks_fixed + res->corruptions_fixed > INT32_MAX
				    ? INT32_MAX
				    : res->leaks_fixed + res->corruptions_fixed);
out:
	if (rp.fd >= 0)
		close(rp.fd);
	if (lock->lock_fd >= 0)
		close(lock->lock_fd);
	free(lock->path);
	free(lock);
	free(rp.map);
	free(rp.owner);
	return ret;
}
