/* How writes into new slots of a layout whose slots straddle file-system
 * blocks are cut and widened (2-image/fresh.c): the rule that keeps the
 * zeros of a widened write off every byte another write put there. */
#include <criterion/criterion.h>

#include "2-image/fresh.h"

#define FSB 4096u
/* A slot as in QEMU's layout for a 1 GiB disk: data area at 4608. */
#define SLOT0 4608u
#define MiB (1024u * 1024u)

static struct vdi_fresh f;

static void setup(void)
{
	vdi_fresh_init(&f, FSB);
	vdi_fresh_grow(&f, SLOT0, SLOT0 + MiB);
}

static void teardown(void)
{
	vdi_fresh_destroy(&f);
}

TestSuite(fresh, .init = setup, .fini = teardown);

static const char *kind_name(enum vdi_piece_kind k)
{
	return k == PIECE_PLAIN ? "plain" : k == PIECE_WIDE ? "wide" : "defer";
}

/* Plan [lo, hi) and check the pieces against `want` (n of them). */
static void expect(uint64_t lo, uint64_t hi, const struct vdi_piece *want,
		   int n)
{
	struct vdi_piece got[VDI_FRESH_MAX_PIECES];
	int i, k = vdi_fresh_plan(&f, lo, hi, got);

	cr_assert_eq(k, n, "[%llu, %llu): %d pieces, not %d",
		     (unsigned long long)lo, (unsigned long long)hi, k, n);
	for (i = 0; i < n; i++) {
		cr_assert_eq(got[i].kind, want[i].kind,
			     "[%llu, %llu) piece %d is %s, not %s",
			     (unsigned long long)lo, (unsigned long long)hi, i,
			     kind_name(got[i].kind), kind_name(want[i].kind));
		cr_assert(got[i].lo == want[i].lo && got[i].hi == want[i].hi,
			  "piece %d covers [%llu, %llu), not [%llu, %llu)", i,
			  (unsigned long long)got[i].lo,
			  (unsigned long long)got[i].hi,
			  (unsigned long long)want[i].lo,
			  (unsigned long long)want[i].hi);
		if (want[i].kind == PIECE_WIDE)
			cr_assert(got[i].wlo == want[i].wlo &&
					  got[i].whi == want[i].whi,
				  "piece %d is widened to [%llu, %llu), not "
				  "[%llu, %llu)", i,
				  (unsigned long long)got[i].wlo,
				  (unsigned long long)got[i].whi,
				  (unsigned long long)want[i].wlo,
				  (unsigned long long)want[i].whi);
	}
}

#define P(k, lo, hi) { PIECE_##k, lo, hi, 0, 0 }
#define W(lo, hi, wlo, whi) { PIECE_WIDE, lo, hi, wlo, whi }

/* A 4 KiB write at 512 past a block boundary straddles two blocks no
 * write reached: it goes out as those two blocks, zeros around it. */
Test(fresh, a_write_over_untouched_blocks_is_widened)
{
	struct vdi_piece w[] = { W(8704, 12800, 8192, 16384) };

	expect(8704, 12800, w, 1);
}

/* The next 4 KiB shares a block with it: while the first is in flight,
 * the shared part waits (the first one's zeros land there), and the
 * part in a block nobody reached is widened. */
Test(fresh, the_part_in_a_block_in_flight_waits)
{
	struct vdi_piece first[] = { W(8704, 12800, 8192, 16384) };
	struct vdi_piece second[] = { P(DEFER, 12800, 16384),
				      W(16384, 16896, 16384, 20480) };

	expect(8704, 12800, first, 1);
	expect(12800, 16896, second, 2);
}

/* Once the first write is done, the shared block holds its bytes: the
 * next write's part there is a plain overwrite, never widened (its zeros
 * would land over the first write's last 512 bytes). */
Test(fresh, a_block_written_before_is_never_widened_again)
{
	struct vdi_piece first[] = { W(8704, 12800, 8192, 16384) };
	struct vdi_piece second[] = { P(PLAIN, 12800, 16384),
				      W(16384, 16896, 16384, 20480) };
	struct vdi_piece inside[] = { P(PLAIN, 9000, 9512) };

	expect(8704, 12800, first, 1);
	vdi_fresh_release(&f, 8192, 16384);
	expect(12800, 16896, second, 2);
	expect(9000, 9512, inside, 1);
}

/* A block wholly inside a write that another write holds: all of it
 * waits. */
Test(fresh, a_whole_block_in_flight_makes_the_write_wait)
{
	struct vdi_piece first[] = { W(20480, 24576, 20480, 24576) };
	struct vdi_piece second[] = { P(DEFER, 17000, 30000) };

	expect(20480, 24576, first, 1);
	expect(17000, 30000, second, 1);
}

/* Before the first block boundary of the first new slot the file holds
 * the block map's end: that part goes out as it is. */
Test(fresh, nothing_is_known_before_the_first_new_block)
{
	struct vdi_piece w[] = { P(PLAIN, SLOT0, 8192),
				 W(8192, 8292, 8192, 12288) };

	expect(SLOT0, 8292, w, 2);
}

/* Past the blocks tracked (the last slot handed out and its end), and
 * after forgetting, writes go out as they are. */
Test(fresh, nothing_is_known_past_the_last_slot_or_after_forget)
{
	uint64_t end = (SLOT0 + MiB + FSB - 1) / FSB * FSB;
	struct vdi_piece past[] = { P(PLAIN, end, end + 4096) };
	struct vdi_piece across[] = { W(end - 512, end, end - FSB, end),
				      P(PLAIN, end, end + 100) };
	struct vdi_piece after[] = { P(PLAIN, 8704, 12800) };

	expect(end, end + 4096, past, 1);
	expect(end - 512, end + 100, across, 2);
	vdi_fresh_forget(&f);
	expect(8704, 12800, after, 1);
}

/* The next slot continues the tracked blocks: the block shared by two
 * slots keeps what the first slot's writes did to it. */
Test(fresh, the_block_two_slots_share_keeps_its_state)
{
	uint64_t edge = (SLOT0 + MiB) / FSB * FSB; /* holds slot 0's end */
	struct vdi_piece tail[] = { W(SLOT0 + MiB - 512, SLOT0 + MiB, edge,
				      edge + FSB) };
	struct vdi_piece head[] = { P(DEFER, SLOT0 + MiB, edge + FSB) };

	expect(SLOT0 + MiB - 512, SLOT0 + MiB, tail, 1);
	vdi_fresh_grow(&f, SLOT0 + MiB, SLOT0 + 2 * MiB);
	expect(SLOT0 + MiB, edge + FSB, head, 1);
}
