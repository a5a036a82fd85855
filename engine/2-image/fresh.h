/* Layer 2: the file-system blocks of new slots in a layout whose slots
 * straddle them (QEMU's, old VirtualBox's), and which of them a write has
 * ever reached.  Used by the queue (4-queue/split.c) to turn a write that
 * is not aligned to the file system's blocks into one that is, by adding
 * zeros where the bytes are known to be zeros.  Internal. */
#ifndef LIBVDI_FRESH_H
#define LIBVDI_FRESH_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* The blocks of [base, end) in the file, `fsb` bytes each: every byte of
 * them was zero when the first slot this handle allocated was handed out
 * (allocation starts past the end of the file, or where it was cut).  A
 * block is "touched" once a write that reaches it has been handed to the
 * kernel, and "busy" while a write that added zeros to it, or wrote it
 * first, is in flight.  What is not touched is still zeros, so a write
 * may cover it whole with zeros around its own bytes; what is busy no
 * other write may reach until that write completes, or its zeros could
 * land over the other's bytes.  Outside [base, end) nothing is known: a
 * write there goes out as it is.  Everything under `lock`, a leaf lock. */
struct vdi_fresh {
	pthread_mutex_t lock;
	uint32_t fsb;       /* file-system block size; 0: not tracked */
	uint64_t base, end; /* fsb-aligned file offsets; base == end: none */
	uint64_t words;     /* allocated length of each bitmap, in words */
	uint64_t *touched, *busy; /* bit per block from base */
};

/* What a write of [lo, hi) becomes: up to five pieces, in file order. */
enum vdi_piece_kind {
	PIECE_PLAIN, /* as it is */
	PIECE_WIDE,  /* widened to [wlo, whi) with zeros; claims those blocks */
	PIECE_DEFER, /* reaches a busy block: again once it is not */
};

struct vdi_piece {
	enum vdi_piece_kind kind;
	uint64_t lo, hi;   /* the write's bytes in the file */
	uint64_t wlo, whi; /* PIECE_WIDE: the aligned range written */
};

#define VDI_FRESH_MAX_PIECES 5

void vdi_fresh_init(struct vdi_fresh *f, uint32_t fsb);
void vdi_fresh_destroy(struct vdi_fresh *f);

static inline bool vdi_fresh_on(const struct vdi_fresh *f)
{
	return f->fsb != 0;
}

/* A new slot, [lo, hi) in the file, was handed out: track its blocks.
 * The first one starts the tracked range at the first block boundary in
 * it (the block before holds an older slot's end).  Slots must come in
 * file order, each starting where the previous one ended. */
void vdi_fresh_grow(struct vdi_fresh *f, uint64_t lo, uint64_t hi);

/* Forget every block: the file changed under the tracking (a cut, blocks
 * moved).  No write may be in flight.  The next vdi_fresh_grow starts
 * afresh. */
void vdi_fresh_forget(struct vdi_fresh *f);

/* Split a write of [lo, hi) into pieces (returns how many) and claim the
 * blocks of its PIECE_WIDE, which vdi_fresh_release gives back once that
 * write is done or failed. */
int vdi_fresh_plan(struct vdi_fresh *f, uint64_t lo, uint64_t hi,
		   struct vdi_piece *out);
void vdi_fresh_release(struct vdi_fresh *f, uint64_t wlo, uint64_t whi);

#endif
