/*
 * transform_cli.h: the core of `spectra-sentinel transform` (SPEC 8).
 *
 * Prints the records of one report as NDJSON, exactly as the daemon would
 * send them (TimeGenerated as computed, not adjusted to the send time), so
 * that an operator can see what a blob becomes, and why a bad one is bad.
 */
#ifndef SS_TRANSFORM_CLI_H
#define SS_TRANSFORM_CLI_H

#include <stdint.h>
#include <stdio.h>

#define TRANSFORM_CLI_MAX_INPUT ((uint64_t)4 << 30) /* bytes, decompressed */

/*
 * Transforms the report in the file path_or_dash ("-": standard input,
 * spooled to an unlinked temporary file since the transform reads twice)
 * and writes one record per line to out. blob_name (borrowed; NULL: the
 * path, or "stdin") names the report in messages. TimeGenerated falls back
 * to the file's modification time, then to the current time.
 *
 * On bad input (invalid JSON, no tc_report, larger than
 * TRANSFORM_CLI_MAX_INPUT) nothing is written to out and err gets one line:
 *   spectra-sentinel: BLOB: bad input at line L column C (byte O): MESSAGE
 * Returns 0 on success, 4 on bad input, 1 on an I/O error (a file that
 * cannot be read, a failed write to out). out and err are borrowed.
 */
int transform_cli_run(const char *path_or_dash, const char *blob_name,
                      FILE *out, FILE *err);

#endif
