/* VDI header codec and validation.  Field offsets are absolute file
 * offsets; the header proper (whose size the header states) starts at
 * 0x48, after the 64-byte banner, the signature and the version. */
#include "1-format/format.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vdi.h"

enum {
	OFF_SIGNATURE = 0x040,
	OFF_VERSION = 0x044,
	OFF_HEADER_SIZE = 0x048,
	OFF_TYPE = 0x04C,
	OFF_FLAGS = 0x050,
	OFF_DESCRIPTION = 0x054,
	OFF_BMAP = 0x154,
	OFF_DATA = 0x158,
	OFF_CYLINDERS = 0x15C,
	OFF_HEADS = 0x160,
	OFF_SECTORS = 0x164,
	OFF_SECTOR_SIZE = 0x168,
	OFF_DISK_SIZE = 0x170,
	OFF_BLOCK_SIZE = 0x178,
	OFF_BLOCK_EXTRA = 0x17C,
	OFF_BLOCKS = 0x180,
	OFF_BLOCKS_ALLOCATED = 0x184,
	OFF_UUID_CREATE = 0x188,
	OFF_UUID_MODIFY = 0x198,
	OFF_UUID_LINK = 0x1A8,
	OFF_UUID_PARENT_MODIFY = 0x1B8,
	OFF_LCHS = 0x1C8,
	/* The header size counts from OFF_HEADER_SIZE; it must end inside
	 * the first sector. */
	HEADER_SIZE_MAX = VDI_PREAMBLE_SIZE - OFF_HEADER_SIZE,

	/* The legacy 0.x header: no size, offsets or block extra fields;
	 * the block map follows it directly and the data follows the map,
	 * neither of them aligned. */
	OFF0_TYPE = 0x048,
	OFF0_FLAGS = 0x04C,
	OFF0_DESCRIPTION = 0x050,
	OFF0_CYLINDERS = 0x150,
	OFF0_DISK_SIZE = 0x160,
	OFF0_BLOCK_SIZE = 0x168,
	OFF0_BLOCKS = 0x16C,
	OFF0_BLOCKS_ALLOCATED = 0x170,
	OFF0_UUID_CREATE = 0x174,
	OFF0_UUID_MODIFY = 0x184,
	OFF0_UUID_LINK = 0x194,
	OFF0_END = 0x1A4,
};

static const char banner_text[] = "<<< libvdi VirtualBox Disk Image >>>\n";

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static int fail(int err, char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (why && why_len) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* A 0.x header, into the same struct: the offsets it implies are filled
 * in, so that everything after decoding sees one layout. */
static int decode_legacy(const unsigned char *buf, struct vdi_header *h,
			 char *why, size_t why_len)
{
	memcpy(h->banner, buf, VDI_BANNER_SIZE);
	h->header_size = OFF0_END - OFF0_TYPE;
	h->type = get32(buf + OFF0_TYPE);
	h->flags = get32(buf + OFF0_FLAGS);
	memcpy(h->description, buf + OFF0_DESCRIPTION, VDI_DESC_SIZE);
	h->cylinders = get32(buf + OFF0_CYLINDERS);
	h->heads = get32(buf + OFF0_CYLINDERS + 4);
	h->sectors = get32(buf + OFF0_CYLINDERS + 8);
	h->sector_size = get32(buf + OFF0_CYLINDERS + 12);
	h->disk_size = get64(buf + OFF0_DISK_SIZE);
	h->block_size = get32(buf + OFF0_BLOCK_SIZE);
	h->blocks = get32(buf + OFF0_BLOCKS);
	h->blocks_allocated = get32(buf + OFF0_BLOCKS_ALLOCATED);
	memcpy(h->uuid_create, buf + OFF0_UUID_CREATE, 16);
	memcpy(h->uuid_modify, buf + OFF0_UUID_MODIFY, 16);
	memcpy(h->uuid_link, buf + OFF0_UUID_LINK, 16);
	if (h->blocks > VDI_MAX_BLOCKS)
		return fail(-EINVAL, why, why_len,
			    "block count %" PRIu32 " is larger than %u",
			    h->blocks, VDI_MAX_BLOCKS);
	h->offset_bmap = OFF0_END;
	h->offset_data = OFF0_END + h->blocks * 4;
	return 0;
}

int vdi_header_decode(const unsigned char *buf, size_t len,
		      struct vdi_header *h, char *why, size_t why_len)
{
	memset(h, 0, sizeof(*h));
	if (len < VDI_PREAMBLE_SIZE)
		return fail(-EINVAL, why, why_len,
			    "file is too small for a VDI header (%zu bytes, "
			    "need %d)", len, VDI_PREAMBLE_SIZE);

	h->signature = get32(buf + OFF_SIGNATURE);
	if (h->signature != VDI_SIGNATURE)
		return fail(-EINVAL, why, why_len,
			    "not a VDI image (signature 0x%08" PRIx32
			    " is not 0x%08x)", h->signature, VDI_SIGNATURE);
	h->version = get32(buf + OFF_VERSION);
	if (vdi_header_is_legacy(h))
		return decode_legacy(buf, h, why, why_len);
	if (h->version >> 16 != 1)
		return fail(-ENOTSUP, why, why_len,
			    "VDI version %" PRIu32 ".%" PRIu32
			    " is not supported (only 1.x)",
			    h->version >> 16, h->version & 0xffff);
	h->header_size = get32(buf + OFF_HEADER_SIZE);
	if (h->header_size < VDI_HEADER_SIZE_384 ||
	    h->header_size > HEADER_SIZE_MAX)
		return fail(-EINVAL, why, why_len,
			    "header size %" PRIu32 " is outside %d..%d",
			    h->header_size, VDI_HEADER_SIZE_384,
			    HEADER_SIZE_MAX);

	memcpy(h->banner, buf, VDI_BANNER_SIZE);
	h->type = get32(buf + OFF_TYPE);
	h->flags = get32(buf + OFF_FLAGS);
	memcpy(h->description, buf + OFF_DESCRIPTION, VDI_DESC_SIZE);
	h->offset_bmap = get32(buf + OFF_BMAP);
	h->offset_data = get32(buf + OFF_DATA);
	h->cylinders = get32(buf + OFF_CYLINDERS);
	h->heads = get32(buf + OFF_HEADS);
	h->sectors = get32(buf + OFF_SECTORS);
	h->sector_size = get32(buf + OFF_SECTOR_SIZE);
	h->disk_size = get64(buf + OFF_DISK_SIZE);
	h->block_size = get32(buf + OFF_BLOCK_SIZE);
	h->block_extra = get32(buf + OFF_BLOCK_EXTRA);
	h->blocks = get32(buf + OFF_BLOCKS);
	h->blocks_allocated = get32(buf + OFF_BLOCKS_ALLOCATED);
	memcpy(h->uuid_create, buf + OFF_UUID_CREATE, 16);
	memcpy(h->uuid_modify, buf + OFF_UUID_MODIFY, 16);
	memcpy(h->uuid_link, buf + OFF_UUID_LINK, 16);
	memcpy(h->uuid_parent_modify, buf + OFF_UUID_PARENT_MODIFY, 16);
	if (h->header_size >= VDI_HEADER_SIZE_400) {
		h->lchs_cylinders = get32(buf + OFF_LCHS);
		h->lchs_heads = get32(buf + OFF_LCHS + 4);
		h->lchs_sectors = get32(buf + OFF_LCHS + 8);
		h->lchs_sector_size = get32(buf + OFF_LCHS + 12);
	}
	return 0;
}

void vdi_header_encode(const struct vdi_header *h, unsigned char *buf)
{
	if (vdi_header_is_legacy(h))
		return; /* never written: legacy images open read-only */
	memcpy(buf, h->banner, VDI_BANNER_SIZE);
	put32(buf + OFF_SIGNATURE, h->signature);
	put32(buf + OFF_VERSION, h->version);
	put32(buf + OFF_HEADER_SIZE, h->header_size);
	put32(buf + OFF_TYPE, h->type);
	put32(buf + OFF_FLAGS, h->flags);
	memcpy(buf + OFF_DESCRIPTION, h->description, VDI_DESC_SIZE);
	put32(buf + OFF_BMAP, h->offset_bmap);
	put32(buf + OFF_DATA, h->offset_data);
	put32(buf + OFF_CYLINDERS, h->cylinders);
	put32(buf + OFF_HEADS, h->heads);
	put32(buf + OFF_SECTORS, h->sectors);
	put32(buf + OFF_SECTOR_SIZE, h->sector_size);
	put64(buf + OFF_DISK_SIZE, h->disk_size);
	put32(buf + OFF_BLOCK_SIZE, h->block_size);
	put32(buf + OFF_BLOCK_EXTRA, h->block_extra);
	put32(buf + OFF_BLOCKS, h->blocks);
	put32(buf + OFF_BLOCKS_ALLOCATED, h->blocks_allocated);
	memcpy(buf + OFF_UUID_CREATE, h->uuid_create, 16);
	memcpy(buf + OFF_UUID_MODIFY, h->uuid_modify, 16);
	memcpy(buf + OFF_UUID_LINK, h->uuid_link, 16);
	memcpy(buf + OFF_UUID_PARENT_MODIFY, h->uuid_parent_modify, 16);
	if (h->header_size >= VDI_HEADER_SIZE_400) {
		put32(buf + OFF_LCHS, h->lchs_cylinders);
		put32(buf + OFF_LCHS + 4, h->lchs_heads);
		put32(buf + OFF_LCHS + 8, h->lchs_sectors);
		put32(buf + OFF_LCHS + 12, h->lchs_sector_size);
	}
}

uint64_t vdi_header_disk_size(const struct vdi_header *h)
{
	/* VBoxManage convertfromraw can store sizes that are not a multiple
	 * of 512; like QEMU we round up, so no byte of the source is lost. */
	if (h->disk_size > UINT64_MAX - (VDI_SECTOR - 1))
		return UINT64_MAX & ~(uint64_t)(VDI_SECTOR - 1);
	return (h->disk_size + VDI_SECTOR - 1) & ~(uint64_t)(VDI_SECTOR - 1);
}

int vdi_header_validate(const struct vdi_header *h, uint64_t file_size,
			char *why, size_t why_len)
{
	uint64_t bmap_end, capacity;

	switch (h->type) {
	case VDI_TYPE_DYNAMIC:
	case VDI_TYPE_STATIC:
		break;
	case VDI_TYPE_DIFF:
		/* 0.x has no parent-modification UUID to check a parent by. */
		if (vdi_header_is_legacy(h))
			return fail(-ENOTSUP, why, why_len,
				    "differencing images with a legacy 0.x "
				    "header are not supported");
		break;
	case VDI_TYPE_UNDO:
		return fail(-ENOTSUP, why, why_len,
			    "undo images (type 3) are not supported");
	default:
		return fail(-EINVAL, why, why_len,
			    "image type %" PRIu32 " is not 1 (dynamic), 2 "
			    "(static) or 4 (differencing)", h->type);
	}
	/* VirtualBox reads the 0.x geometry without checking it. */
	if (h->sector_size != VDI_SECTOR && !vdi_header_is_legacy(h))
		return fail(-EINVAL, why, why_len,
			    "sector size %" PRIu32 " is not %d",
			    h->sector_size, VDI_SECTOR);
	if (!vdi_is_pow2(h->block_size))
		return fail(-EINVAL, why, why_len,
			    "block size %" PRIu32 " is not a power of two",
			    h->block_size);
	if (h->block_size < VDI_MIN_BLOCK_SIZE ||
	    h->block_size > VDI_MAX_BLOCK_SIZE)
		return fail(-EINVAL, why, why_len,
			    "block size %" PRIu32 " is outside %u..%u",
			    h->block_size, VDI_MIN_BLOCK_SIZE,
			    VDI_MAX_BLOCK_SIZE);
	if (h->block_extra % VDI_SECTOR || h->block_extra > h->block_size)
		return fail(-EINVAL, why, why_len,
			    "block extra %" PRIu32 " is not a multiple of %d "
			    "no larger than the block size", h->block_extra,
			    VDI_SECTOR);
	if (h->blocks > VDI_MAX_BLOCKS)
		return fail(-EINVAL, why, why_len,
			    "block count %" PRIu32 " is larger than %u",
			    h->blocks, VDI_MAX_BLOCKS);
	capacity = (uint64_t)h->blocks * h->block_size;
	if (vdi_header_disk_size(h) > capacity)
		return fail(-EINVAL, why, why_len,
			    "disk size %" PRIu64 " is larger than %" PRIu32
			    " blocks of %" PRIu32 " bytes", h->disk_size,
			    h->blocks, h->block_size);
	/* A 0.x layout is fixed by its block count: nothing to check. */
	if (!vdi_header_is_legacy(h) &&
	    (h->offset_bmap % VDI_SECTOR || h->offset_bmap < VDI_PREAMBLE_SIZE))
		return fail(-EINVAL, why, why_len,
			    "block map offset %" PRIu32 " is not a multiple "
			    "of %d at or after %d", h->offset_bmap, VDI_SECTOR,
			    VDI_PREAMBLE_SIZE);
	if (!vdi_header_is_legacy(h) && h->offset_data % VDI_SECTOR)
		return fail(-EINVAL, why, why_len,
			    "data offset %" PRIu32 " is not a multiple of %d",
			    h->offset_data, VDI_SECTOR);
	bmap_end = h->offset_bmap + vdi_bmap_bytes(h);
	/* Even with no blocks: a data area that starts inside the header
	 * or the map would let the first data block overwrite them. */
	if (h->offset_data < bmap_end)
		return fail(-EINVAL, why, why_len,
			    "data offset %" PRIu32 " overlaps the block map "
			    "(%" PRIu32 " entries at %" PRIu32 " end at %"
			    PRIu64 ")", h->offset_data, h->blocks,
			    h->offset_bmap, bmap_end);
	if (bmap_end > file_size)
		return fail(-EINVAL, why, why_len,
			    "block map (%" PRIu32 " entries at %" PRIu32
			    ") ends at %" PRIu64 ", past the end of the file "
			    "(%" PRIu64 " bytes)", h->blocks, h->offset_bmap,
			    bmap_end, file_size);
	if (h->offset_data > file_size)
		return fail(-EINVAL, why, why_len,
			    "data offset %" PRIu32 " is past the end of the "
			    "file (%" PRIu64 " bytes)", h->offset_data,
			    file_size);
	return 0;
}

int vdi_header_init(struct vdi_header *h, uint64_t disk_size,
		    uint32_t block_size, uint32_t type, char *why,
		    size_t why_len)
{
	uint64_t blocks, bmap_bytes, max_size;

	memset(h, 0, sizeof(*h));
	if (!vdi_is_pow2(block_size) || block_size < VDI_MIN_BLOCK_SIZE ||
	    block_size > VDI_MAX_BLOCK_SIZE)
		return fail(-EINVAL, why, why_len,
			    "block size %" PRIu32 " is not a power of two in "
			    "%u..%u", block_size, VDI_MIN_BLOCK_SIZE,
			    VDI_MAX_BLOCK_SIZE);
	if (type != VDI_TYPE_DYNAMIC && type != VDI_TYPE_STATIC &&
	    type != VDI_TYPE_DIFF)
		return fail(-EINVAL, why, why_len,
			    "image type %" PRIu32 " cannot be created", type);
	max_size = (uint64_t)VDI_MAX_BLOCKS * block_size;
	if (disk_size > max_size)
		return fail(-EINVAL, why, why_len,
			    "disk size %" PRIu64 " is larger than the %" PRIu64
			    " bytes that %u blocks of %" PRIu32 " hold",
			    disk_size, max_size, VDI_MAX_BLOCKS, block_size);
	disk_size = (disk_size + VDI_SECTOR - 1) & ~(uint64_t)(VDI_SECTOR - 1);
	blocks = (disk_size + block_size - 1) / block_size;
	bmap_bytes = (blocks * 4 + VDI_ALIGN - 1) & ~(uint64_t)(VDI_ALIGN - 1);

	memcpy(h->banner, banner_text, sizeof(banner_text) - 1);
	h->signature = VDI_SIGNATURE;
	h->version = VDI_VERSION_1_1;
	h->header_size = VDI_HEADER_SIZE_400;
	h->type = type;
	h->offset_bmap = VDI_ALIGN;
	h->offset_data = (uint32_t)(VDI_ALIGN + bmap_bytes);
	h->sector_size = VDI_SECTOR;
	h->lchs_sector_size = VDI_SECTOR;
	h->disk_size = disk_size;
	h->block_size = block_size;
	h->blocks = (uint32_t)blocks;
	return 0;
}

void vdi_uuid_swap(unsigned char out[16], const unsigned char in[16])
{
	unsigned char t[16];

	memcpy(t, in, 16);
	out[0] = t[3];
	out[1] = t[2];
	out[2] = t[1];
	out[3] = t[0];
	out[4] = t[5];
	out[5] = t[4];
	out[6] = t[7];
	out[7] = t[6];
	memcpy(out + 8, t + 8, 8);
}
