/* The -p progress bar: one line on stderr, redrawn with a carriage return
 * whenever the done fraction moves by a tenth of a percent. */
#include "cli.h"

#define BAR_WIDTH 40

/* A bar is drawn and its line not ended: messages must start a new one. */
static bool line_open;

void progress_break_line(void)
{
	if (line_open) {
		fputc('\n', stderr);
		line_open = false;
	}
}

void progress_init(struct progress *p, bool enabled, uint64_t total)
{
	p->enabled = enabled;
	p->total = total;
	p->last_permille = -1;
	progress_update(p, 0);
}

static void draw(int permille)
{
	int fill = permille * BAR_WIDTH / 1000;
	char bar[BAR_WIDTH + 1];

	for (int i = 0; i < BAR_WIDTH; i++)
		bar[i] = i < fill ? '#' : ' ';
	bar[BAR_WIDTH] = '\0';
	fprintf(stderr, "\r    [%s] %3d.%d%%", bar, permille / 10,
		permille % 10);
	fflush(stderr);
	line_open = true;
}

void progress_update(struct progress *p, uint64_t done)
{
	int permille;

	if (!p->enabled)
		return;
	if (p->total == 0)
		permille = 1000;
	else if (done >= p->total)
		permille = 1000;
	else
		permille = (int)((double)done * 1000.0 / (double)p->total);
	if (permille == p->last_permille)
		return;
	p->last_permille = permille;
	draw(permille);
}

void progress_finish(struct progress *p, bool complete)
{
	if (!p->enabled)
		return;
	if (complete)
		progress_update(p, p->total);
	progress_break_line();
	fflush(stderr);
}

void progress_callback(void *opaque, uint64_t done, uint64_t total)
{
	struct progress *p = opaque;

	p->total = total;
	progress_update(p, done);
}
