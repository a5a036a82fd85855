/* Progress of an offline operation in steps, for a vdi_progress_fn:
 * set `total`, then take one step per unit of work; the count never goes
 * past `total`. */
#ifndef VDI_OPS_STEPS_H
#define VDI_OPS_STEPS_H

#include <stdint.h>

#include "vdi.h"

struct vdi_steps {
	vdi_progress_fn fn;
	void *opaque;
	uint64_t done, total;
};

static inline void vdi_step(struct vdi_steps *s)
{
	if (s->done < s->total)
		s->done++;
	if (s->fn)
		s->fn(s->opaque, s->done, s->total);
}

/* The last step: the count reaches `total`, however many came before. */
static inline void vdi_steps_finish(struct vdi_steps *s)
{
	s->done = s->total;
	if (s->fn)
		s->fn(s->opaque, s->done, s->total);
}

#endif
