/*
 * fuzz_jwt_key.c: the certificate file of client_certificate
 * (jwt_key_load_mem: a PEM with a certificate and its RSA key, in either
 * order) on arbitrary bytes.
 *
 * No password is given, so an encrypted key fails without OpenSSL ever
 * running a key derivation the file could make arbitrarily slow. Oracles,
 * besides memory safety and leaks: a failure explains itself and returns
 * no key; a success has both thumbprints (base64url SHA-1 and SHA-256: 27
 * and 43 characters) and signs an assertion that is a three-part JWT.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct jwt_key *k = NULL;
  struct jwt_error e;
  char *jwt = NULL;
  int rc;

  rc = jwt_key_load_mem(data, size, NULL, &k, &e);
  if(rc) {
    if(k || !e.text[0] || !memchr(e.text, '\0', sizeof(e.text)))
      abort();
    return 0;
  }
  if(!k || strlen(jwt_key_x5t(k)) != 27 || strlen(jwt_key_x5t_s256(k)) != 43)
    abort();
  rc = jwt_client_assertion(k, size & 1 ? JWT_RS256 : JWT_PS256, "client",
                            "https://login.example/t/oauth2/v2.0/token",
                            1795996800, 0, &jwt);
  if(rc == 0) {
    char *dot = strchr(jwt, '.');

    if(!dot || !strchr(dot + 1, '.') || strchr(strchr(dot + 1, '.') + 1, '.'))
      abort();
    free(jwt);
  }
  else if(rc != ERR_AUTH && rc != ERR_NOMEM)
    abort();
  jwt_key_destroy(k);
  return 0;
}
