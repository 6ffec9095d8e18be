/* SPDX-License-Identifier: MIT */
/*
 * output.h - how the iovm command and iovm-bench end: what they printed
 * must have reached stdout, or the exit status says it did not.
 */
#ifndef IOVM_TOOLS_OUTPUT_H
#define IOVM_TOOLS_OUTPUT_H

/*
 * output_finish() - flush and close stdout; @status when all of it was
 * written, else 1 (or @status if it already says a failure), with why on
 * stderr under @prog's name. A full disk or a closed pipe (SIGPIPE
 * ignored) shows at the flush, or in the error flag of an earlier write.
 */
int output_finish(const char *prog, int status);

#endif /* IOVM_TOOLS_OUTPUT_H */
