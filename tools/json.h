/* SPDX-License-Identifier: MIT */
/*
 * json.h - a small streaming JSON writer for the command's --json output.
 */
#ifndef IOVM_TOOLS_JSON_H
#define IOVM_TOOLS_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct json {
	FILE *f;
	int depth;
	bool first[32]; /* per level: nothing written at it yet */
};

void json_init(struct json *j, FILE *f);
void json_begin(struct json *j, const char *key, char open);
void json_end(struct json *j, char close);
void json_str(struct json *j, const char *key, const char *val);
void json_u64(struct json *j, const char *key, uint64_t val);
void json_i64(struct json *j, const char *key, int64_t val);
void json_double(struct json *j, const char *key, double val);
void json_bool(struct json *j, const char *key, bool val);
void json_null(struct json *j, const char *key);

#endif /* IOVM_TOOLS_JSON_H */
