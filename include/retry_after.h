/*
 * retry_after.h: how long a throttled or unavailable service asks us to
 * wait (SPEC section 3).
 *
 * Azure services say it in one of three headers. The Azure SDKs read them
 * in this order, and so do we: retry-after-ms, x-ms-retry-after-ms
 * (milliseconds), then the standard Retry-After (RFC 9110 section 10.2.3:
 * delta-seconds or an HTTP-date). Every result is bounded by
 * RETRY_AFTER_MAX_MS, so that a broken or hostile peer cannot park the
 * daemon for days; a date in the past means "now".
 *
 * The functions are pure (the current time is a parameter) and safe on any
 * thread.
 */
#ifndef SS_RETRY_AFTER_H
#define SS_RETRY_AFTER_H

#include <stdint.h>

/* The longest wait any hint can produce: 10 minutes. */
#define RETRY_AFTER_MAX_MS (10 * 60 * 1000)

/*
 * Parses the value of a Retry-After header (borrowed, NUL-terminated):
 * delta-seconds ("120") or an HTTP-date in any of the three forms RFC 9110
 * requires recipients to accept (IMF-fixdate "Sun, 06 Nov 1994 08:49:37
 * GMT", RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT", asctime "Sun Nov  6
 * 08:49:37 1994"). Surrounding spaces and tabs are ignored. now is the
 * current Unix time in seconds, used for dates. Returns 0 with the wait in
 * *out_ms (0 .. RETRY_AFTER_MAX_MS), or ERR_PARSE (or ERR_INVAL for NULL
 * arguments) for anything else.
 */
int retry_after_parse(const char *value, int64_t now, int64_t *out_ms);

/*
 * Parses the value of a retry-after-ms or x-ms-retry-after-ms header: a
 * non-negative decimal number of milliseconds, optionally with a fraction
 * (dropped). Returns 0 with *out_ms bounded as above, or ERR_PARSE.
 */
int retry_after_parse_ms(const char *value, int64_t *out_ms);

/*
 * Picks the wait from the three headers' values, each NULL when the header
 * is absent, in the SDKs' order; a header whose value does not parse is
 * skipped. Returns 0 with *out_ms, or ERR_NOTFOUND when no header gives a
 * usable value. All strings are borrowed.
 */
int retry_after_pick(const char *retry_after_ms,
                     const char *x_ms_retry_after_ms,
                     const char *retry_after, int64_t now, int64_t *out_ms);

#endif
