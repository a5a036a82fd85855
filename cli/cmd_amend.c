/* vdi amend: change an image's description, UUID or parent link with
 * vdi_amend(), the jobs of VBoxManage modifymedium --description,
 * internalcommands sethduuid and sethdparentuuid, in qemu-img amend's
 * -o form.  A change that breaks a chain (a new UUID for an image whose
 * children are next to it, a new link for an image whose parent opens)
 * needs --force. */
#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "cli.h"

enum { OPT_OUTPUT = 256, OPT_FORCE };

static void help(void)
{
	fputs("Usage: vdi amend [-q] [--force] [--output=human|json] "
	      "-o OPTIONS... FILE\n"
	      "\n"
	      "Change the header of the VDI image FILE in place; its data is not\n"
	      "touched and neither is its modification UUID.  FILE must not be\n"
	      "in use.\n"
	      "\n"
	      "  -o OPTIONS   comma-separated key=value options, may repeat; a\n"
	      "               comma inside a value is written ',,':\n"
	      "    description=TEXT   the description, at most 255 bytes\n"
	      "    uuid=UUID|random   the image's own UUID (sethduuid)\n"
	      "    parent-uuid=UUID   a differencing image's parent UUID\n"
	      "                       (sethdparentuuid)\n"
	      "    parent-modification-uuid=UUID\n"
	      "                       the parent state it was made from\n"
	      "  --force      change a UUID even though that breaks a chain:\n"
	      "               children next to FILE no longer find it, or\n"
	      "               FILE no longer finds its parent\n"
	      "  --output=FMT report as human (default) or json\n"
	      "  -q           quiet: print nothing on success\n"
	      "  -h, --help   show this help\n"
	      "\n"
	      "'vdi rebase -u -b PARENT FILE' links FILE to PARENT with both\n"
	      "parent UUIDs read from PARENT.\n", stdout);
}

struct amend {
	const char *cmd;
	char *description;
	bool has_uuid, has_parent, has_pmod;
	unsigned char uuid[16], parent[16], pmod[16];
};

static int parse_uuid(const char *key, const char *val, unsigned char *out,
		      bool random_ok)
{
	if (random_ok && !strcmp(val, "random")) {
		uuid_generate(out);
		return 0;
	}
	if (uuid_parse(val, out) < 0 || uuid_is_null(out)) {
		die_msg("amend: invalid %s '%s': use the form "
			"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx%s", key, val,
			random_ok ? " or random" : "");
		return -1;
	}
	return 0;
}

static int amend_opt(void *opaque, const char *key, const char *val)
{
	struct amend *a = opaque;

	if (!val) {
		die_msg("amend: option '%s' has no value; use -o %s=VALUE, "
			"or, if it belongs to the value before it, write that "
			"comma as ',,'", key, key);
		return -1;
	}
	if (!strcmp(key, "description")) {
		if (strlen(val) > 255) {
			die_msg("amend: description is %zu bytes long; at most "
				"255 fit in a VDI header", strlen(val));
			return -1;
		}
		free(a->description);
		a->description = strdup(val);
		return a->description ? 0 : -1;
	}
	if (!strcmp(key, "uuid")) {
		a->has_uuid = true;
		return parse_uuid(key, val, a->uuid, true);
	}
	if (!strcmp(key, "parent-uuid")) {
		a->has_parent = true;
		return parse_uuid(key, val, a->parent, false);
	}
	if (!strcmp(key, "parent-modification-uuid")) {
		a->has_pmod = true;
		return parse_uuid(key, val, a->pmod, false);
	}
	die_msg("amend: unknown option '%s': use description, uuid, "
		"parent-uuid or parent-modification-uuid", key);
	return -1;
}

/* The .vdi files next to `path` that link to the UUID `uuid`: their
 * names, comma-separated, in `out`.  Returns how many. */
static unsigned find_children(const char *path, const unsigned char *uuid,
			      char *out, size_t len)
{
	char *copy = strdup(path), *dir;
	struct dirent *de;
	unsigned n = 0;
	size_t used = 0;
	DIR *d;

	out[0] = '\0';
	if (!copy)
		return 0;
	dir = dirname(copy);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		size_t l = strlen(de->d_name);
		char file[4096];
		struct vdi_image *img;
		struct vdi_info in;

		if (l < 5 || strcmp(de->d_name + l - 4, ".vdi"))
			continue;
		snprintf(file, sizeof(file), "%s/%s", dir, de->d_name);
		if (vdi_open(file, VDI_OPEN_RDONLY | VDI_OPEN_NO_PARENT |
				   VDI_OPEN_NOLOCK, &img) < 0)
			continue;
		if (vdi_get_info(img, &in) == 0 && in.type == VDI_TYPE_DIFF &&
		    !memcmp(in.uuid_link, uuid, 16)) {
			n++;
			if (used < len)
				used += (size_t)snprintf(out + used, len - used,
							 "%s%s", n > 1 ? ", " : "",
							 file);
		}
		vdi_close(img);
	}
	if (d)
		closedir(d);
	free(copy);
	return n;
}

/* Would the changes break a chain?  -1 after the refusal (or on error),
 * 0 to go on (after warnings under --force). */
static int check_chain(const char *path, const struct amend *a, bool force)
{
	struct vdi_image *img;
	struct vdi_info in;
	char kids[2048];
	unsigned n;
	int ret = vdi_open(path, VDI_OPEN_RDONLY | VDI_OPEN_NO_PARENT |
				    VDI_OPEN_NOLOCK, &img);

	if (ret == 0)
		ret = vdi_get_info(img, &in);
	vdi_close(img);
	if (ret < 0) {
		lib_error(ret, "amend: cannot open %s", path);
		return -1;
	}
	if ((a->has_parent || a->has_pmod) && in.type != VDI_TYPE_DIFF) {
		die_msg("amend: %s is not a differencing image: it has no "
			"parent UUIDs", path);
		return -1;
	}
	if (a->has_uuid && memcmp(a->uuid, in.uuid_create, 16) &&
	    (n = find_children(path, in.uuid_create, kids, sizeof(kids)))) {
		if (!force) {
			die_msg("amend: %u %s next to %s (%s) link%s to its "
				"UUID and would no longer find it; use --force "
				"to change it anyway", n,
				n == 1 ? "child" : "children", path, kids,
				n == 1 ? "s" : "");
			return -1;
		}
		die_msg("amend: warning: %s no longer find%s its parent %s",
			kids, n == 1 ? "s" : "", path);
	}
	if ((a->has_parent && memcmp(a->parent, in.uuid_link, 16)) ||
	    (a->has_pmod && memcmp(a->pmod, in.uuid_parent_modify, 16))) {
		struct vdi_image *chain;

		if (vdi_open(path, VDI_OPEN_RDONLY | VDI_OPEN_NOLOCK,
			     &chain) == 0) {
			vdi_close(chain);
			if (!force) {
				die_msg("amend: %s opens with its parent; a new "
					"link breaks that; use --force, or 'vdi "
					"rebase -b NEWPARENT %s' to change the "
					"parent and keep the data", path, path);
				return -1;
			}
			die_msg("amend: warning: %s no longer reads from the "
				"parent it had", path);
		}
	}
	return 0;
}

int cmd_amend(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct amend a = { .cmd = "amend" };
	struct vdi_amend_opts ao;
	enum output_format fmt = OUTPUT_HUMAN;
	bool quiet = false, force = false, any = false;
	struct timespec t0;
	const char *path;
	char u[37];
	int c, ret, status = EXIT_FAIL;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":f:o:qh", longopts,
				NULL)) != -1) {
		switch (c) {
		case OPT_OUTPUT:
			if (parse_output("amend", optarg, &fmt) < 0)
				goto out;
			break;
		case OPT_FORCE:
			force = true;
			break;
		case 'f':
			if (require_vdi_format("amend", optarg) < 0)
				goto out;
			break;
		case 'o':
			if (opts_split("amend", optarg, amend_opt, &a) < 0)
				goto out;
			any = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			help();
			status = 0;
			goto out;
		default:
			option_error("amend", c, argv);
			goto out;
		}
	}
	if (!one_file_operand("amend", argc - optind))
		goto out;
	if (!any) {
		usage_error("amend", "nothing to change: give -o description=, "
			    "uuid=, parent-uuid= or parent-modification-uuid=");
		goto out;
	}
	path = argv[optind];
	if (check_chain(path, &a, force) < 0)
		goto out;

	memset(&ao, 0, sizeof(ao));
	ao.description = a.description;
	ao.uuid = a.has_uuid ? a.uuid : NULL;
	ao.parent_uuid = a.has_parent ? a.parent : NULL;
	ao.parent_modify_uuid = a.has_pmod ? a.pmod : NULL;
	timer_start(&t0);
	ret = vdi_amend(path, &ao);
	if (ret < 0) {
		lib_error(ret, "amend: cannot amend %s", path);
		goto out;
	}
	status = 0;
	if (quiet)
		goto out;
	if (fmt == OUTPUT_HUMAN) {
		puts("Image amended.");
		goto out;
	}
	fputs("{\n    \"filename\": ", stdout);
	json_string(stdout, path);
	if (a.description) {
		fputs(",\n    \"description\": ", stdout);
		json_string(stdout, a.description);
	}
	if (a.has_uuid) {
		uuid_unparse_lower(a.uuid, u);
		printf(",\n    \"uuid\": \"%s\"", u);
	}
	if (a.has_parent) {
		uuid_unparse_lower(a.parent, u);
		printf(",\n    \"parent-uuid\": \"%s\"", u);
	}
	if (a.has_pmod) {
		uuid_unparse_lower(a.pmod, u);
		printf(",\n    \"parent-modification-uuid\": \"%s\"", u);
	}
	printf(",\n    \"seconds\": %.6f\n}\n", timer_seconds(&t0));
out:
	free(a.description);
	return status;
}
