/*
 * civil.h: proleptic Gregorian calendar arithmetic on Unix time, without
 * gmtime/timegm (no locale, no time zone, no global state, any thread).
 *
 * One implementation (Howard Hinnant's days_from_civil / civil_from_days)
 * for every module that reads or writes a date: report times, RFC 3339 in
 * the configuration, HTTP dates in Retry-After, token expiry times.
 */
#ifndef SS_CIVIL_H
#define SS_CIVIL_H

#include <stdint.h>

/* Days since 1970-01-01 of year y, month m (1..12), day d (1..31). */
int64_t civil_days_from_date(int64_t y, unsigned m, unsigned d);

/* The date of day number days (since 1970-01-01). Outputs may not be NULL. */
void civil_date_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

/*
 * Writes t as exactly 20 bytes "YYYY-MM-DDTHH:MM:SSZ" (UTC, no NUL) to out.
 * Returns 0, or ERR_INVAL when t is outside the years 0000..9999.
 */
int civil_format_utc(int64_t t, char out[20]);

#endif
