/* SPDX-License-Identifier: MIT */
/*
 * replay.c - run a fuzz target over its corpus without libFuzzer, so that
 * every build of `make check` (gcc, ASan+UBSan, TSan, clang) replays what
 * the fuzzers found: each file of each directory (or each file) given is
 * one input to LLVMFuzzerTestOneInput(). A directory without inputs fails:
 * a replay of nothing would pass vacuously.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f)
		return -1;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		fclose(f);
		return -1;
	}
	/* An input of its own size exactly: an overread is ASan's to find. */
	buf = malloc(n ? (size_t)n : 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long inputs = 0;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		struct dirent *e;
		DIR *d;

		if (stat(argv[i], &st)) {
			fprintf(stderr, "replay: %s: cannot stat\n", argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (replay_file(argv[i])) {
				fprintf(stderr, "replay: %s: cannot read\n", argv[i]);
				return 1;
			}
			inputs++;
			continue;
		}
		d = opendir(argv[i]);
		if (!d)
			return 1;
		while ((e = readdir(d))) {
			char path[4096];

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			if (replay_file(path)) {
				fprintf(stderr, "replay: %s: cannot read\n", path);
				closedir(d);
				return 1;
			}
			inputs++;
		}
		closedir(d);
	}
	if (!inputs) {
		fprintf(stderr, "replay: no input: a replay of nothing proves nothing\n");
		return 1;
	}
	printf("# replayed %lu inputs\n", inputs);
	return 0;
}
