#include <stdio.h>
#include <stdlib.h>
#include <vdi.h>

int main(int argc, char **argv)
{
	static char buf[4096] = "x";
	struct vdi_image *img;

	if (argc != 3 || vdi_open(argv[1], 0, &img) < 0 ||
	    vdi_pwrite(img, buf, sizeof(buf), strtoull(argv[2], NULL, 0)) != sizeof(buf) ||
	    vdi_close(img) < 0) {
		fprintf(stderr, "%s\n", vdi_errmsg());
		return 1;
	}
	return 0;
}
