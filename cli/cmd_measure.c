/* vdi measure: the file size a convert would need, in qemu-img measure's
 * shape ("required size", "fully allocated size").  For VDI output:
 * the header and block map areas (each starting on 1 MiB, as vdi_create
 * lays them out), then one block for every block of the disk that holds
 * a byte that is not zero (vdi convert leaves the others unallocated);
 * fully allocated, every block.  For raw output both are the disk size,
 * as qemu-img says. */
#include <getopt.h>
#include <inttypes.h>
#include <string.h>

#include "cli.h"

enum { OPT_OUTPUT = 256, OPT_SIZE };

static void help(void)
{
	fputs("Usage: vdi measure [--output=human|json] [-O raw|vdi] [-o OPTIONS]...\n"
	      "                   [-f raw|vdi] [-p] FILE\n"
	      "       vdi measure [--output=human|json] [-O raw|vdi] [-o OPTIONS]...\n"
	      "                   --size SIZE\n"
	      "\n"
	      "Print the size of the file that 'vdi convert -O FMT FILE' would\n"
	      "write (required size), and its size with every block allocated\n"
	      "(fully allocated size), as qemu-img measure does.  FILE is a raw\n"
	      "file or a VDI image (a differencing image is read through its\n"
	      "parents); it is read whole, to find the blocks that hold data.\n"
	      "With --size, for an empty disk of SIZE bytes.\n"
	      "\n"
	      "  -O FMT         the output format: raw (default) or vdi\n"
	      "  -o OPTIONS     VDI creation options, as 'vdi create' takes them\n"
	      "                 (block_size, static)\n"
	      "  -f FMT         the format of FILE: raw or vdi (default: probed)\n"
	      "  --size=SIZE    measure an empty disk of SIZE bytes\n"
	      "  --output=FMT   human (default) or json\n"
	      "  -p             show a progress bar on standard error\n"
	      "  -h, --help     show this help\n", stdout);
}

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Blocks of `bs` bytes of the disk of `in` holding a byte that is not
 * zero.  -1 after a message. */
static int64_t data_blocks(struct input *in, uint32_t bs,
			   struct progress *prog)
{
	uint64_t off = 0, len, blk, last = UINT64_MAX;
	int64_t n = 0;
	bool data;

	while (off < in->size) {
		uint64_t max = in->size - off < INPUT_STEP ? in->size - off
							   : INPUT_STEP;

		/* Stay within one output block per step. */
		if (max > bs - off % bs)
			max = bs - off % bs;
		if (input_status(in, off, max, &len, &data) < 0)
			return -1;
		blk = off / bs;
		if (data && blk != last) {
			if (input_read(in, off, (size_t)len) < 0)
				return -1;
			if (!all_zero(in->buf, (size_t)len)) {
				n++;
				last = blk;
			}
		}
		off += len;
		progress_update(prog, off);
	}
	return n;
}

int cmd_measure(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum output_format fmt = OUTPUT_HUMAN;
	struct image_opts io = { 0 };
	struct input in = { .fd = -1 };
	struct progress prog;
	bool to_vdi = false, have_size = false, show_progress = false;
	uint64_t size = 0, blocks, bmap, head, required, full;
	uint32_t bs;
	int64_t used = 0;
	int c, ret, in_fmt = -1, status = EXIT_FAIL;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:O:o:ph", longopts,
				NULL)) != -1) {
		switch (c) {
		case OPT_OUTPUT:
			if (parse_output("measure", optarg, &fmt) < 0)
				goto out;
			break;
		case OPT_SIZE:
			if (parse_size("size", optarg, &size) < 0)
				goto out;
			have_size = true;
			break;
		case 'f':
		case 'O':
			if (strcmp(optarg, "raw") && strcmp(optarg, "vdi")) {
				die_msg("measure: unknown format '%s': use raw "
					"or vdi", optarg);
				goto out;
			}
			if (c == 'f')
				in_fmt = !strcmp(optarg, "vdi");
			else
				to_vdi = !strcmp(optarg, "vdi");
			break;
		case 'o':
			ret = image_opts_parse(&io, "measure", optarg);
			if (ret) {
				status = ret > 0 ? 0 : EXIT_FAIL;
				goto out;
			}
			break;
		case 'p':
			show_progress = true;
			break;
		case 'h':
			help();
			status = 0;
			goto out;
		default:
			option_error("measure", c, argv);
			goto out;
		}
	}
	if (argc - optind != (have_size ? 0 : 1)) {
		usage_error("measure", have_size
			    ? "--size takes no FILE"
			    : "expected FILE (or --size SIZE)");
		goto out;
	}
	if (io.any && !to_vdi) {
		die_msg("measure: -o options are for VDI output; add -O vdi");
		goto out;
	}
	if (!have_size) {
		if (open_input(&in, argv[optind], in_fmt) < 0)
			goto out;
		size = in.size;
	}
	size = (size + 511) & ~(uint64_t)511;
	if (!to_vdi) {
		required = full = size;
	} else {
		bs = io.block_size ? io.block_size : VDI_DEFAULT_BLOCK_SIZE;
		blocks = (size + bs - 1) / bs;
		bmap = (blocks * 4 + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
		head = (1u << 20) + bmap;
		full = head + blocks * bs;
		if (!have_size && !io.is_static) {
			progress_init(&prog, show_progress, in.size);
			used = data_blocks(&in, bs, &prog);
			progress_finish(&prog, used >= 0);
			if (used < 0)
				goto out;
		}
		required = io.is_static ? full : head + (uint64_t)used * bs;
	}
	if (fmt == OUTPUT_JSON)
		printf("{\n    \"required\": %" PRIu64 ",\n"
		       "    \"fully-allocated\": %" PRIu64 "\n}\n", required,
		       full);
	else
		printf("required size: %" PRIu64 "\n"
		       "fully allocated size: %" PRIu64 "\n", required, full);
	status = 0;
out:
	close_input(&in);
	image_opts_free(&io);
	return status;
}
