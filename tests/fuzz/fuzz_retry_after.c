/*
 * fuzz_retry_after.c: the Retry-After, retry-after-ms and x-ms-retry-after-ms
 * parsers on arbitrary bytes. Besides memory safety it checks the bound:
 * whatever the input, a parsed wait lies in [0, RETRY_AFTER_MAX_MS].
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "retry_after.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  /* A fixed "now" keeps runs reproducible: 2026-11-30T00:00:00Z. */
  const int64_t now = 1795996800;
  char *s = malloc(size + 1);
  int64_t ms;

  if(!s)
    return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  if(!retry_after_parse(s, now, &ms) && (ms < 0 || ms > RETRY_AFTER_MAX_MS))
    abort();
  if(!retry_after_parse_ms(s, &ms) && (ms < 0 || ms > RETRY_AFTER_MAX_MS))
    abort();
  if(!retry_after_pick(s, s, s, now, &ms) &&
     (ms < 0 || ms > RETRY_AFTER_MAX_MS))
    abort();
  free(s);
  return 0;
}
