/*
 * transform.h: a Spectra Detect report in, Log Analytics records out.
 *
 * This is the pure core of the pipeline (SPEC section 2): bytes in, records
 * out, no globals, no I/O beyond the caller's source, safe to run on several
 * threads at once (one transform per thread; nothing is shared).
 *
 * It streams. A report is read through a re-readable source in two passes:
 * the first validates the whole document (JSON grammar, UTF-8, nesting
 * depth) and collects the task-level keys of every task object together
 * with where its tc_report array starts; the second reads again and emits
 * one record per tc_report entry. Real reports put tc_report before
 * task_id/submitted/processed, which is why one forward pass cannot finish a
 * record. Because the first pass validates everything, a blob yields either
 * all of its records or none: bad input is reported before the first emit.
 * When a report's records are small enough to hold (a few megabytes, which
 * covers typical reports), the first pass also keeps each entry's part of
 * its record, and the records are emitted from memory once the document
 * has checked out: one pass, same records.
 *
 * Memory is bounded by configuration, not by the report: dynamic values are
 * copied compactly while they are scanned and shrunk on the fly to
 * max_field_bytes, so a record holds at most 17 fields of max_field_bytes.
 * No document tree is ever built.
 *
 * Record layout: a compact JSON object whose first member is always
 * TimeGenerated with a fixed-width value, so that the request builder can
 * rewrite the time in place (SPEC section 3, the 47 h/23 h rule):
 *
 *   {"TimeGenerated":"2026-11-30T00:07:03Z","task_id":"15794",...}
 *    ^ offset 1         ^ TRANSFORM_TG_OFFSET, TRANSFORM_TG_LEN bytes
 *
 * The other members follow in the table's column order (SPEC section 2).
 *
 * Mapping details, where SPEC section 2 leaves room:
 *   - int columns take JSON integers, finite reals truncated toward zero
 *     (exactly, on the decimal digits: 2147483647.9999999999 gives
 *     2147483647, not a rounded double), and strings holding an optional
 *     sign and decimal digits only (no whitespace, no '.'). A value outside
 *     the signed 32-bit range of the Log Analytics int type is omitted.
 *   - process_duration: the task's value when it converts (and fits);
 *     else processed - submitted when both convert and processed >=
 *     submitted.
 *   - index: the entry's value; its 0-based position in tc_report when it
 *     is absent or null; omitted, like any int column, when it is present
 *     but does not convert.
 *   - string columns take strings; a number becomes its JSON text as
 *     written (1.5e3 gives "1.5e3"); true and false become "true" and
 *     "false"; null, objects and arrays are omitted.
 *   - dynamic columns take any value but null, copied compactly (no
 *     insignificant whitespace) with strings and numbers byte for byte as
 *     written (escapes are kept, not re-encoded).
 *   - TimeGenerated is the first of processed, submitted (as converted for
 *     int columns, but not limited to 32 bits), opts->last_modified, that
 *     lies in 1970-01-01T00:00:00Z..9999-12-31T23:59:59Z, else opts->now.
 *   - A key that occurs twice in an object: the last one wins, as in most
 *     JSON parsers (this holds for tc_report itself too). Keys are compared
 *     after unescaping ("\u0069ndex" is index).
 *   - A UTF-8 byte order mark at the start is ignored. NDJSON task objects
 *     may be separated by any whitespace (or none).
 *   - Shrinking (max_field_bytes) follows the rule in jscan.h. Each shrunk
 *     field counts in transform_record.shrunk of every record holding it (a
 *     shrunk task-level column counts once per record of its task), and
 *     transform_stats.shrunk is the sum over the records.
 *
 * Memory: a 64 KiB read window, one buffer of max_field_bytes per column,
 * the record being built, and a table of the task-level columns of at most
 * 8 MiB. A blob whose task-level columns need more (a large NDJSON blob)
 * is emitted in groups of tasks, with one more pass over the input per
 * group.
 *
 * Errors: ERR_PARSE messages name the problem ("unexpected end of input",
 * "invalid UTF-8 in string", "lone surrogate in \u escape", "nesting too
 * deep", "no tc_report array", "tc_report entry is not an object", ...)
 * and the first offending byte. A later pass that reads different bytes
 * than the first (a file rewritten in between) fails with ERR_CHANGED.
 */
#ifndef SS_TRANSFORM_H
#define SS_TRANSFORM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TRANSFORM_TG_OFFSET 18 /* strlen("{\"TimeGenerated\":\"") */
#define TRANSFORM_TG_LEN 20    /* strlen("2026-11-30T00:07:03Z") */
#define TRANSFORM_MAX_DEPTH 256 /* deeper nesting is bad input */
#define TRANSFORM_DEFAULT_MAX_FIELD 65536

/*
 * The slack a source's in-place view (transform_source.data) must have: the
 * scanner's SIMD loops load up to this many bytes from the end on.
 */
#define TRANSFORM_PAD 64

/*
 * A re-readable byte source. read() fills up to n bytes and returns how many
 * (0 at the end) or a negative ERR_* code; rewind() starts again from the
 * first byte. Sources are provided by source.h (memory, file, gzip).
 *
 * data, when not NULL, is the whole input already in memory, scanned in
 * place instead of being copied through read() into the scanner's window:
 * len bytes of input, then TRANSFORM_PAD bytes that are readable and zero.
 * It is borrowed and must stay unchanged while a transform uses the source.
 * read() and rewind() must still work (they serve the same bytes).
 */
struct transform_source {
  ssize_t (*read)(void *ud, void *buf, size_t n);
  int (*rewind)(void *ud);
  void *ud;
  const unsigned char *data;
  size_t len;
};

struct transform_opts {
  size_t max_field_bytes;   /* 0 means TRANSFORM_DEFAULT_MAX_FIELD; more
                               than 16 MiB is ERR_INVAL */
  int64_t last_modified;    /* blob Last-Modified, Unix s; < 0 if unknown */
  int64_t now;              /* the current time, Unix s (TimeGenerated's
                               last fallback; the caller supplies it so the
                               transform stays pure and testable) */
  uint64_t max_input_bytes; /* transform_buffer and transform_file: cap on
                               the (decompressed) bytes read, else
                               ERR_TOOBIG; 0 means no cap. transform_run
                               leaves caps to its source (source.h). */
  int two_pass;             /* non-zero: always read the input twice, even
                               when its records would fit the one-pass
                               budget (transform.c); for tests of the
                               second pass */
};

/*
 * One record, handed to the emit callback. Every pointer is borrowed and
 * valid only until the callback returns: copy what you keep.
 */
struct transform_record {
  const char *json;        /* the compact JSON object, not NUL-terminated */
  size_t len;
  int64_t time_generated;  /* Unix seconds of the TimeGenerated value */
  size_t task;             /* 0-based task object in the blob */
  size_t entry;            /* 0-based position in that task's tc_report */
  unsigned shrunk;         /* fields of this record shrunk to fit */
};

/*
 * Called once per record, in order. Returning non-zero stops the transform,
 * which then returns that value.
 */
typedef int (*transform_emit_cb)(void *ud, const struct transform_record *rec);

/* Where and why a report was rejected. */
struct transform_error {
  char text[200];   /* e.g. "invalid UTF-8 in string", "no tc_report array" */
  uint64_t offset;  /* byte offset in the (decompressed) input */
  uint64_t line;    /* 1-based */
  uint64_t column;  /* 1-based, in bytes */
};

struct transform_stats {
  uint64_t bytes;        /* bytes of (decompressed) JSON read by one pass */
  uint64_t tasks;
  uint64_t records;
  uint64_t shrunk;       /* fields shrunk to max_field_bytes */
};

/*
 * Transforms the report read from src, calling emit for every record.
 * Returns 0; ERR_PARSE for bad input (err says what and where; nothing was
 * emitted); a negative code from the source (ERR_TOOBIG past a source's
 * cap, ERR_PARSE for corrupt gzip, both with err filled in as for bad
 * input); ERR_CHANGED if the input changed between passes; or emit's
 * non-zero value. stats and err may be NULL. opts may be NULL (defaults,
 * with now = time(NULL)). src, opts and ud are borrowed.
 */
int transform_run(const struct transform_source *src,
                  const struct transform_opts *opts, transform_emit_cb emit,
                  void *ud, struct transform_stats *stats,
                  struct transform_error *err);

/*
 * Convenience: transforms a report held in memory, gzip-compressed or not
 * (detected by the magic bytes 1f 8b). data is borrowed.
 */
int transform_buffer(const void *data, size_t len,
                     const struct transform_opts *opts, transform_emit_cb emit,
                     void *ud, struct transform_stats *stats,
                     struct transform_error *err);

/*
 * Convenience: transforms the report in the file at path (gzip detected by
 * magic bytes; the file is streamed, never read whole into memory).
 * Returns ERR_NOTFOUND or ERR_IO for a file that cannot be read.
 */
int transform_file(const char *path, const struct transform_opts *opts,
                   transform_emit_cb emit, void *ud,
                   struct transform_stats *stats, struct transform_error *err);

/* The `transform` command's core, transform_cli_run, lives beside it. */
#include "transform_cli.h"

#endif
