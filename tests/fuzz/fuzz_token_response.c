/*
 * fuzz_token_response.c: the token-response parser on arbitrary bytes.
 * Besides memory safety it checks the parser's promises: a success has a
 * non-empty token within TOKEN_MAX_LEN and an expiry in the future within
 * TOKEN_MAX_LIFETIME, and error texts stay NUL-terminated within their
 * arrays.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "token_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  const int64_t now = 1795996800; /* 2026-11-30T00:00:00Z */
  struct token_result r;
  struct token_error e;
  int rc;

  rc = token_parse((const char *)data, size, now, &r, &e);
  if(!rc) {
    size_t n = strlen(r.access_token);

    if(n == 0 || n > TOKEN_MAX_LEN || r.expires_at <= now ||
       r.lifetime <= 0 || r.lifetime > TOKEN_MAX_LIFETIME)
      abort();
    token_result_free(&r);
  }
  else if(memchr(e.text, '\0', sizeof(e.text)) == NULL ||
          memchr(e.code, '\0', sizeof(e.code)) == NULL)
    abort();
  return 0;
}
