/*
 * config_value.h: the scalar-level helpers of the configuration module.
 *
 * config.c turns YAML into a struct config; these helpers do the parts that
 * need no table: ${VAR} expansion and the canonical text of durations,
 * sizes and times (used by config_print and by error messages, so that a
 * bound is shown the way the operator would write it). The parsers of
 * durations, sizes and times are public and declared in config.h.
 */
#ifndef SS_CONFIG_VALUE_H
#define SS_CONFIG_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* The longest environment variable name accepted in ${NAME}. */
#define CONFIG_VAR_MAX 128

/* The largest scalar after expansion (a secret file is capped separately). */
#define CONFIG_MAX_VALUE_BYTES (64 * 1024)

/* What config_value_expand learned about a scalar. */
struct config_expand {
  unsigned refs;                 /* ${NAME} references found */
  int whole_unset;               /* the scalar is exactly one reference whose
                                    variable is unset or empty */
  char var[CONFIG_VAR_MAX + 1];  /* that variable's name, for hints */
};

/*
 * Expands the NUL-terminated scalar s (borrowed) into out, which is reset
 * first and must have been initialized with buf_init (the caller owns and
 * frees it). "${NAME}" is replaced by the environment variable NAME (NAME:
 * a letter or '_', then letters, digits or '_'); "$${" stands for a
 * literal "${"; any other '$' is kept.
 *
 * When s is exactly one reference whose variable is unset or empty, returns
 * 0 with info->whole_unset set and out empty: the caller treats the key as
 * not set. Otherwise an unset variable, an unterminated or malformed
 * reference is ERR_PARSE with a message in why (which names the variable
 * but never shows the scalar, which may be a secret). ERR_TOOBIG when the
 * result exceeds CONFIG_MAX_VALUE_BYTES, ERR_NOMEM.
 */
int config_value_expand(const char *s, struct buf *out,
                        struct config_expand *info, char *why, size_t whycap);

/*
 * Write the canonical text of a value into out (cap bytes, always
 * NUL-terminated): durations in their largest exact unit ("30s", "1500ms",
 * "1h"), sizes in their largest exact binary unit or as plain bytes
 * ("512MiB", "1000000"), times as RFC 3339 UTC ("2026-11-30T00:07:03Z").
 * Each result parses back to the same value.
 */
void config_value_format_duration(uint64_t ms, char *out, size_t cap);
void config_value_format_size(uint64_t bytes, char *out, size_t cap);
void config_value_format_time(int64_t unix_seconds, char *out, size_t cap);

#endif
