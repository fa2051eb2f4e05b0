/*
 * jwt.h: client assertions for Microsoft Entra ID (SPEC section 4).
 *
 * A client assertion is a JWT the application signs with its certificate's
 * private key, sent instead of a client secret. Entra accepts two forms:
 *   PS256 (RSASSA-PSS, SHA-256, salt = digest length) with "x5t#S256", the
 *     base64url SHA-256 thumbprint of the certificate (current docs);
 *   RS256 (RSASSA-PKCS1-v1_5, SHA-256) with "x5t", the base64url SHA-1
 *     thumbprint (the legacy form msal still sends).
 * The claims are aud (the token endpoint URL), iss = sub = client_id, jti (a
 * random UUID), nbf (now) and exp (now + lifetime).
 *
 * The key is loaded once from a PEM file holding the certificate and its
 * RSA private key (the form Azure CLI writes and AZURE_CLIENT_CERTIFICATE_PATH
 * names). A loaded key is read-only and may sign on several threads.
 */
#ifndef SS_JWT_H
#define SS_JWT_H

#include <stddef.h>
#include <stdint.h>

enum jwt_alg {
  JWT_PS256 = 0,  /* the default: what Entra's docs describe today */
  JWT_RS256 = 1
};

/* Longest PEM file read: a certificate chain and a key fit many times. */
#define JWT_MAX_PEM_BYTES (256 * 1024)
/* Length of a UUID in text form, without the NUL. */
#define JWT_UUID_LEN 36
/* Default assertion lifetime, as msal uses: 10 minutes. */
#define JWT_DEFAULT_LIFETIME 600

struct jwt_key;

/* Why a PEM could not be used; text names the file but never key bytes. */
struct jwt_error {
  char text[256];
};

/*
 * Loads the first certificate and the private key from the PEM file at path
 * (borrowed). password (borrowed, may be NULL) decrypts an encrypted key.
 * The key must be RSA and must belong to the certificate. On success *out is
 * owned by the caller (jwt_key_destroy). Returns ERR_NOTFOUND or ERR_IO for
 * a file that cannot be read, ERR_TOOBIG over JWT_MAX_PEM_BYTES, ERR_PARSE
 * for a PEM without a certificate or key, a key that is not RSA, a wrong
 * password or a key that does not match; err (may be NULL) says which.
 */
int jwt_key_load(const char *path, const char *password, struct jwt_key **out,
                 struct jwt_error *err);

/* The same from len bytes of PEM in memory (borrowed). */
int jwt_key_load_mem(const void *pem, size_t len, const char *password,
                     struct jwt_key **out, struct jwt_error *err);

/* Frees a key (its memory is wiped by OpenSSL). NULL is a no-op. */
void jwt_key_destroy(struct jwt_key *k);

/* The certificate's thumbprints, base64url without padding. Owned by k. */
const char *jwt_key_x5t(const struct jwt_key *k);        /* SHA-1 */
const char *jwt_key_x5t_s256(const struct jwt_key *k);   /* SHA-256 */

/*
 * Builds and signs a client assertion: header {"alg","typ":"JWT", and
 * "x5t#S256" for PS256 or "x5t" for RS256}, claims {aud, iss, sub, jti, nbf,
 * exp}. client_id and audience are borrowed; now is Unix seconds; lifetime
 * <= 0 means JWT_DEFAULT_LIFETIME. On success *out is a NUL-terminated
 * string owned by the caller (free()). Returns ERR_INVAL, ERR_NOMEM, or
 * ERR_AUTH when OpenSSL refuses to sign.
 */
int jwt_client_assertion(const struct jwt_key *k, enum jwt_alg alg,
                         const char *client_id, const char *audience,
                         int64_t now, int64_t lifetime, char **out);

/*
 * Writes base64url (RFC 4648 section 5, no padding) of in[0..len) into out
 * (cap bytes including the NUL). Returns the text length, or 0 when out is
 * too small (out is then "").
 */
size_t jwt_base64url(const void *in, size_t len, char *out, size_t cap);

/*
 * Writes a random (version 4) UUID in lower-case text form into out
 * (JWT_UUID_LEN + 1 bytes) from OpenSSL's CSPRNG. Used for jti and, by the
 * ingestion client, for x-ms-client-request-id. Returns 0 or ERR_AGAIN when
 * the generator is not seeded.
 */
int jwt_uuid(char out[JWT_UUID_LEN + 1]);

#endif
