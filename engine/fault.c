/* The fault-injection seam (see fault.h). */
#include "fault.h"

const struct vdi_fault_hook *vdi_fault_hook;

void vdi_fault_set(const struct vdi_fault_hook *hook)
{
	vdi_fault_hook = hook;
}
