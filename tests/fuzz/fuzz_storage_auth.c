/*
 * fuzz_storage_auth.c: the small parsers of storage_auth.h and http.h that
 * see text from the network or the configuration: HTTP dates (the
 * Last-Modified and Date headers of Azure Storage), base64 account keys,
 * percent-decoding (blob names in List Blobs markers and SAS tokens), and
 * the URL redaction every log line about a request goes through.
 *
 * Oracles, besides memory safety:
 *   - a date that parses formats to a date that parses to the same time;
 *   - a decoded key is non-empty and no longer than 3/4 of its text;
 *   - decoding never grows the text, and encoding then decoding is the
 *     identity;
 *   - a redacted URL fits its buffer, keeps no query string (a SAS token
 *     lives there) and no user information.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "err.h"
#include "http.h"
#include "storage_auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_date(const char *s)
{
  char text[64];
  time_t t, t2;

  if(storage_http_date_parse(s, &t))
    return;
  storage_http_date(t, text, sizeof(text));
  if(storage_http_date_parse(text, &t2) || t2 != t)
    abort();
}

static void
check_key(const char *s)
{
  unsigned char *key;
  size_t len;

  if(storage_key_decode(s, &key, &len)) {
    if(key || len)
      abort();
    return;
  }
  if(!key || !len || len > strlen(s) / 4 * 3)
    abort();
  free(key);
}

static void
check_url_decode(const uint8_t *data, size_t size)
{
  struct buf dec, enc, again;

  buf_init(&dec, size + 1);
  buf_init(&enc, 3 * size + 1);
  buf_init(&again, 3 * size + 1);
  if(storage_url_decode((const char *)data, size, &dec))
    abort();
  if(dec.len > size)
    abort();
  /* Encoding works on C strings: stop at the first NUL. */
  if(dec.data && !memchr(dec.data, '\0', dec.len)) {
    if(storage_url_encode(dec.data, (int)(size & 1), &enc))
      abort();
    if(storage_url_decode(enc.data ? enc.data : "", enc.len, &again))
      abort();
    if(again.len != dec.len || (dec.len && memcmp(again.data, dec.data,
                                                  dec.len)))
      abort();
  }
  buf_free(&dec);
  buf_free(&enc);
  buf_free(&again);
}

static void
check_redact(const char *s, size_t size_hint)
{
  char out[256];
  size_t cap = 1 + size_hint % sizeof(out);
  const char *scheme = strstr(s, "://");

  memset(out, 'x', sizeof(out));
  http_url_redact(s, out, cap);
  if(!memchr(out, '\0', cap))
    abort();
  if(strchr(out, '?') && !(scheme && memchr(s, '?', (size_t)(scheme - s))))
    abort(); /* a query string survived */
  if(scheme && !memchr(s, '?', (size_t)(scheme - s)) &&
     strlen(out) > (size_t)(scheme + 3 - s)) {
    /* After the scheme, no '@' before the path: user info is gone. */
    const char *auth = out + (scheme + 3 - s);

    if(memchr(auth, '@', strcspn(auth, "/?#")))
      abort();
  }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *s = malloc(size + 1);

  if(!s)
    return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  check_date(s);
  check_key(s);
  check_url_decode(data, size);
  check_redact(s, size);
  free(s);
  return 0;
}
