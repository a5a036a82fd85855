/* The VDI on-disk format: header codec and validation.  Pure: bytes in, a
 * validated struct or an error out; no I/O happens here. */
#ifndef LIBVDI_FORMAT_H
#define LIBVDI_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define VDI_SIGNATURE 0xBEDA107Fu
#define VDI_VERSION_1_1 0x00010001u
#define VDI_BANNER_SIZE 64
#define VDI_HEADER_OFFSET 0x40
#define VDI_HEADER_SIZE_384 384
#define VDI_HEADER_SIZE_400 400
#define VDI_SECTOR 512
/* Bytes of the file that hold the banner and the header: one sector. */
#define VDI_PREAMBLE_SIZE VDI_SECTOR
/* New images align the block map and the data area to this. */
#define VDI_ALIGN (1u << 20)
/* Most blocks an image may have: keeps the block map below 2 GiB, as QEMU
 * does, and every byte offset well inside 63 bits. */
#define VDI_MAX_BLOCKS (0x7FFFFFFFu / 4)

#define VDI_DESC_SIZE 256

struct vdi_header {
	char banner[VDI_BANNER_SIZE];
	uint32_t signature;
	uint32_t version;
	uint32_t header_size;
	uint32_t type;
	uint32_t flags;
	char description[VDI_DESC_SIZE];
	uint32_t offset_bmap;
	uint32_t offset_data;
	uint32_t cylinders, heads, sectors, sector_size;
	uint64_t disk_size;
	uint32_t block_size;
	uint32_t block_extra;
	uint32_t blocks;
	uint32_t blocks_allocated;
	/* VirtualBox byte order, as stored. */
	unsigned char uuid_create[16];
	unsigned char uuid_modify[16];
	unsigned char uuid_link[16];
	unsigned char uuid_parent_modify[16];
	/* 400-byte header only. */
	uint32_t lchs_cylinders, lchs_heads, lchs_sectors, lchs_sector_size;
};

/* Decode the first VDI_PREAMBLE_SIZE bytes of a file.  Checks only what is
 * needed to know it is a VDI 1.1 header (signature, version, header size)
 * or a legacy 0.x one; vdi_header_validate() does the rest.  A 0.x header
 * comes out with the offsets its layout implies (block map right after
 * the header, data right after the map: neither sector-aligned) and
 * header_size 348; it is never encoded. */
int vdi_header_decode(const unsigned char *buf, size_t len,
		      struct vdi_header *h, char *why, size_t why_len);

/* VDI 0.x (VirtualBox before 1.4): readable, never written. */
static inline int vdi_header_is_legacy(const struct vdi_header *h)
{
	return h->version >> 16 == 0;
}

/* Encode into buf (VDI_PREAMBLE_SIZE bytes), writing the header size that
 * h->header_size says; bytes past the header are left as they are. */
void vdi_header_encode(const struct vdi_header *h, unsigned char *buf);

/* Full validation against the size of the file.  On failure returns
 * -EINVAL (or -ENOTSUP for valid but unsupported images) and writes a
 * message naming the field, its value and the limit into `why`. */
int vdi_header_validate(const struct vdi_header *h, uint64_t file_size,
			char *why, size_t why_len);

/* Virtual disk size: the stored size rounded up to a sector. */
uint64_t vdi_header_disk_size(const struct vdi_header *h);

/* Bytes one data block takes in the file (block_extra + block_size). */
static inline uint64_t vdi_slot_size(const struct vdi_header *h)
{
	return (uint64_t)h->block_size + h->block_extra;
}

/* File offset of the data of physical block `index`. */
static inline uint64_t vdi_block_file_offset(const struct vdi_header *h,
					     uint32_t index)
{
	return h->offset_data + (uint64_t)index * vdi_slot_size(h) +
	       h->block_extra;
}

/* Bytes of the block map on disk (4 per block). */
static inline uint64_t vdi_bmap_bytes(const struct vdi_header *h)
{
	return (uint64_t)h->blocks * 4;
}

/* Fill a header for a new image.  Fails with -EINVAL and a message for a
 * block size or disk size out of range. */
int vdi_header_init(struct vdi_header *h, uint64_t disk_size,
		    uint32_t block_size, uint32_t type, char *why,
		    size_t why_len);

/* UUID byte order: RFC 4122 (uuid_t) <-> VirtualBox (first three fields
 * little-endian).  The conversion is its own inverse. */
void vdi_uuid_swap(unsigned char out[16], const unsigned char in[16]);

static inline int vdi_is_pow2(uint32_t x)
{
	return x && !(x & (x - 1));
}

#endif
