/* The file-system blocks of new slots that a write has reached (see
 * fresh.h).  Why: ext4 runs a direct write that is not aligned to its
 * blocks and lands on blocks never written under its exclusive inode lock,
 * after waiting for every direct write in flight, and that serialised
 * 4 KiB writes into new slots of QEMU's layout (each straddles two file-
 * system blocks).  A block no write has reached is still zeros, so such a
 * write can be widened to whole blocks with zeros around its bytes, which
 * ext4 runs as it runs raw-sparse's writes; a block an earlier write did
 * reach is written on disk, and a part of it is a plain overwrite.  The
 * cost is the widening: at most a block more at each end, where filling
 * the slot with zeros cost its whole size (docs/benchmarks.md, "Widening
 * writes in QEMU's layout"). */
#include "2-image/fresh.h"

#include <stdlib.h>
#include <string.h>

/* At most this many blocks are tracked (16 MiB of bitmaps: 256 GiB of new
 * slots at 4 KiB); writes past them go out as they are. */
#define MAX_BLOCKS ((uint64_t)1 << 26)

static bool test(const uint64_t *bm, uint64_t k)
{
	return bm[k / 64] >> (k % 64) & 1;
}

static void set(uint64_t *bm, uint64_t k)
{
	bm[k / 64] |= (uint64_t)1 << (k % 64);
}

static void clear(uint64_t *bm, uint64_t k)
{
	bm[k / 64] &= ~((uint64_t)1 << (k % 64));
}

void vdi_fresh_init(struct vdi_fresh *f, uint32_t fsb)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	f->fsb = fsb;
}

void vdi_fresh_destroy(struct vdi_fresh *f)
{
	free(f->touched);
	free(f->busy);
	pthread_mutex_destroy(&f->lock);
}

void vdi_fresh_grow(struct vdi_fresh *f, uint64_t lo, uint64_t hi)
{
	uint64_t a = f->fsb, end, n, words;

	if (!a)
		return;
	pthread_mutex_lock(&f->lock);
	if (f->base == f->end)
		f->base = f->end = (lo + a - 1) / a * a;
	end = (hi + a - 1) / a * a;
	if (end > f->base + MAX_BLOCKS * a)
		end = f->base + MAX_BLOCKS * a;
	if (end <= f->end)
		goto out;
	n = (end - f->base) / a;
	words = (n + 63) / 64;
	if (words > f->words) {
		/* Doubling: a slot at a time would copy the maps each time. */
		uint64_t w = f->words ? f->words : 64, *t, *b;

		while (w < words)
			w *= 2;
		t = realloc(f->touched, w * sizeof(*t));
		if (t)
			f->touched = t;
		b = t ? realloc(f->busy, w * sizeof(*b)) : NULL;
		if (b)
			f->busy = b;
		if (!t || !b)
			goto out; /* untracked from here: plain writes */
		memset(t + f->words, 0, (w - f->words) * sizeof(*t));
		memset(b + f->words, 0, (w - f->words) * sizeof(*b));
		f->words = w;
	}
	f->end = end;
out:
	pthread_mutex_unlock(&f->lock);
}

void vdi_fresh_forget(struct vdi_fresh *f)
{
	pthread_mutex_lock(&f->lock);
	if (f->words) {
		memset(f->touched, 0, f->words * sizeof(*f->touched));
		memset(f->busy, 0, f->words * sizeof(*f->busy));
	}
	f->base = f->end = 0;
	pthread_mutex_unlock(&f->lock);
}

/* Mark the blocks of [wlo, whi) touched, and busy those that were not. */
static void claim(struct vdi_fresh *f, uint64_t wlo, uint64_t whi)
{
	uint64_t k;

	for (k = (wlo - f->base) / f->fsb; k < (whi - f->base) / f->fsb; k++)
		if (!test(f->touched, k)) {
			set(f->touched, k);
			set(f->busy, k);
		}
}

void vdi_fresh_release(struct vdi_fresh *f, uint64_t wlo, uint64_t whi)
{
	uint64_t k;

	pthread_mutex_lock(&f->lock);
	/* A block of the range that is busy is this write's: a claim takes
	 * only blocks not touched, and those in the range were not busy. */
	if (wlo >= f->base && whi <= f->end)
		for (k = (wlo - f->base) / f->fsb;
		     k < (whi - f->base) / f->fsb; k++)
			clear(f->busy, k);
	pthread_mutex_unlock(&f->lock);
}

static int add(struct vdi_piece *out, int n, enum vdi_piece_kind kind,
	       uint64_t lo, uint64_t hi)
{
	if (lo < hi)
		out[n++] = (struct vdi_piece){ kind, lo, hi, 0, 0 };
	return n;
}

/* A partial block at an end of the write: its piece goes out as it is
 * over a block written before, waits while one is in flight, and joins the
 * widened write over a block never reached (-1). */
static int edge(const struct vdi_fresh *f, uint64_t k)
{
	if (test(f->busy, k))
		return PIECE_DEFER;
	return test(f->touched, k) ? PIECE_PLAIN : -1;
}

int vdi_fresh_plan(struct vdi_fresh *f, uint64_t lo, uint64_t hi,
		   struct vdi_piece *out)
{
	uint64_t a = f->fsb, t0, t1, kb, ke, k, wlo, whi;
	int n = 0, head = -2, tail = -2; /* -2: the end is aligned */

	pthread_mutex_lock(&f->lock);
	t0 = lo > f->base ? lo : f->base;
	t1 = hi < f->end ? hi : f->end;
	if (!a || t0 >= t1) {
		pthread_mutex_unlock(&f->lock);
		return add(out, 0, PIECE_PLAIN, lo, hi);
	}
	n = add(out, n, PIECE_PLAIN, lo, t0);
	kb = (t0 - f->base) / a;
	ke = (t1 - 1 - f->base) / a;
	if (t0 % a)
		head = edge(f, kb);
	if (t1 % a)
		tail = kb == ke && head != -2 ? head : edge(f, ke);
	/* Whole blocks in between that another write holds: all of it
	 * waits (two writes that overlap, or nearly). */
	for (k = head == -2 ? kb : kb + 1; k + (tail == -2 ? 0 : 1) <= ke; k++)
		if (test(f->busy, k)) {
			n = add(out, n, PIECE_DEFER, t0, t1);
			goto out;
		}
	if (kb == ke && head != -2 && tail != -2 && head >= 0) {
		/* Inside one block, which a write reached before. */
		n = add(out, n, (enum vdi_piece_kind)head, t0, t1);
		goto out;
	}
	wlo = head == -2 ? t0 : head == -1 ? f->base + kb * a
					   : f->base + (kb + 1) * a;
	whi = tail == -2 ? t1 : tail == -1 ? f->base + (ke + 1) * a
					   : f->base + ke * a;
	if (head >= 0)
		n = add(out, n, (enum vdi_piece_kind)head, t0, wlo);
	if (wlo < whi) {
		claim(f, wlo, whi);
		out[n++] = (struct vdi_piece){ PIECE_WIDE, wlo > t0 ? wlo : t0,
					       whi < t1 ? whi : t1, wlo, whi };
	}
	if (tail >= 0)
		n = add(out, n, (enum vdi_piece_kind)tail, whi, t1);
out:
	pthread_mutex_unlock(&f->lock);
	return add(out, n, PIECE_PLAIN, t1, hi);
}
