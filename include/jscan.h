/*
 * jscan.h: a streaming, validating JSON scanner that copies values
 * compactly and shrinks them to a size budget. Internal to the transform.
 *
 * The transform (transform.c) reads a report twice and never builds a
 * document tree. This scanner is what makes that cheap: it reads the input
 * through a small refillable window (64 KiB) from a re-readable source, and
 * offers the few operations the transform needs at each value: skip it,
 * copy it compactly into a field buffer, convert it to an integer, or read
 * it as an object key. Memory use does not depend on the input's size.
 *
 * Validation: with validation on (the first pass), every byte is checked
 * against RFC 8259: grammar, UTF-8 (overlongs, surrogates and code points
 * above U+10FFFF are rejected), \u escapes (a high surrogate must be followed
 * by a low one; a lone surrogate is rejected), no raw control characters in
 * strings, nesting depth at most TRANSFORM_MAX_DEPTH. With validation off
 * (later passes over input already validated) strings and numbers are only
 * delimited, not checked, which runs at close to copy speed; structural
 * surprises are still detected and reported as ERR_PARSE, never as
 * undefined behaviour, so a source that changes between passes is safe.
 *
 * Errors: functions return 0, a negative ERR_* code from the source, or
 * ERR_PARSE with a static message and the byte offset of the problem kept in
 * the scanner (jscan_error). A UTF-8 byte order mark at the start of the
 * input is not part of the grammar; the caller may skip it with
 * jscan_skip_bom.
 *
 * Shrinking (jscan_copy): a value whose compact serialization is larger than
 * the budget is replaced by the largest valid JSON that the following rule
 * allows, computed in one forward pass with bytes reserved for the closers
 * of every open container:
 *   - an array keeps its longest prefix of elements that fit whole, then the
 *     next element shrunk into the room left if anything meaningful of it
 *     fits (a string with at least one character, a container with at least
 *     one element or member), and nothing after that (elements are
 *     positional);
 *   - an object likewise keeps its longest prefix of members that fit
 *     whole, then the next member with its value shrunk into the room left,
 *     or dropped when nothing meaningful of the value fits (or its key does
 *     not fit: a key is never cut), and nothing after that;
 *   - a string is cut at a UTF-8 character boundary, never inside an escape
 *     sequence (a surrogate pair escape is one unit);
 *   - a number, true, false or null that does not fit is dropped.
 * At the top level a value that cannot keep anything meaningful becomes its
 * empty form ("", [] or {}) when that fits.
 */
#ifndef SS_JSCAN_H
#define SS_JSCAN_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "transform.h"

#define JSCAN_END 256 /* jscan_peek at the end of the input */

/* How a copied value fits its budget. */
enum jscan_fit {
  JSCAN_FULL = 0,   /* copied whole */
  JSCAN_SHRUNK = 1, /* shrunk, and something meaningful kept */
  JSCAN_EMPTY = 2,  /* shrunk to "", [] or {} */
  JSCAN_DROPPED = 3,/* nothing fits; nothing was written */
  JSCAN_ABSENT = 4  /* null (or, for text, an unconvertible type) */
};

struct jscan;

/*
 * Creates a scanner reading src, which is borrowed and must outlive the
 * scanner. The scanner does not read until the first call that needs input;
 * call jscan_rewind first. *out is owned by the caller (jscan_destroy).
 */
int jscan_create(const struct transform_source *src, struct jscan **out);

/* Frees the scanner (not its source). NULL is a no-op. */
void jscan_destroy(struct jscan *s);

/* Rewinds the source and starts reading again from offset 0. */
int jscan_rewind(struct jscan *s);

/* Turns full validation on (non-zero) or off. */
void jscan_set_validate(struct jscan *s, int on);

/* Skips a UTF-8 byte order mark at the current position, if there is one. */
int jscan_skip_bom(struct jscan *s);

/* The input offset of the next unread byte. */
uint64_t jscan_offset(const struct jscan *s);

/*
 * Skips insignificant whitespace and returns the next byte without
 * consuming it, JSCAN_END at the end of the input, or a negative code.
 */
int jscan_peek(struct jscan *s);

/* Consumes the byte that jscan_peek returned. */
void jscan_next(struct jscan *s);

/*
 * Reads an object key at the current '"' and the ':' after it. The decoded
 * key (escapes resolved, UTF-8) is stored in key[0..cap) and its length in
 * *len; a key longer than cap bytes is still read but *len is SIZE_MAX, so
 * it matches nothing. key is borrowed.
 */
int jscan_key(struct jscan *s, char *key, size_t cap, size_t *len);

/*
 * Consumes one value (validating it when validation is on). depth is the
 * number of containers that enclose the value.
 */
int jscan_skip(struct jscan *s, unsigned depth);

/*
 * Consumes one value and appends its compact serialization, shrunk to at
 * most max bytes, to o (borrowed; its cap must allow o->len + max bytes).
 * *fit says what happened; a top-level null is JSCAN_ABSENT and appends
 * nothing.
 */
int jscan_copy(struct jscan *s, struct buf *o, size_t max, unsigned depth,
               enum jscan_fit *fit);

/*
 * Like jscan_copy, for a string column: a string is copied (shrunk at a
 * character boundary), a number becomes a string holding its JSON text,
 * true and false become "true" and "false"; null, objects and arrays are
 * consumed and reported as JSCAN_ABSENT.
 */
int jscan_copy_text(struct jscan *s, struct buf *o, size_t max,
                    unsigned depth, enum jscan_fit *fit);

/*
 * Consumes one value and converts it to an integer: a JSON integer, a
 * finite real truncated toward zero (computed exactly on the decimal
 * digits, not through a double), or a string holding an optional sign and
 * decimal digits only. *has is 0 for any other value and for magnitudes of
 * 10^18 and more.
 */
int jscan_int(struct jscan *s, unsigned depth, int *has, int64_t *v);

/*
 * The message (static) and input offset of the last ERR_PARSE, or of the
 * last failure of the source ("corrupt compressed input", "input larger
 * than the size limit", "read error"). NULL if there was none.
 */
const char *jscan_error(const struct jscan *s, uint64_t *offset);

/*
 * Records a parse error found by the caller (msg is static) at offset and
 * returns ERR_PARSE, so that jscan_error reports it.
 */
int jscan_fail(struct jscan *s, const char *msg, uint64_t offset);

/*
 * Computes the 1-based line and byte column of offset by reading the input
 * again from the start (errors are rare; counting lines on every byte of
 * the hot path is not worth it). Leaves the scanner rewound. On a source
 * failure *line and *column are 0.
 */
void jscan_locate(struct jscan *s, uint64_t offset, uint64_t *line,
                  uint64_t *column);

#endif
