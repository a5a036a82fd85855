/* Image creation options given with -o, in qemu-img's syntax:
 * key=value pairs separated by commas, a literal comma in a value written
 * as ",,".  Used by create and convert. */
#include <stdlib.h>
#include <string.h>

#include <uuid/uuid.h>

#include "cli.h"

void image_opts_help(FILE *f)
{
	fputs("Supported options:\n"
	      "  static[=<bool (on/off)>] - static (preallocated) image; "
	      "default off\n"
	      "                             (dynamic); 'static' alone means on\n"
	      "  block_size=<size>        - VDI block size, a power of two from "
	      "128K to 128M;\n"
	      "                             default 1M (cluster_size is an "
	      "alias)\n"
	      "  uuid=<uuid>              - creation UUID; default random\n"
	      "  description=<text>       - image description, at most 255 "
	      "bytes\n", f);
}

/* Split off the next item of a -o list into a fresh string, undoing the
 * ",," escapes.  Returns 1 with *out set, 0 at the end of the list, or -1
 * when out of memory. */
static int next_item(const char **pos, char **out)
{
	const char *p = *pos;
	char *q;

	if (!*p)
		return 0;
	*out = malloc(strlen(p) + 1);
	if (!*out)
		return -1;
	for (q = *out; *p; p++) {
		if (*p == ',') {
			if (p[1] != ',') {
				p++;
				break;
			}
			p++;
		}
		*q++ = *p;
	}
	*q = '\0';
	*pos = p;
	return 1;
}

static int set_option(struct image_opts *o, const char *cmd, const char *key,
		      const char *val)
{
	uint64_t size;

	/* Only a description may hold a comma: elsewhere one comes from
	 * ",," meant as a separator. */
	if (strchr(val, ',') && strcmp(key, "description")) {
		die_msg("%s: invalid value '%s' for option %s: ',,' stands for "
			"a comma inside a value; options are separated by one "
			"comma", cmd, val, key);
		return -1;
	}
	if (!strcmp(key, "static"))
		return parse_bool("option static", val, &o->is_static);
	if (!strcmp(key, "block_size") || !strcmp(key, "cluster_size")) {
		if (parse_size("block size", val, &size) < 0)
			return -1;
		if (size < VDI_MIN_BLOCK_SIZE || size > VDI_MAX_BLOCK_SIZE ||
		    (size & (size - 1))) {
			die_msg("%s: block size %s is not a power of two from "
				"128K to 128M", cmd, val);
			return -1;
		}
		o->block_size = (uint32_t)size;
		return 0;
	}
	if (!strcmp(key, "uuid")) {
		if (uuid_parse(val, o->uuid) < 0) {
			die_msg("%s: invalid uuid '%s': use the form "
				"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", cmd, val);
			return -1;
		}
		o->has_uuid = true;
		return 0;
	}
	if (!strcmp(key, "description")) {
		if (strlen(val) > 255) {
			die_msg("%s: description is %zu bytes long; at most 255 "
				"fit in a VDI header", cmd, strlen(val));
			return -1;
		}
		free(o->description);
		o->description = strdup(val);
		if (!o->description) {
			die_msg("out of memory");
			return -1;
		}
		return 0;
	}
	die_msg("%s: unknown option '%s'; 'vdi %s -o help' lists the options",
		cmd, key, cmd);
	return -1;
}

int opts_split(const char *cmd, const char *arg,
	       int (*fn)(void *opaque, const char *key, const char *val),
	       void *opaque)
{
	const char *pos = arg;
	char *item, *eq;
	size_t len, trailing = 0;
	int ret = 0, more;

	if (!*arg) {
		die_msg("%s: empty -o option; use -o key=value", cmd);
		return -1;
	}
	/* An odd run of commas at the end is a separator with nothing
	 * after it. */
	for (len = strlen(arg); len && arg[len - 1] == ','; len--)
		trailing++;
	if (trailing % 2) {
		die_msg("%s: stray comma at the end of '-o %s': options are "
			"separated by one comma; a comma inside a value is "
			"written ',,'", cmd, arg);
		return -1;
	}
	while (ret == 0 && (more = next_item(&pos, &item)) != 0) {
		if (more < 0) {
			die_msg("out of memory");
			return -1;
		}
		eq = strchr(item, '=');
		if (!*item) {
			die_msg("%s: empty option in '-o %s': options are "
				"separated by one comma; a comma inside a "
				"value is written ',,'", cmd, arg);
			ret = -1;
		} else {
			if (eq)
				*eq = '\0';
			ret = fn(opaque, item, eq ? eq + 1 : NULL);
		}
		free(item);
	}
	return ret;
}

struct image_opts_ctx {
	struct image_opts *o;
	const char *cmd;
};

static int image_opt(void *opaque, const char *key, const char *val)
{
	struct image_opts_ctx *ctx = opaque;

	if (!val && !strcmp(key, "static")) {
		/* A bare boolean means on, as in qemu-img. */
		ctx->o->is_static = true;
		return 0;
	}
	if (!val) {
		die_msg("%s: option '%s' has no value; use -o %s=VALUE, or, "
			"if it belongs to the value before it, write that "
			"comma as ',,'", ctx->cmd, key, key);
		return -1;
	}
	return set_option(ctx->o, ctx->cmd, key, val);
}

int image_opts_parse(struct image_opts *o, const char *cmd, const char *arg)
{
	struct image_opts_ctx ctx = { o, cmd };
	int ret;

	if (!strcmp(arg, "help") || !strcmp(arg, "?")) {
		image_opts_help(stdout);
		return 1;
	}
	ret = opts_split(cmd, arg, image_opt, &ctx);
	o->any = true;
	return ret;
}

void image_opts_free(struct image_opts *o)
{
	free(o->description);
	o->description = NULL;
}

void image_opts_to_create(const struct image_opts *o,
			  struct vdi_create_opts *c)
{
	memset(c, 0, sizeof(*c));
	c->type = o->is_static ? VDI_TYPE_STATIC : VDI_TYPE_DYNAMIC;
	c->block_size = o->block_size;
	c->description = o->description;
	c->uuid = o->has_uuid ? o->uuid : NULL;
	c->overwrite = 1;
}
