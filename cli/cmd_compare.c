/* vdi compare: do two disks read the same?  qemu-img compare's contract:
 * exit 0 identical, 1 different (the first differing 512-byte sector
 * named), 2 on error; raw and VDI inputs in any mix; a size difference
 * is allowed when the longer disk's tail reads as zeros, unless -s
 * (strict), which also wants the same block status, as QEMU reports it
 * (input_block_status): data stored in one where the other has a hole or
 * a free block is a difference even when it is zeros. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define EXIT_DIFFERENT 1
#define EXIT_ERROR 2

static void help(void)
{
	fputs("Usage: vdi compare [-f raw|vdi] [-F raw|vdi] [-s] [-p] [-q] "
	      "FILE1 FILE2\n"
	      "\n"
	      "Compare the disks of FILE1 and FILE2, each a raw file or a VDI\n"
	      "image (a differencing image is read through its parents), as\n"
	      "qemu-img compare does.  Prints 'Images are identical.' or the\n"
	      "first 512-byte sector that differs.  Disks of different sizes\n"
	      "are identical when the longer one reads as zeros past the end\n"
	      "of the shorter.\n"
	      "\n"
	      "  -f FMT       the format of FILE1: raw or vdi (default: probed)\n"
	      "  -F FMT       the format of FILE2\n"
	      "  -s           strict: sizes must match, and so must the block\n"
	      "               status QEMU reports (data, zero, reaching the end\n"
	      "               of the disk) at each offset: a raw file's holes,\n"
	      "               a VDI image's free, zero and data blocks\n"
	      "  -p           show a progress bar on standard error\n"
	      "  -q           quiet: print nothing, only set the exit status\n"
	      "  -h, --help   show this help\n"
	      "\n"
	      "Exit status: 0 identical, 1 different, 2 an error.\n", stdout);
}

static int parse_format(const char *text, int *out)
{
	if (!strcmp(text, "raw") || !strcmp(text, "vdi")) {
		*out = !strcmp(text, "vdi");
		return 0;
	}
	die_msg("compare: unknown format '%s': use raw or vdi", text);
	return -1;
}

/* Offset of the 512-byte sector holding the first byte that differs
 * (b NULL: the first byte that is not zero), or UINT64_MAX. */
static uint64_t first_diff(const unsigned char *a, const unsigned char *b,
			   size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (a[i] != (b ? b[i] : 0))
			return i & ~(uint64_t)511;
	return UINT64_MAX;
}

/* Strict: walk both disks the way qemu-img compare -s does, from one
 * change of either's block status to the next; the first offset whose
 * status differs is a difference (2), and so is the first differing
 * sector (1) of a run whose status is not "zero" on both. */
static int compare_strict(struct input *a, struct input *b, uint64_t end,
			  struct progress *prog, uint64_t *where)
{
	uint64_t off = 0;

	while (off < end) {
		uint64_t la, lb, max, d;
		unsigned fa, fb;

		if (input_block_status(a, off, &la, &fa) < 0 ||
		    input_block_status(b, off, &lb, &fb) < 0)
			return -1;
		if (fa != fb) {
			*where = off;
			return 2;
		}
		max = la < lb ? la : lb;
		if (max > INPUT_STEP)
			max = INPUT_STEP;
		if (!(fa & BLOCK_ZERO)) {
			if (input_read(a, off, (size_t)max) < 0 ||
			    input_read(b, off, (size_t)max) < 0)
				return -1;
			d = first_diff(a->buf, b->buf, (size_t)max);
			if (d != UINT64_MAX) {
				*where = off + d;
				return 1;
			}
		}
		off += max;
		progress_update(prog, off);
	}
	return 0;
}

/* Compare [off, end): 0 same, 1 different (*where set), -1 error.  With
 * one input only (b NULL), the range must read as zeros. */
static int compare_range(struct input *a, struct input *b, uint64_t off,
			 uint64_t end, struct progress *prog, uint64_t *where)
{
	while (off < end) {
		uint64_t max = end - off < INPUT_STEP ? end - off : INPUT_STEP;
		uint64_t la, lb = max, d;
		bool da, db = false;

		if (input_status(a, off, max, &la, &da) < 0 ||
		    (b && input_status(b, off, max, &lb, &db) < 0))
			return -1;
		max = la < lb ? la : lb;
		if (da || db) {
			if ((da && input_read(a, off, (size_t)max) < 0) ||
			    (db && input_read(b, off, (size_t)max) < 0))
				return -1;
			if (da && db)
				d = first_diff(a->buf, b->buf, (size_t)max);
			else
				d = first_diff(da ? a->buf : b->buf, NULL,
					       (size_t)max);
			if (d != UINT64_MAX) {
				*where = off + d;
				return 1;
			}
		}
		off += max;
		progress_update(prog, off);
	}
	return 0;
}

int cmd_compare(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct input a = { .fd = -1 }, b = { .fd = -1 };
	bool strict = false, quiet = false, show_progress = false;
	struct progress prog;
	uint64_t common, where = 0;
	int fa = -1, fb = -1, c, ret, status = EXIT_ERROR;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:F:spqh", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'f':
			if (parse_format(optarg, &fa) < 0)
				return EXIT_ERROR;
			break;
		case 'F':
			if (parse_format(optarg, &fb) < 0)
				return EXIT_ERROR;
			break;
		case 's':
			strict = true;
			break;
		case 'p':
			show_progress = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			help();
			return 0;
		default:
			option_error("compare", c, argv);
			return EXIT_ERROR;
		}
	}
	if (argc - optind != 2) {
		usage_error("compare", argc - optind < 2
			    ? "expected FILE1 and FILE2"
			    : "too many arguments: expected FILE1 and FILE2");
		return EXIT_ERROR;
	}
	if (open_input(&a, argv[optind], fa) < 0 ||
	    open_input(&b, argv[optind + 1], fb) < 0)
		goto out;

	if (a.size != b.size) {
		if (strict) {
			if (!quiet)
				puts("Strict mode: Image size mismatch!");
			status = EXIT_DIFFERENT;
			goto out;
		}
		if (!quiet)
			puts("Warning: Image size mismatch!");
	}
	common = a.size < b.size ? a.size : b.size;
	progress_init(&prog, show_progress && !quiet,
		      a.size > b.size ? a.size : b.size);
	if (strict) /* the sizes are the same */
		ret = compare_strict(&a, &b, common, &prog, &where);
	else
		ret = compare_range(&a, &b, 0, common, &prog, &where);
	/* Past the shorter disk the longer must read as zeros. */
	if (ret == 0 && a.size != b.size)
		ret = compare_range(a.size > b.size ? &a : &b, NULL, common,
				    a.size > b.size ? a.size : b.size, &prog,
				    &where);
	progress_finish(&prog, ret == 0);
	if (ret < 0)
		goto out;
	status = ret ? EXIT_DIFFERENT : 0;
	if (quiet)
		goto out;
	if (ret == 2)
		printf("Strict mode: Offset %" PRIu64 " block status "
		       "mismatch!\n", where);
	else if (ret == 1)
		printf("Content mismatch at offset %" PRIu64 "!\n", where);
	else
		puts("Images are identical.");
out:
	close_input(&a);
	close_input(&b);
	return status;
}
