/* vdi zero: make a range of the disk read as zeros with vdi_write_zeroes().
 * The arguments, checks and report are those of vdi discard
 * (range_command() in cmd_discard.c). */
#include "cli.h"

static void help(void)
{
	fputs("Usage: vdi zero [-p] [-q] [--output=human|json] [-b PARENT]...\n"
	      "                FILE OFFSET LENGTH\n"
	      "       vdi zero [-p] [-q] [--output=human|json] [-b PARENT]...\n"
	      "                --all FILE\n"
	      "\n"
	      "Make LENGTH bytes of the virtual disk of the VDI image FILE,\n"
	      "starting at OFFSET, read as zeros.  In a dynamic image the blocks\n"
	      "that lie wholly inside the range become zero blocks and take no\n"
	      "space in the file; the parts of other blocks that hold data get\n"
	      "zeros written; blocks without data need nothing.  In a static\n"
	      "image zeros are written.  OFFSET and LENGTH take a K, M, G, T, P\n"
	      "or E suffix (powers of 1024); the range must lie within the disk.\n"
	      "\n"
	      "  --all        the whole disk (no OFFSET and LENGTH)\n"
	      "  -b, --parent=PARENT\n"
	      "               the parent of the differencing image FILE\n"
	      "               (default: looked for next to FILE)\n"
	      "  -p           show a progress bar on standard error\n"
	      "  --output=FMT report as human (default) or json\n"
	      "  -f vdi       accepted for qemu-img compatibility\n"
	      "  -q           quiet: print nothing on success\n"
	      "  -h, --help   show this help\n", stdout);
}

int cmd_zero(int argc, char **argv)
{
	static const struct range_command cmd = {
		.name = "zero",
		.done = "Zeroed",
		.help = help,
		.run = vdi_write_zeroes,
	};

	return range_command(argc, argv, &cmd);
}
