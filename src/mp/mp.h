/* SPDX-License-Identifier: MIT */
/*
 * mp.h - the multi-process layer, as the context sees it: iovm_share() is
 * public and lives here; attaching opens a context first, which only
 * src/ctx can do, so the context calls in.
 */
#ifndef IOVM_MP_MP_H
#define IOVM_MP_MP_H

struct iovm_ctx;

struct iovm_share_params;

/* mp_share() - iovm_share() without err_enter(): for the share= option of iovm_open(). */
int mp_share(struct iovm_ctx *ctx, const char *name, const struct iovm_share_params *params);

/* mp_name_check() - -EINVAL, with its detail, for a name no share may have. */
int mp_name_check(const char *name);

/*
 * mp_attach() - make the fresh context @ctx a process of the share @name.
 * Thread safety: @ctx is not in use yet.
 */
int mp_attach(struct iovm_ctx *ctx, const char *name);

/*
 * mp_close() - leave the share (owner: stop serving attachments first);
 * before the layers under it go. A no-op for a context that never shared.
 */
void mp_close(struct iovm_ctx *ctx);

#endif /* IOVM_MP_MP_H */
