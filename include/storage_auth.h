/*
 * storage_auth.h: Azure Storage request signing (Shared Key) and the URL
 * encoding and date helpers that signing depends on.
 *
 * Shared Key (the scheme for Blob service version 2009-09-19 and later):
 *   Authorization: SharedKey ACCOUNT:Base64(HMAC-SHA256(key, StringToSign))
 * where StringToSign is the verb, twelve standard header lines, the
 * canonicalized x-ms-* headers and the canonicalized resource ("/" ACCOUNT
 * followed by the URL path exactly as sent, then one "\nname:value" line per
 * query parameter, names lower-cased and sorted, values decoded, repeated
 * names comma-joined in sorted order). A path-style emulator URL already
 * holds the account in its path, so its resource names the account twice
 * (/devstoreaccount1/devstoreaccount1/container), as the service expects.
 *
 * Everything here is pure and thread-safe. The key never leaves these
 * functions except as a signature.
 */
#ifndef SS_STORAGE_AUTH_H
#define SS_STORAGE_AUTH_H

#include <stddef.h>
#include <time.h>

#include "buf.h"

/* A request header as the client will send it; both strings borrowed. */
struct storage_header {
  const char *name;
  const char *value;
};

/* The x-ms-version this client speaks. */
#define STORAGE_API_VERSION "2023-11-03"

/*
 * Appends the Shared Key string-to-sign of a request to out: method (e.g.
 * "GET"), the full url as sent (percent-encoded path and query), and the n
 * headers it will carry. Returns 0, ERR_INVAL for a url without a path
 * part that can be found, ERR_NOMEM or ERR_TOOBIG (out's cap).
 */
int storage_sk_string_to_sign(const char *account, const char *method,
                              const char *url,
                              const struct storage_header *hdrs, size_t n,
                              struct buf *out);

/*
 * Writes the base64 HMAC-SHA256 of data under key into out (at least 45
 * bytes: 44 characters and a NUL). Returns 0 or ERR_INVAL.
 */
int storage_sk_signature(const unsigned char *key, size_t key_len,
                         const char *data, size_t len, char *out,
                         size_t out_size);

/*
 * A keyed HMAC-SHA256 for Shared Key signatures. OpenSSL 3's one-shot
 * HMAC() fetches the MAC and the digest from the provider on every call,
 * which measured about 20 us a signature inside the daemon (one per
 * request); the signer fetches and keys once, and each signature copies
 * the keyed state. It holds key-derived state, wiped when destroyed.
 *
 * storage_signer_create: key (borrowed, may be wiped afterwards) is the
 * decoded account key. Returns 0 and *out (owned by the caller, freed with
 * storage_signer_destroy), ERR_INVAL for an empty key, or ERR_NOMEM.
 * storage_signer_sign: as storage_sk_signature. Safe to call from several
 * threads at once (the signer is only read).
 * storage_signer_destroy: NULL is a no-op.
 */
struct storage_signer;

int storage_signer_create(const unsigned char *key, size_t key_len,
                          struct storage_signer **out);
int storage_signer_sign(const struct storage_signer *sg, const char *data,
                        size_t len, char *out, size_t out_size);
void storage_signer_destroy(struct storage_signer *sg);

/*
 * Appends "SharedKey ACCOUNT:SIGNATURE" for the request to out (the value
 * of its Authorization header), signed by sg (borrowed).
 */
int storage_sk_authorization(const char *account,
                             const struct storage_signer *sg,
                             const char *method, const char *url,
                             const struct storage_header *hdrs, size_t n,
                             struct buf *out);

/*
 * Decodes a base64 account key into a new buffer owned by the caller
 * (free()). ERR_CONFIG for text that is not base64 or decodes to nothing.
 */
int storage_key_decode(const char *b64, unsigned char **key, size_t *len);

/*
 * Appends s percent-encoded for a URL path to out: unreserved characters
 * (RFC 3986) and, when keep_slash, '/' are kept; every other byte (UTF-8
 * included) becomes %XX. Used for blob names and query values alike.
 */
int storage_url_encode(const char *s, int keep_slash, struct buf *out);

/*
 * Decodes %XX escapes of s[0..len) into out (a '+' stays a '+'). Invalid
 * escapes are copied literally. Returns 0, ERR_NOMEM or ERR_TOOBIG.
 */
int storage_url_decode(const char *s, size_t len, struct buf *out);

/* Formats t as an RFC 1123 date ("Sun, 06 Nov 1994 08:49:37 GMT") into out
   (at least 30 bytes). Independent of the locale. */
void storage_http_date(time_t t, char *out, size_t size);

/*
 * Parses an RFC 1123 date as Azure sends it into Unix seconds. Returns 0 or
 * ERR_PARSE.
 */
int storage_http_date_parse(const char *s, time_t *out);

#endif
