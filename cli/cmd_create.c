/* vdi create: make a new dynamic or static image with vdi_create(), or
 * with -b a differencing image of a parent (a VirtualBox snapshot). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

enum { OPT_FORCE = 256, OPT_OUTPUT };

static void help(void)
{
	fputs("Usage: vdi create [-q] [--force] [--output=human|json] "
	      "[-o OPTIONS]...\n"
	      "                  FILE SIZE\n"
	      "       vdi create [-q] [--force] [--output=human|json] "
	      "[-o OPTIONS]...\n"
	      "                  -b PARENT [-F vdi] FILE [SIZE]\n"
	      "\n"
	      "Create the VDI image FILE holding a disk of SIZE bytes (rounded\n"
	      "up to 512).  SIZE takes a K, M, G, T, P or E suffix (powers of\n"
	      "1024).  An existing FILE is replaced only with --force, and\n"
	      "never when you may not write it or another process has it open\n"
	      "(QEMU's or libvdi's locks).\n"
	      "\n"
	      "With -b, FILE is a differencing image (a VirtualBox snapshot) of\n"
	      "the VDI image PARENT: it starts empty and reads as PARENT does;\n"
	      "writes go to FILE only.  It has PARENT's size (SIZE, if given,\n"
	      "must be that size) and block size, and links to PARENT by its\n"
	      "UUIDs, not by name: it refuses to open once PARENT has changed.\n"
	      "\n"
	      "  -o OPTIONS   comma-separated key=value options, may repeat\n"
	      "               (-o help lists them); a comma inside a value is\n"
	      "               written ',,'\n"
	      "  -b, --parent=PARENT\n"
	      "               make a differencing image of PARENT\n"
	      "  -F vdi       the format of PARENT (only vdi)\n"
	      "  --force      replace an existing FILE\n"
	      "  -f vdi       accepted for qemu-img compatibility\n"
	      "  --output=FMT human (default): a 'Formatting' line first, as\n"
	      "               qemu-img; json: what was made, afterwards\n"
	      "  -q           quiet: print nothing on success\n"
	      "  -h, --help   show this help\n"
	      "\n", stdout);
	image_opts_help(stdout);
}

/* The parent's size and block size, for the "Formatting" line.  0, or -1
 * after the library's message. */
static int parent_geometry(const char *parent, uint64_t *size, uint32_t *bs)
{
	struct vdi_image *img;
	struct vdi_info info;
	int ret = vdi_open(parent, VDI_OPEN_RDONLY | VDI_OPEN_NO_PARENT, &img);

	if (ret == 0)
		ret = vdi_get_info(img, &info);
	if (ret < 0) {
		lib_error(ret, "create: cannot open the parent %s", parent);
		vdi_close(img);
		return -1;
	}
	*size = info.disk_size;
	*bs = info.block_size;
	vdi_close(img);
	return 0;
}

/* vdi_create() writes the new image under a temporary name and renames it
 * over FILE: were FILE the parent, or an image below it, the new image's
 * chain would be gone. */
static int check_not_in_chain(const char *path, const char *parent)
{
	struct vdi_image *img;
	const char *member;
	int ret = 0;

	if (same_file(path, parent)) {
		die_msg("create: %s is the parent %s itself; give the new "
			"image another name", path, parent);
		return -1;
	}
	/* Without the whole chain, vdi_create() still needs the parent
	 * alone, and says what is wrong with it. */
	if (vdi_open_chain(parent, VDI_OPEN_RDONLY | VDI_OPEN_NOLOCK, NULL, 0,
			   &img) < 0)
		return 0;
	member = chain_member(img, path);
	if (member) {
		die_msg("create: %s is %s, an image of the chain of the parent "
			"%s; give the new image another name", path, member,
			parent);
		ret = -1;
	}
	vdi_close(img);
	return ret;
}

static void print_json(const char *path, uint64_t size, uint32_t block_size,
		       bool is_static, const char *parent, double seconds)
{
	fputs("{\n    \"filename\": ", stdout);
	json_string(stdout, path);
	printf(",\n    \"format\": \"vdi\",\n"
	       "    \"virtual-size\": %" PRIu64 ",\n"
	       "    \"cluster-size\": %" PRIu32 ",\n"
	       "    \"static\": %s,\n", (size + 511) & ~(uint64_t)511,
	       block_size, is_static ? "true" : "false");
	if (parent) {
		fputs("    \"backing-filename\": ", stdout);
		json_string(stdout, parent);
		fputs(",\n    \"backing-filename-format\": \"vdi\",\n", stdout);
	}
	printf("    \"seconds\": %.6f\n}\n", seconds);
}

int cmd_create(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "parent", required_argument, NULL, 'b' },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct image_opts io = { 0 };
	struct vdi_create_opts co;
	struct dest d = { .lock_fd = -1 };
	enum output_format fmt = OUTPUT_HUMAN;
	struct timespec t0;
	bool quiet = false, force = false, have_size;
	uint64_t size = 0;
	uint32_t block_size;
	const char *path, *parent = NULL;
	int c, ret, status = EXIT_FAIL;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:o:b:F:qh", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'b':
			parent = optarg;
			break;
		case 'F':
			if (parent_format("create", optarg) < 0)
				goto out;
			break;
		case 'f':
			if (strcmp(optarg, "vdi")) {
				die_msg("create: only the vdi format can be "
					"created, not '%s'", optarg);
				goto out;
			}
			break;
		case 'o':
			ret = image_opts_parse(&io, "create", optarg);
			if (ret) {
				status = ret > 0 ? 0 : EXIT_FAIL;
				goto out;
			}
			break;
		case OPT_FORCE:
			force = true;
			break;
		case OPT_OUTPUT:
			if (parse_output("create", optarg, &fmt) < 0)
				goto out;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			help();
			status = 0;
			goto out;
		default:
			option_error("create", c, argv);
			goto out;
		}
	}
	if (parent ? argc - optind < 1 || argc - optind > 2
		   : argc - optind != 2) {
		if (parent)
			usage_error("create", argc - optind < 1
				    ? "expected FILE"
				    : "too many arguments: expected FILE and "
				      "at most a SIZE");
		else
			usage_error("create", argc - optind < 2
				    ? "expected FILE and SIZE"
				    : "too many arguments: expected FILE and "
				      "SIZE");
		goto out;
	}
	path = argv[optind];
	have_size = argc - optind == 2;
	if (have_size && parse_size("size", argv[optind + 1], &size) < 0)
		goto out;
	if (parent && io.is_static) {
		die_msg("create: a differencing image cannot be static; drop "
			"-o static=on");
		goto out;
	}
	if (parent && check_not_in_chain(path, parent) < 0)
		goto out;
	if (dest_claim("create", path, force, &d) < 0)
		goto out;

	image_opts_to_create(&io, &co);
	co.parent = parent;
	co.overwrite = d.exists;
	block_size = io.block_size ? io.block_size : VDI_DEFAULT_BLOCK_SIZE;
	if (parent) {
		uint64_t psize;

		/* The library takes both from the parent (and refuses a
		 * -o block_size that differs). */
		if (parent_geometry(parent, &psize, &block_size) < 0)
			goto out;
		if (have_size && (size > UINT64_MAX - 511 ||
				  ((size + 511) & ~(uint64_t)511) != psize)) {
			die_msg("create: a differencing image has its parent's "
				"size (%" PRIu64 " bytes); leave SIZE out",
				psize);
			goto out;
		}
		size = psize;
		if (io.block_size)
			block_size = io.block_size;
	}
	if (!quiet && fmt == OUTPUT_HUMAN) {
		printf("Formatting '%s', fmt=vdi size=%llu static=%s "
		       "block_size=%u", path, (unsigned long long)size,
		       io.is_static ? "on" : "off", block_size);
		if (parent)
			printf(" backing_file=%s backing_fmt=vdi", parent);
		putchar('\n');
		fflush(stdout);
	}
	timer_start(&t0);
	ret = vdi_create(path, size, &co);
	if (ret < 0) {
		lib_error(ret, "create: cannot create %s", path);
		goto out;
	}
	/* The replaced file's permissions carry over (the new image holds
	 * no data yet). */
	if (d.exists && chmod(path, dest_mode(&d, 0)) < 0) {
		die_msg("create: %s: cannot set its permissions: %s", path,
			strerror(errno));
		goto out;
	}
	if (!quiet && fmt == OUTPUT_JSON)
		print_json(path, size, block_size, io.is_static, parent,
			   timer_seconds(&t0));
	status = 0;
out:
	dest_release(&d);
	image_opts_free(&io);
	return status;
}
