/* Runs the fuzz entry point once on each file named on the command line
 * (or in a directory named there), without libFuzzer: the seed corpus as
 * a regression test of the normal suite, under the sanitizers of the build.
 *
 * Each file is also judged on its own, by its name.  A seed named bad-*
 * (one thing wrong, see make-corpus.sh), found-* (an input the fuzzer
 * found) or `empty` must be rejected: vdi_open fails (it is opened as a
 * user would, looking for a differencing image's parent), or vdi_check
 * finds a problem (corruption, a block map cut by the end of the file, leaks, a header count that differs from
 * the map), or the file goes on past the end vdi_check gives the image.
 * Any other seed must be accepted.  A block that ends past the end of the
 * file is not counted either way: make-corpus.sh cuts the good seeds, and
 * the bad ones made from them, short inside their last block to keep them
 * small.  A seed judged otherwise than its name says fails the run. */
#include <dirent.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vdi.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The judgement of the image at `p` (see above): 1 rejected, 0 accepted;
 * `why` says what was seen. */
static int rejected(const char *p, char *why, size_t len)
{
	struct vdi_check_result cr;
	struct vdi_image *img;
	struct vdi_info info;
	struct stat st;
	int ret;

	ret = vdi_open(p, VDI_OPEN_RDONLY, &img);
	if (ret < 0) {
		snprintf(why, len, "%s", vdi_errmsg());
		return 1;
	}
	vdi_get_info(img, &info);
	ret = vdi_check(img, &cr, NULL, NULL);
	vdi_close(img);
	if (ret < 0) {
		snprintf(why, len, "%s", vdi_errmsg());
		return 1;
	}
	if (stat(p, &st) < 0)
		st.st_size = 0;
	snprintf(why, len, "vdi_check: %llu corruptions (%u blocks past the "
		 "end of the file), %llu leaks, allocated count %s, image end "
		 "%llu, file %lld bytes", (unsigned long long)cr.corruptions,
		 cr.past_eof, (unsigned long long)cr.leaks,
		 cr.allocated_mismatch ? "differs" : "agrees",
		 (unsigned long long)cr.image_end_offset, (long long)st.st_size);
	/* The block map must be whole: a file cut before the data area is
	 * rejected even where vdi_check counts the map's cut only as blocks
	 * past the end. */
	return (uint64_t)st.st_size < info.offset_data ||
	       cr.corruptions > cr.past_eof + cr.short_blocks || cr.map_missing || cr.leaks ||
	       cr.allocated_mismatch ||
	       (uint64_t)st.st_size > cr.image_end_offset;
}

/* 0 when the seed is judged as its name says. */
static int judge(const char *p)
{
	char copy[4096], why[512];
	const char *name;
	int bad, got;

	snprintf(copy, sizeof(copy), "%s", p);
	name = basename(copy);
	bad = !strncmp(name, "bad-", 4) || !strncmp(name, "found-", 6) ||
	      !strcmp(name, "empty");
	got = rejected(p, why, sizeof(why));
	printf("%s %s: %s (%s)\n", got == bad ? "ok" : "WRONG", name,
	       got ? "rejected" : "accepted", why);
	return got != bad;
}

static int run_file(const char *p)
{
	FILE *f = fopen(p, "rb");
	unsigned char *buf;
	long n;

	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET)) {
		fprintf(stderr, "fuzz_replay: cannot read %s\n", p);
		return 1;
	}
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "fuzz_replay: cannot read %s\n", p);
		return 1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return judge(p);
}

int main(int argc, char **argv)
{
	int i, files = 0, bad = 0;

	for (i = 1; i < argc; i++) {
		struct stat st;
		struct dirent **ents;
		int n, k;

		if (stat(argv[i], &st) == 0 && !S_ISDIR(st.st_mode)) {
			bad |= run_file(argv[i]);
			files++;
			continue;
		}
		n = scandir(argv[i], &ents, NULL, alphasort);
		if (n < 0) {
			fprintf(stderr, "fuzz_replay: cannot list %s\n", argv[i]);
			return 1;
		}
		for (k = 0; k < n; k++) {
			char p[4096];

			if (ents[k]->d_name[0] != '.') {
				snprintf(p, sizeof(p), "%s/%s", argv[i],
					 ents[k]->d_name);
				bad |= run_file(p);
				files++;
			}
			free(ents[k]);
		}
		free(ents);
	}
	printf("fuzz_replay: %d inputs\n", files);
	return bad || files == 0;
}
