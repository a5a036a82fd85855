/* The pure format layer: header codec, validation rules, UUID order. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "1-format/format.h"
#include "util.h"
#include "vdi.h"

static struct vdi_header h;
static char why[256];
#define FILE_SIZE (UINT64_C(64) << 20)

static void setup(void)
{
	cr_assert_eq(vdi_header_init(&h, 8ull << 20, 1 << 20, VDI_TYPE_DYNAMIC,
				     why, sizeof(why)), 0);
	why[0] = 0;
}

TestSuite(format, .init = setup);

Test(format, init_layout)
{
	cr_assert_eq(h.blocks, 8);
	cr_assert_eq(h.offset_bmap, 1u << 20, "block map on 1 MiB");
	cr_assert_eq(h.offset_data, 2u << 20, "data on 1 MiB");
	cr_assert_eq(h.header_size, 400);
	cr_assert_eq(vdi_header_validate(&h, FILE_SIZE, why, sizeof(why)), 0,
		     "%s", why);
}

Test(format, roundtrip_400)
{
	unsigned char buf[VDI_PREAMBLE_SIZE];
	struct vdi_header d;

	memset(buf, 0xAB, sizeof(buf));
	h.lchs_cylinders = 520;
	h.lchs_heads = 128;
	h.lchs_sectors = 63;
	strcpy(h.description, "hello");
	memset(h.uuid_create, 7, 16);
	vdi_header_encode(&h, buf);
	cr_assert_eq(buf[0x40], 0x7F, "signature little-endian");
	cr_assert_eq(buf[0x43], 0xBE);
	cr_assert_eq(vdi_header_decode(buf, sizeof(buf), &d, why, sizeof(why)), 0);
	cr_assert_eq(memcmp(&d, &h, sizeof(d)), 0, "decode(encode(h)) == h");
	cr_assert_eq(buf[0x1D8], 0xAB, "bytes after the header kept");
}

Test(format, roundtrip_384_keeps_size)
{
	unsigned char buf[VDI_PREAMBLE_SIZE];
	struct vdi_header d;

	memset(buf, 0xCD, sizeof(buf));
	h.header_size = 384;
	h.lchs_cylinders = 99; /* not part of a 384-byte header */
	vdi_header_encode(&h, buf);
	cr_assert_eq(buf[0x1C8], 0xCD, "no geometry written for 384");
	cr_assert_eq(vdi_header_decode(buf, sizeof(buf), &d, why, sizeof(why)), 0);
	cr_assert_eq(d.header_size, 384);
	cr_assert_eq(d.lchs_cylinders, 0);
}

static void expect_decode_error(unsigned char *buf, size_t len, int err,
				const char *needle)
{
	struct vdi_header d;

	cr_assert_eq(vdi_header_decode(buf, len, &d, why, sizeof(why)), err,
		     "why: %s", why);
	cr_assert(strstr(why, needle), "'%s' should mention '%s'", why, needle);
}

Test(format, reject_short_file)
{
	unsigned char buf[VDI_PREAMBLE_SIZE] = { 0 };

	expect_decode_error(buf, 100, -EINVAL, "too small");
}

Test(format, reject_signature)
{
	unsigned char buf[VDI_PREAMBLE_SIZE];

	vdi_header_encode(&h, buf);
	buf[0x40] ^= 1;
	expect_decode_error(buf, sizeof(buf), -EINVAL, "signature 0xbeda107e");
}

Test(format, legacy_header_decodes_to_its_implied_layout)
{
	unsigned char buf[VDI_PREAMBLE_SIZE], copy[VDI_PREAMBLE_SIZE];
	struct vdi_header d;

	legacy_preamble(buf, 5u << 20, 1u << 20, 5, 2);
	cr_assert_eq(vdi_header_decode(buf, sizeof(buf), &d, why, sizeof(why)),
		     0, "%s", why);
	cr_assert(vdi_header_is_legacy(&d));
	cr_assert_eq(d.version, 2);
	cr_assert_eq(d.type, VDI_TYPE_DYNAMIC);
	cr_assert_eq(d.disk_size, 5u << 20);
	cr_assert_eq(d.block_size, 1u << 20);
	cr_assert_eq(d.block_extra, 0);
	cr_assert_eq(d.blocks, 5);
	cr_assert_eq(d.blocks_allocated, 2);
	cr_assert_eq(d.offset_bmap, 420, "map right after the 0.x header");
	cr_assert_eq(d.offset_data, 420 + 5 * 4, "data right after the map");
	cr_assert_eq(d.uuid_create[0], 0x11);
	cr_assert_eq(d.uuid_modify[15], 0x60);
	cr_assert_str_eq(d.description, "legacy");
	cr_assert_eq(vdi_header_validate(&d, 440 + (2u << 20), why,
					 sizeof(why)), 0, "%s", why);
	/* Never written back. */
	memcpy(copy, buf, sizeof(buf));
	d.blocks_allocated = 3;
	vdi_header_encode(&d, buf);
	cr_assert_eq(memcmp(copy, buf, sizeof(buf)), 0);
}

Test(format, legacy_differencing_refused)
{
	unsigned char buf[VDI_PREAMBLE_SIZE];
	struct vdi_header d;

	legacy_preamble(buf, 1u << 20, 1u << 20, 1, 0);
	buf[0x48] = VDI_TYPE_DIFF;
	cr_assert_eq(vdi_header_decode(buf, sizeof(buf), &d, why, sizeof(why)),
		     0, "%s", why);
	cr_assert_eq(vdi_header_validate(&d, 1u << 21, why, sizeof(why)),
		     -ENOTSUP);
	cr_assert(strstr(why, "legacy 0.x"), "%s", why);
}

Test(format, legacy_block_count_checked_before_offsets)
{
	unsigned char buf[VDI_PREAMBLE_SIZE];

	/* 420 + 4 x blocks would wrap around 32 bits. */
	legacy_preamble(buf, 1u << 20, 1u << 20, 0xFFFFFFF0u, 0);
	expect_decode_error(buf, sizeof(buf), -EINVAL, "block count 4294967280");
}

Test(format, legacy_map_past_eof)
{
	unsigned char buf[VDI_PREAMBLE_SIZE];
	struct vdi_header d;

	legacy_preamble(buf, 1024u << 20, 1u << 20, 1024, 0);
	cr_assert_eq(vdi_header_decode(buf, sizeof(buf), &d, why, sizeof(why)),
		     0, "%s", why);
	cr_assert_eq(vdi_header_validate(&d, 512, why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "past the end of the file"), "%s", why);
}

Test(format, reject_version_2)
{
	unsigned char buf[VDI_PREAMBLE_SIZE];

	h.version = 0x00020000;
	vdi_header_encode(&h, buf);
	expect_decode_error(buf, sizeof(buf), -ENOTSUP, "version 2.0");
}

Test(format, reject_header_size)
{
	unsigned char buf[VDI_PREAMBLE_SIZE];

	h.header_size = 200;
	vdi_header_encode(&h, buf);
	expect_decode_error(buf, sizeof(buf), -EINVAL, "header size 200");
	h.header_size = 500;
	vdi_header_encode(&h, buf);
	expect_decode_error(buf, sizeof(buf), -EINVAL, "header size 500");
}

static void expect_invalid(int err, const char *needle)
{
	cr_assert_eq(vdi_header_validate(&h, FILE_SIZE, why, sizeof(why)), err,
		     "why: %s", why);
	cr_assert(strstr(why, needle), "'%s' should mention '%s'", why, needle);
}

Test(format, reject_type)
{
	h.type = 9;
	expect_invalid(-EINVAL, "image type 9");
}

Test(format, reject_undo)
{
	h.type = VDI_TYPE_UNDO;
	expect_invalid(-ENOTSUP, "undo");
}

Test(format, accept_differencing)
{
	h.type = VDI_TYPE_DIFF;
	cr_assert_eq(vdi_header_validate(&h, FILE_SIZE, why, sizeof(why)), 0,
		     "%s", why);
}

Test(format, reject_sector_size)
{
	h.sector_size = 4096;
	expect_invalid(-EINVAL, "sector size 4096");
}

Test(format, reject_block_size_not_pow2)
{
	h.block_size = 3000;
	expect_invalid(-EINVAL, "block size 3000 is not a power of two");
}

Test(format, reject_block_size_range)
{
	h.block_size = 4096;
	h.blocks = 2048;
	expect_invalid(-EINVAL, "block size 4096 is outside");
	h.block_size = 1u << 28;
	h.blocks = 1;
	expect_invalid(-EINVAL, "block size 268435456 is outside");
}

Test(format, accept_other_block_sizes)
{
	h.block_size = 1u << 17;
	h.blocks = 64;
	cr_assert_eq(vdi_header_validate(&h, FILE_SIZE, why, sizeof(why)), 0,
		     "%s", why);
}

Test(format, reject_block_extra)
{
	h.block_extra = 100;
	expect_invalid(-EINVAL, "block extra 100");
}

Test(format, reject_too_many_blocks)
{
	h.blocks = 0xFFFFFFFF;
	expect_invalid(-EINVAL, "block count 4294967295");
}

Test(format, reject_disk_larger_than_blocks)
{
	h.disk_size = (9ull << 20);
	expect_invalid(-EINVAL, "larger than 8 blocks");
}

Test(format, reject_bmap_offset)
{
	h.offset_bmap = 1000;
	expect_invalid(-EINVAL, "block map offset 1000");
	h.offset_bmap = 0;
	expect_invalid(-EINVAL, "block map offset 0");
}

Test(format, reject_data_offset_unaligned)
{
	h.offset_data = (2u << 20) + 1;
	expect_invalid(-EINVAL, "data offset 2097153 is not a multiple");
}

Test(format, reject_overlap)
{
	/* 8 entries need 32 bytes after the block map offset. */
	h.offset_data = h.offset_bmap;
	expect_invalid(-EINVAL, "overlaps the block map");
}

Test(format, reject_data_offset_in_header_without_blocks)
{
	/* Found by the fuzzer: no blocks and a data offset of 0 let repair
	 * cut the whole file as "leaked space". */
	h.blocks = 0;
	h.disk_size = 0;
	h.offset_data = 0;
	expect_invalid(-EINVAL, "data offset 0 overlaps the block map");
}

Test(format, reject_bmap_past_eof)
{
	cr_assert_eq(vdi_header_validate(&h, (1u << 20) + 16, why, sizeof(why)),
		     -EINVAL);
	cr_assert(strstr(why, "past the end of the file"), "%s", why);
}

Test(format, reject_data_offset_past_eof)
{
	cr_assert_eq(vdi_header_validate(&h, (1u << 20) + 512, why, sizeof(why)),
		     -EINVAL);
	cr_assert(strstr(why, "data offset 2097152 is past the end"), "%s", why);
}

Test(format, odd_disk_size_rounds_up)
{
	h.disk_size = 1474560 + 100;
	cr_assert_eq(vdi_header_disk_size(&h), 1474560 + 512);
	cr_assert_eq(vdi_header_validate(&h, FILE_SIZE, why, sizeof(why)), 0);
}

Test(format, init_rejects_bad_sizes)
{
	cr_assert_eq(vdi_header_init(&h, 1 << 20, 3000, VDI_TYPE_DYNAMIC, why,
				     sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "block size 3000"), "%s", why);
	cr_assert_eq(vdi_header_init(&h, UINT64_MAX, 1 << 20, VDI_TYPE_DYNAMIC,
				     why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "disk size"), "%s", why);
	cr_assert_eq(vdi_header_init(&h, 1 << 20, 1 << 20, VDI_TYPE_UNDO, why,
				     sizeof(why)), -EINVAL);
}

Test(format, uuid_byte_order)
{
	const unsigned char rfc[16] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
					0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c,
					0x0d, 0x0e, 0x0f, 0x10 };
	const unsigned char vbox[16] = { 0x04, 0x03, 0x02, 0x01, 0x06, 0x05,
					 0x08, 0x07, 0x09, 0x0a, 0x0b, 0x0c,
					 0x0d, 0x0e, 0x0f, 0x10 };
	unsigned char out[16], back[16];

	vdi_uuid_swap(out, rfc);
	cr_assert_eq(memcmp(out, vbox, 16), 0);
	vdi_uuid_swap(back, out);
	cr_assert_eq(memcmp(back, rfc, 16), 0, "its own inverse");
}
