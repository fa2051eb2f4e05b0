/*
 * test_jwt.c: client assertions verified independently with OpenSSL.
 *
 * The group setup makes a fresh RSA key and a self-signed certificate in
 * memory, so no key material lives in the tree. Each assertion is split,
 * decoded and checked: header fields, claims, and the signature against the
 * certificate's public key with the padding the algorithm names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "jwt.h"

#define NOW 1795996800
#define AUD "https://login.example.test/tenant-1/oauth2/v2.0/token"
#define CLIENT "11111111-2222-3333-4444-555555555555"

struct fixture {
  EVP_PKEY *key;
  X509 *cert;
  char *pem;         /* certificate then key */
  size_t pem_len;
  char *pem_rev;     /* key then certificate */
  size_t pem_rev_len;
};

static struct fixture fx;

static char *
bio_text(BIO *b, size_t *len)
{
  char *p;
  long n = BIO_get_mem_data(b, &p);
  char *copy = malloc((size_t)n + 1);

  memcpy(copy, p, (size_t)n);
  copy[n] = '\0';
  *len = (size_t)n;
  return copy;
}

static X509 *
self_signed(EVP_PKEY *key)
{
  X509 *c = X509_new();
  X509_NAME *nm;

  X509_set_version(c, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c), 42);
  X509_gmtime_adj(X509_getm_notBefore(c), 0);
  X509_gmtime_adj(X509_getm_notAfter(c), 86400);
  X509_set_pubkey(c, key);
  nm = X509_get_subject_name(c);
  X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC,
                             (const unsigned char *)"spectra test", -1, -1, 0);
  X509_set_issuer_name(c, nm);
  X509_sign(c, key, EVP_sha256());
  return c;
}

static int
setup(void **state)
{
  BIO *b;

  (void)state;
  fx.key = EVP_RSA_gen(2048);
  assert_non_null(fx.key);
  fx.cert = self_signed(fx.key);
  b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, fx.cert);
  PEM_write_bio_PrivateKey(b, fx.key, NULL, NULL, 0, NULL, NULL);
  fx.pem = bio_text(b, &fx.pem_len);
  BIO_free(b);
  b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, fx.key, NULL, NULL, 0, NULL, NULL);
  PEM_write_bio_X509(b, fx.cert);
  fx.pem_rev = bio_text(b, &fx.pem_rev_len);
  BIO_free(b);
  return 0;
}

static int
teardown(void **state)
{
  (void)state;
  EVP_PKEY_free(fx.key);
  X509_free(fx.cert);
  free(fx.pem);
  free(fx.pem_rev);
  return 0;
}

/* Decodes base64url (no padding) into a new buffer; NULL when invalid. */
static unsigned char *
b64url_decode(const char *s, size_t n, size_t *out_len)
{
  unsigned char *out = malloc(n * 3 / 4 + 3);
  unsigned v = 0;
  int bits = 0;
  size_t o = 0;

  for(size_t i = 0; i < n; i++) {
    const char *tab =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *p = memchr(tab, s[i], 64);

    if(!p || !s[i]) {
      free(out);
      return NULL;
    }
    v = (v << 6) | (unsigned)(p - tab);
    bits += 6;
    if(bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(v >> bits);
    }
  }
  *out_len = o;
  return out;
}

static json_t *
decode_part(const char *s, size_t n)
{
  size_t len;
  unsigned char *d = b64url_decode(s, n, &len);
  json_t *j;

  assert_non_null(d);
  j = json_loadb((const char *)d, len, 0, NULL);
  free(d);
  assert_non_null(j);
  return j;
}

static void
expect_thumb(const EVP_MD *md, const char *got)
{
  unsigned char *der = NULL, d[EVP_MAX_MD_SIZE];
  unsigned n;
  int len = i2d_X509(fx.cert, &der);
  char want[64];

  assert_true(len > 0);
  assert_int_equal(EVP_Digest(der, (size_t)len, d, &n, md, NULL), 1);
  OPENSSL_free(der);
  assert_true(jwt_base64url(d, n, want, sizeof(want)) > 0);
  assert_string_equal(got, want);
}

/* Verifies a compact JWT; returns EVP_DigestVerify's result. */
static int
verify(const char *jwt, int pss, json_t **hdr, json_t **claims)
{
  const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  unsigned char *sig;
  size_t siglen;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pctx = NULL;
  EVP_PKEY *pub = X509_get_pubkey(fx.cert);
  int ok;

  assert_non_null(d2);
  assert_null(strchr(d2 + 1, '.'));
  *hdr = decode_part(jwt, (size_t)(d1 - jwt));
  *claims = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
  sig = b64url_decode(d2 + 1, strlen(d2 + 1), &siglen);
  assert_non_null(sig);
  assert_int_equal(EVP_DigestVerifyInit(md, &pctx, EVP_sha256(), NULL, pub), 1);
  if(pss) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
  }
  ok = EVP_DigestVerify(md, sig, siglen, (const unsigned char *)jwt,
                        (size_t)(d2 - jwt));
  free(sig);
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(pub);
  return ok;
}

static void
check_claims(json_t *claims)
{
  const char *jti = json_string_value(json_object_get(claims, "jti"));

  assert_string_equal(json_string_value(json_object_get(claims, "aud")), AUD);
  assert_string_equal(json_string_value(json_object_get(claims, "iss")),
                      CLIENT);
  assert_string_equal(json_string_value(json_object_get(claims, "sub")),
                      CLIENT);
  assert_int_equal(json_integer_value(json_object_get(claims, "nbf")), NOW);
  assert_non_null(jti);
  assert_int_equal(strlen(jti), JWT_UUID_LEN);
}

static void
test_ps256(void **state)
{
  struct jwt_key *k = NULL;
  char *jwt = NULL;
  json_t *hdr, *claims;

  (void)state;
  assert_int_equal(jwt_key_load_mem(fx.pem, fx.pem_len, NULL, &k, NULL), 0);
  assert_int_equal(jwt_client_assertion(k, JWT_PS256, CLIENT, AUD, NOW, 0,
                                        &jwt), 0);
  assert_int_equal(verify(jwt, 1, &hdr, &claims), 1);
  assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "PS256");
  assert_string_equal(json_string_value(json_object_get(hdr, "typ")), "JWT");
  assert_null(json_object_get(hdr, "x5t"));
  expect_thumb(EVP_sha256(),
               json_string_value(json_object_get(hdr, "x5t#S256")));
  check_claims(claims);
  assert_int_equal(json_integer_value(json_object_get(claims, "exp")),
                   NOW + JWT_DEFAULT_LIFETIME);
  /* A PSS signature does not verify as PKCS#1 v1.5. */
  json_decref(hdr);
  json_decref(claims);
  assert_int_not_equal(verify(jwt, 0, &hdr, &claims), 1);
  json_decref(hdr);
  json_decref(claims);
  free(jwt);
  jwt_key_destroy(k);
}

static void
test_rs256_key_first(void **state)
{
  struct jwt_key *k = NULL;
  char *jwt = NULL;
  json_t *hdr, *claims;

  (void)state;
  assert_int_equal(jwt_key_load_mem(fx.pem_rev, fx.pem_rev_len, NULL, &k,
                                    NULL), 0);
  assert_int_equal(jwt_client_assertion(k, JWT_RS256, CLIENT, AUD, NOW, 300,
                                        &jwt), 0);
  assert_int_equal(verify(jwt, 0, &hdr, &claims), 1);
  assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "RS256");
  assert_null(json_object_get(hdr, "x5t#S256"));
  expect_thumb(EVP_sha1(), json_string_value(json_object_get(hdr, "x5t")));
  expect_thumb(EVP_sha1(), jwt_key_x5t(k));
  expect_thumb(EVP_sha256(), jwt_key_x5t_s256(k));
  check_claims(claims);
  assert_int_equal(json_integer_value(json_object_get(claims, "exp")),
                   NOW + 300);
  json_decref(hdr);
  json_decref(claims);
  free(jwt);
  jwt_key_destroy(k);
}

static void
test_tampered_fails(void **state)
{
  struct jwt_key *k = NULL;
  char *jwt = NULL, *d;
  json_t *hdr, *claims;

  (void)state;
  assert_int_equal(jwt_key_load_mem(fx.pem, fx.pem_len, NULL, &k, NULL), 0);
  assert_int_equal(jwt_client_assertion(k, JWT_RS256, CLIENT, AUD, NOW, 0,
                                        &jwt), 0);
  /* Flip one character in the middle of the signature. */
  d = strrchr(jwt, '.') + 20;
  *d = *d == 'A' ? 'B' : 'A';
  assert_int_not_equal(verify(jwt, 0, &hdr, &claims), 1);
  json_decref(hdr);
  json_decref(claims);
  free(jwt);
  jwt_key_destroy(k);
}

static void
test_unique_jti(void **state)
{
  struct jwt_key *k = NULL;
  char *a = NULL, *b = NULL;

  (void)state;
  assert_int_equal(jwt_key_load_mem(fx.pem, fx.pem_len, NULL, &k, NULL), 0);
  assert_int_equal(jwt_client_assertion(k, JWT_PS256, CLIENT, AUD, NOW, 0,
                                        &a), 0);
  assert_int_equal(jwt_client_assertion(k, JWT_PS256, CLIENT, AUD, NOW, 0,
                                        &b), 0);
  assert_string_not_equal(a, b);
  free(a);
  free(b);
  jwt_key_destroy(k);
}

static void
test_encrypted_key(void **state)
{
  struct jwt_key *k = NULL;
  struct jwt_error e;
  BIO *b = BIO_new(BIO_s_mem());
  char *pem;
  size_t len;

  (void)state;
  PEM_write_bio_X509(b, fx.cert);
  PEM_write_bio_PKCS8PrivateKey(b, fx.key, EVP_aes_256_cbc(), NULL, 0, NULL,
                                (void *)"pa55word");
  pem = bio_text(b, &len);
  BIO_free(b);
  /* No password: fails instead of prompting. */
  assert_int_equal(jwt_key_load_mem(pem, len, NULL, &k, &e), ERR_PARSE);
  assert_null(k);
  assert_non_null(strstr(e.text, "not set"));
  assert_int_equal(jwt_key_load_mem(pem, len, "wrong", &k, &e), ERR_PARSE);
  assert_non_null(strstr(e.text, "wrong"));
  assert_int_equal(jwt_key_load_mem(pem, len, "pa55word", &k, &e), 0);
  jwt_key_destroy(k);
  free(pem);
}

static void
test_bad_pems(void **state)
{
  struct jwt_key *k = NULL;
  struct jwt_error e;
  EVP_PKEY *ec = EVP_EC_gen("P-256"), *other = EVP_RSA_gen(2048);
  X509 *eccert = self_signed(ec);
  BIO *b;
  char *pem;
  size_t len;
  const char *cert_only = strstr(fx.pem, "-----BEGIN PRIVATE KEY");

  (void)state;
  /* The certificate without its key. */
  assert_non_null(cert_only);
  assert_int_equal(jwt_key_load_mem(fx.pem, (size_t)(cert_only - fx.pem),
                                    NULL, &k, &e), ERR_PARSE);
  assert_non_null(strstr(e.text, "private key"));
  /* Garbage. */
  assert_int_equal(jwt_key_load_mem("hello", 5, NULL, &k, &e), ERR_PARSE);
  assert_non_null(strstr(e.text, "certificate"));
  /* An EC key. */
  b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, eccert);
  PEM_write_bio_PrivateKey(b, ec, NULL, NULL, 0, NULL, NULL);
  pem = bio_text(b, &len);
  BIO_free(b);
  assert_int_equal(jwt_key_load_mem(pem, len, NULL, &k, &e), ERR_PARSE);
  assert_non_null(strstr(e.text, "not an RSA key"));
  free(pem);
  /* A key that belongs to another certificate. */
  b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, fx.cert);
  PEM_write_bio_PrivateKey(b, other, NULL, NULL, 0, NULL, NULL);
  pem = bio_text(b, &len);
  BIO_free(b);
  assert_int_equal(jwt_key_load_mem(pem, len, NULL, &k, &e), ERR_PARSE);
  assert_non_null(strstr(e.text, "does not belong"));
  assert_null(strstr(e.text, "BEGIN"));
  free(pem);
  assert_null(k);
  X509_free(eccert);
  EVP_PKEY_free(ec);
  EVP_PKEY_free(other);
}

static void
test_load_file(void **state)
{
  char path[] = "/tmp/test_jwt_XXXXXX";
  int fd = mkstemp(path);
  struct jwt_key *k = NULL;
  struct jwt_error e;

  (void)state;
  assert_true(fd >= 0);
  assert_int_equal(write(fd, fx.pem, fx.pem_len), (ssize_t)fx.pem_len);
  close(fd);
  assert_int_equal(jwt_key_load(path, NULL, &k, &e), 0);
  expect_thumb(EVP_sha1(), jwt_key_x5t(k));
  jwt_key_destroy(k);
  unlink(path);
  assert_int_equal(jwt_key_load(path, NULL, &k, &e), ERR_NOTFOUND);
  assert_non_null(strstr(e.text, path));
  assert_int_equal(jwt_key_load("/", NULL, &k, &e), ERR_IO);
}

static void
test_args_and_helpers(void **state)
{
  struct jwt_key *k = NULL;
  char *jwt = NULL, out[8], uuid[JWT_UUID_LEN + 1];

  (void)state;
  assert_int_equal(jwt_key_load_mem(fx.pem, fx.pem_len, NULL, &k, NULL), 0);
  assert_int_equal(jwt_client_assertion(k, JWT_PS256, "", AUD, NOW, 0, &jwt),
                   ERR_INVAL);
  assert_int_equal(jwt_client_assertion(k, (enum jwt_alg)7, CLIENT, AUD, NOW,
                                        0, &jwt), ERR_INVAL);
  assert_null(jwt);
  jwt_key_destroy(k);
  jwt_key_destroy(NULL);
  /* RFC 4648 test vectors, base64url without padding. */
  assert_int_equal(jwt_base64url("fo", 2, out, sizeof(out)), 3);
  assert_string_equal(out, "Zm8");
  assert_int_equal(jwt_base64url("foob", 4, out, sizeof(out)), 6);
  assert_string_equal(out, "Zm9vYg");
  assert_int_equal(jwt_base64url("\xfb\xff", 2, out, sizeof(out)), 3);
  assert_string_equal(out, "-_8");
  assert_int_equal(jwt_base64url("foobarbaz", 9, out, sizeof(out)), 0);
  assert_string_equal(out, "");
  assert_int_equal(jwt_uuid(uuid), 0);
  assert_int_equal(strlen(uuid), JWT_UUID_LEN);
  assert_int_equal(uuid[14], '4');
  assert_non_null(strchr("89ab", uuid[19]));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_ps256),
    cmocka_unit_test(test_rs256_key_first),
    cmocka_unit_test(test_tampered_fails),
    cmocka_unit_test(test_unique_jti),
    cmocka_unit_test(test_encrypted_key),
    cmocka_unit_test(test_bad_pems),
    cmocka_unit_test(test_load_file),
    cmocka_unit_test(test_args_and_helpers),
  };

  return cmocka_run_group_tests(tests, setup, teardown);
}
