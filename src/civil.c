/*
 * civil.c: the calendar arithmetic of civil.h (H. Hinnant, "chrono-
 * Compatible Low-Level Date Algorithms").
 */
#include "civil.h"

#include "err.h"

#define CIVIL_TIME_MIN (-62167219200LL) /* 0000-01-01T00:00:00Z */
#define CIVIL_TIME_MAX 253402300799LL   /* 9999-12-31T23:59:59Z */

int64_t
civil_days_from_date(int64_t y, unsigned m, unsigned d)
{
  int64_t era;
  unsigned yoe, doy, doe;

  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = (unsigned)(y - era * 400);
  doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

void
civil_date_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
  int64_t era;
  unsigned doe, yoe, doy, mp;

  z += 719468;
  era = (z >= 0 ? z : z - 146096) / 146097;
  doe = (unsigned)(z - era * 146097);
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Writes v as exactly n decimal digits. */
static void
put_digits(char *p, unsigned v, int n)
{
  while(n-- > 0) {
    p[n] = (char)('0' + v % 10);
    v /= 10;
  }
}

int
civil_format_utc(int64_t t, char out[20])
{
  int64_t days, secs, y;
  unsigned m, d;

  if(!out || t < CIVIL_TIME_MIN || t > CIVIL_TIME_MAX)
    return ERR_INVAL;
  days = t / 86400;
  secs = t % 86400;
  if(secs < 0) {
    secs += 86400;
    days--;
  }
  civil_date_from_days(days, &y, &m, &d);
  put_digits(out, (unsigned)y, 4);
  out[4] = '-';
  put_digits(out + 5, m, 2);
  out[7] = '-';
  put_digits(out + 8, d, 2);
  out[10] = 'T';
  put_digits(out + 11, (unsigned)(secs / 3600), 2);
  out[13] = ':';
  put_digits(out + 14, (unsigned)(secs / 60 % 60), 2);
  out[16] = ':';
  put_digits(out + 17, (unsigned)(secs % 60), 2);
  out[19] = 'Z';
  return 0;
}
