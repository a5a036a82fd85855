/* vdi check: consistency check with vdi_check(), and with -r a repair
 * with vdi_repair(), reported and exited the way qemu-img check does: 0
 * clean, 2 corruptions, 3 leaks only, 1 when the check could not be done.
 * After a repair the status is that of the image as repaired. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { OPT_OUTPUT = 256 };

enum {
	CHECK_CLEAN = 0,
	CHECK_FAILED = 1,
	CHECK_CORRUPT = 2,
	CHECK_LEAKS = 3,
};

static void help(void)
{
	fputs("Usage: vdi check [-p] [-q] [--output=human|json] [-r leaks|all]\n"
	      "                 [-b PARENT]... FILE\n"
	      "\n"
	      "Check the VDI image FILE for corruption (block map entries that\n"
	      "point outside the data area or past the end of the file, blocks\n"
	      "used twice, a wrong allocated-block count) and leaks (data\n"
	      "blocks no entry uses).  Without -r the image is opened read-only\n"
	      "and never changed.  A differencing image is checked alone: its\n"
	      "parent need not be there, unless named with -b.\n"
	      "\n"
	      "  -r leaks       repair: fix the allocated-block count, cut leaked\n"
	      "                 blocks off the end of the file\n"
	      "  -r all         also free entries past the end of the file and\n"
	      "                 all but the first user of a shared block, and\n"
	      "                 move blocks beyond the block count into range\n"
	      "  -p             with -r, show a progress bar of the repair on\n"
	      "                 standard error\n"
	      "  --output=FMT   human (default) or json\n"
	      "  -b, --parent=PARENT\n"
	      "                 also check that PARENT is the parent of the\n"
	      "                 differencing image FILE and matches it; once\n"
	      "                 per level (the parent, its parent...); with\n"
	      "                 -r the repair looks at FILE alone, and the\n"
	      "                 check after it at the chain\n"
	      "  -f vdi         accepted for qemu-img compatibility\n"
	      "  -q             quiet: print nothing (no progress bar either),\n"
	      "                 only set the exit status\n"
	      "  -h, --help     show this help\n"
	      "\n"
	      "Exit status: 0 no problems, 1 the check could not be done,\n"
	      "2 corruptions found, 3 leaks found and no corruption (with -r:\n"
	      "of the image as repaired).\n", stdout);
}

/* Lines of one kind kept for the JSON output. */
struct lines {
	char **v;
	size_t n, cap;
};

/* The lines the library reports.  With -r they come in three kinds, kept
 * apart so that nothing is counted twice: the problems the repair found
 * (and those it left), the repairs it made, the problems of the check
 * after it. */
struct problems {
	enum output_format fmt;
	bool quiet;
	bool rechecking;
	struct lines found, repairs, recheck;
	bool oom;
};

static void keep(struct problems *p, struct lines *l, const char *line)
{
	char *copy;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		char **v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			p->oom = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	copy = strdup(line);
	if (!copy) {
		p->oom = true;
		return;
	}
	l->v[l->n++] = copy;
}

static void report(void *opaque, const char *problem)
{
	struct problems *p = opaque;

	if (p->quiet)
		return;
	if (p->fmt == OUTPUT_HUMAN) {
		progress_break_line(); /* -p: the bar's line ends first */
		printf("%s\n", problem);
		return;
	}
	if (p->rechecking)
		keep(p, &p->recheck, problem);
	else if (!strncmp(problem, "repaired: ", 10))
		keep(p, &p->repairs, problem);
	else
		keep(p, &p->found, problem);
}

static void free_lines(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

static void print_lines(const char *name, const struct lines *l, bool last)
{
	printf("    \"%s\": [", name);
	for (size_t i = 0; i < l->n; i++) {
		fputs(i ? ",\n        " : "\n        ", stdout);
		json_string(stdout, l->v[i]);
	}
	fputs(l->n ? "\n    ]" : "]", stdout);
	fputs(last ? "\n" : ",\n", stdout);
}

static void print_json(const char *path, const struct vdi_check_result *r,
		       const struct vdi_info *in, const struct problems *p,
		       const struct vdi_repair_result *fix)
{
	fputs("{\n    \"filename\": ", stdout);
	json_string(stdout, path);
	printf(",\n    \"format\": \"vdi\",\n"
	       "    \"check-errors\": 0,\n"
	       "    \"corruptions\": %" PRIu64 ",\n"
	       "    \"leaks\": %" PRIu64 ",\n"
	       "    \"leaked-bytes\": %" PRIu64 ",\n"
	       "    \"image-end-offset\": %" PRIu64 ",\n"
	       "    \"total-clusters\": %" PRIu32 ",\n"
	       "    \"allocated-clusters\": %" PRIu32 ",\n"
	       "    \"data-alignment\": %" PRIu64 ",\n",
	       r->corruptions, r->leaks, r->leaked_bytes, r->image_end_offset,
	       in->blocks, r->blocks_mapped, data_alignment(in));
	if (fix) {
		/* The counts above are of the image as repaired; what the
		 * repair found and did is in fields of its own. */
		printf("    \"corruptions-found\": %" PRIu64 ",\n"
		       "    \"leaks-found\": %" PRIu64 ",\n"
		       "    \"leaks-fixed\": %" PRIu64 ",\n"
		       "    \"corruptions-fixed\": %" PRIu64 ",\n",
		       fix->before.corruptions, fix->before.leaks,
		       fix->leaks_fixed, fix->corruptions_fixed);
		print_lines("problems-found", &p->found, false);
		print_lines("repairs", &p->repairs, false);
		print_lines("problems", &p->recheck, true);
	} else {
		print_lines("problems", &p->found, true);
	}
	fputs("}\n", stdout);
}

static void print_human(const char *path, const struct vdi_check_result *r,
			const struct vdi_info *in)
{
	if (r->corruptions == 0 && r->leaks == 0)
		puts("No errors were found on the image.");
	if (r->corruptions)
		printf("\n%" PRIu64 " %s found on the image.\n"
		       "Data may be corrupted, or further writes to the image "
		       "may corrupt it.\n", r->corruptions,
		       r->corruptions == 1 ? "error was" : "errors were");
	if (r->leaks)
		printf("\n%" PRIu64 " leaked block%s (%" PRIu64 " bytes) %s "
		       "found on the image.\n"
		       "This means waste of disk space, but no harm to data.\n",
		       r->leaks, r->leaks == 1 ? "" : "s", r->leaked_bytes,
		       r->leaks == 1 ? "was" : "were");
	if (in->blocks)
		printf("%" PRIu32 "/%" PRIu32 " = %0.2f%% allocated blocks\n",
		       r->blocks_mapped, in->blocks,
		       100.0 * r->blocks_mapped / in->blocks);
	printf("Image end offset: %" PRIu64 "\n", r->image_end_offset);
	printf("Data area alignment: %" PRIu64 " bytes\n", data_alignment(in));
	print_alignment_hint(path, in);
}

int cmd_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "parent", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct problems probs = { .fmt = OUTPUT_HUMAN };
	struct parents parents = { 0 };
	struct vdi_image *img = NULL;
	struct vdi_check_result res;
	struct vdi_repair_result fix;
	struct vdi_info in;
	struct progress prog;
	const char *path;
	bool show_progress = false;
	unsigned repair = 0;
	int c, ret, status = CHECK_FAILED;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:b:pqr:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (add_parent("check", &parents, optarg) < 0)
				return CHECK_FAILED;
			break;
		case OPT_OUTPUT:
			if (parse_output("check", optarg, &probs.fmt) < 0)
				return CHECK_FAILED;
			break;
		case 'f':
			if (require_vdi_format("check", optarg) < 0)
				return CHECK_FAILED;
			break;
		case 'p':
			show_progress = true;
			break;
		case 'q':
			probs.quiet = true;
			break;
		case 'r':
			if (!strcmp(optarg, "leaks")) {
				repair = VDI_REPAIR_LEAKS;
			} else if (!strcmp(optarg, "all")) {
				repair = VDI_REPAIR_ALL;
			} else {
				usage_error("check", "-r takes 'leaks' or "
					    "'all'");
				return CHECK_FAILED;
			}
			break;
		case 'h':
			help();
			return 0;
		default:
			option_error("check", c, argv);
			return CHECK_FAILED;
		}
	}
	if (argc - optind != 1) {
		usage_error("check", "expected exactly one FILE");
		return CHECK_FAILED;
	}
	path = argv[optind];
	if (repair) {
		/* Problems and repairs are reported as they happen; then the
		 * image is checked again, as qemu-img check -r does. */
		progress_init(&prog, show_progress && !probs.quiet, 1);
		ret = vdi_repair_with_progress(path, repair, &fix, report,
					       &probs, progress_callback, &prog);
		progress_finish(&prog, ret >= 0);
		if (ret < 0) {
			lib_error(ret, "check: cannot repair %s", path);
			goto out;
		}
		/* A clean image: only the check's own words, as qemu-img. */
		if (!probs.quiet && probs.fmt == OUTPUT_HUMAN &&
		    (fix.leaks_fixed || fix.corruptions_fixed ||
		     fix.before.corruptions || fix.before.leaks))
			printf("The following inconsistencies were found and "
			       "repaired:\n\n"
			       "    %" PRIu64 " leaked block%s\n"
			       "    %" PRIu64 " corruption%s\n\n"
			       "Double checking the fixed image now...\n",
			       fix.leaks_fixed, fix.leaks_fixed == 1 ? "" : "s",
			       fix.corruptions_fixed,
			       fix.corruptions_fixed == 1 ? "" : "s");
	}
	probs.rechecking = repair != 0;
	/* The check needs nothing from the parents unless asked to. */
	ret = open_chain("check", path, &parents,
			 VDI_OPEN_RDONLY | (parents.n ? 0 : VDI_OPEN_NO_PARENT),
			 false, &img);
	if (ret < 0)
		goto out;
	ret = vdi_get_info(img, &in);
	if (ret < 0) {
		lib_error(ret, "check: %s", path);
		goto out;
	}
	memset(&res, 0, sizeof(res));
	ret = vdi_check(img, &res, report, &probs);
	if (ret < 0) {
		lib_error(ret, "check: %s: the check could not be completed",
			  path);
		goto out;
	}
	if (probs.oom) {
		die_msg("check: out of memory");
		goto out;
	}

	if (!probs.quiet) {
		if (probs.fmt == OUTPUT_JSON)
			print_json(path, &res, &in, &probs,
				   repair ? &fix : NULL);
		else
			print_human(path, &res, &in);
	}
	if (res.corruptions)
		status = CHECK_CORRUPT;
	else if (res.leaks)
		status = CHECK_LEAKS;
	else
		status = CHECK_CLEAN;
out:
	vdi_close(img);
	free_lines(&probs.found);
	free_lines(&probs.repairs);
	free_lines(&probs.recheck);
	return status;
}
