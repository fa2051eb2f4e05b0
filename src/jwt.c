/*
 * jwt.c: signed client assertions (JWT) with OpenSSL.
 *
 * The PEM is parsed from memory so that the file is read once, with a size
 * cap, and its bytes (which hold the private key) are wiped right after.
 * An encrypted key without a password fails instead of prompting on the
 * terminal, which is OpenSSL's default and would hang a daemon.
 */
#include "jwt.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"

struct jwt_key {
  EVP_PKEY *pkey;
  char x5t[32];        /* base64url of 20 bytes: 27 characters */
  char x5t_s256[48];   /* base64url of 32 bytes: 43 characters */
};

static void
set_err(struct jwt_error *err, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));

static void
set_err(struct jwt_error *err, const char *fmt, ...)
{
  va_list ap;

  if(!err)
    return;
  va_start(ap, fmt);
  vsnprintf(err->text, sizeof(err->text), fmt, ap);
  va_end(ap);
}

/* Appends OpenSSL's most recent reason (never key material) to err and
   empties OpenSSL's error queue, which is per thread and would otherwise
   confuse the next user. */
static void
add_ssl_reason(struct jwt_error *err)
{
  unsigned long e = ERR_peek_last_error();
  const char *reason = e ? ERR_reason_error_string(e) : NULL;

  if(err && reason) {
    size_t n = strlen(err->text);

    snprintf(err->text + n, sizeof(err->text) - n, " (%s)", reason);
  }
  ERR_clear_error();
}

size_t
jwt_base64url(const void *in, size_t len, char *out, size_t cap)
{
  static const char tab[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const unsigned char *p = in;
  size_t need = len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0), o = 0;

  if(!cap)
    return 0;
  if(need + 1 > cap) {
    out[0] = '\0';
    return 0;
  }
  for(size_t i = 0; i < len; i += 3) {
    unsigned v = (unsigned)p[i] << 16;
    size_t left = len - i;

    if(left > 1)
      v |= (unsigned)p[i + 1] << 8;
    if(left > 2)
      v |= p[i + 2];
    out[o++] = tab[(v >> 18) & 63];
    out[o++] = tab[(v >> 12) & 63];
    if(left > 1)
      out[o++] = tab[(v >> 6) & 63];
    if(left > 2)
      out[o++] = tab[v & 63];
  }
  out[o] = '\0';
  return o;
}

int
jwt_uuid(char out[JWT_UUID_LEN + 1])
{
  unsigned char b[16];

  if(RAND_bytes(b, sizeof(b)) != 1) {
    ERR_clear_error();
    return ERR_AGAIN;
  }
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);  /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);  /* RFC 4122 variant */
  snprintf(out, JWT_UUID_LEN + 1,
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
           "%02x%02x%02x%02x%02x%02x",
           b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
           b[10], b[11], b[12], b[13], b[14], b[15]);
  return 0;
}

/* The password callback: hands over the password, or refuses (returns 0)
   when there is none, so that OpenSSL never prompts on a terminal. */
static int
password_cb(char *buf, int size, int rwflag, void *u)
{
  const char *pw = u;
  size_t n;

  (void)rwflag;
  if(!pw || size <= 0)
    return 0;
  n = strlen(pw);
  if(n > (size_t)size)
    return 0;
  memcpy(buf, pw, n);
  return (int)n;
}

static int
thumbprint(X509 *cert, const EVP_MD *md, char *out, size_t cap)
{
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n = 0;

  if(X509_digest(cert, md, d, &n) != 1 || !jwt_base64url(d, n, out, cap))
    return ERR_PARSE;
  return 0;
}

int
jwt_key_load_mem(const void *pem, size_t len, const char *password,
                 struct jwt_key **out, struct jwt_error *err)
{
  struct jwt_key *k = NULL;
  BIO *bio = NULL;
  X509 *cert = NULL;
  int rc = ERR_PARSE;

  if(err)
    err->text[0] = '\0';
  if(!pem || !out || len > (size_t)JWT_MAX_PEM_BYTES) {
    set_err(err, "PEM is missing or larger than %d bytes", JWT_MAX_PEM_BYTES);
    return pem && out ? ERR_TOOBIG : ERR_INVAL;
  }
  *out = NULL;
  k = calloc(1, sizeof(*k));
  if(!k)
    return ERR_NOMEM;
  /* PEM_read_bio_* skip blocks of other types, so the certificate and the
     key may come in either order; each search gets a fresh reader. */
  bio = BIO_new_mem_buf(pem, (int)len);
  if(!bio) {
    rc = ERR_NOMEM;
    goto out;
  }
  cert = PEM_read_bio_X509(bio, NULL, password_cb, NULL);
  if(!cert) {
    set_err(err, "no certificate in the PEM");
    add_ssl_reason(err);
    goto out;
  }
  BIO_free(bio);
  bio = BIO_new_mem_buf(pem, (int)len);
  if(!bio) {
    rc = ERR_NOMEM;
    goto out;
  }
  k->pkey = PEM_read_bio_PrivateKey(bio, NULL, password_cb, (void *)password);
  if(!k->pkey) {
    set_err(err, "no usable private key in the PEM (missing, or encrypted "
            "and the password is %s)", password ? "wrong" : "not set");
    add_ssl_reason(err);
    goto out;
  }
  if(EVP_PKEY_base_id(k->pkey) != EVP_PKEY_RSA) {
    set_err(err, "the private key is not an RSA key (Entra client "
            "assertions use RS256 or PS256)");
    goto out;
  }
  if(X509_check_private_key(cert, k->pkey) != 1) {
    set_err(err, "the private key does not belong to the certificate");
    add_ssl_reason(err);
    goto out;
  }
  if(thumbprint(cert, EVP_sha1(), k->x5t, sizeof(k->x5t)) ||
     thumbprint(cert, EVP_sha256(), k->x5t_s256, sizeof(k->x5t_s256))) {
    set_err(err, "cannot compute the certificate thumbprint");
    add_ssl_reason(err);
    goto out;
  }
  *out = k;
  k = NULL;
  rc = 0;
out:
  ERR_clear_error();
  X509_free(cert);
  BIO_free(bio);
  jwt_key_destroy(k);
  return rc;
}

int
jwt_key_load(const char *path, const char *password, struct jwt_key **out,
             struct jwt_error *err)
{
  struct buf b;
  struct stat st;
  char chunk[4096];
  int fd = -1, rc;
  ssize_t n;

  if(err)
    err->text[0] = '\0';
  if(!path || !out)
    return ERR_INVAL;
  buf_init(&b, JWT_MAX_PEM_BYTES);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if(fd < 0) {
    rc = errno == ENOENT ? ERR_NOTFOUND : ERR_IO;
    set_err(err, "%s: %s", path, strerror(errno));
    goto out;
  }
  if(fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
    rc = ERR_IO;
    set_err(err, "%s: not a regular file", path);
    goto out;
  }
  /* One allocation of the right size, so that growth does not leave
     copies of the key behind in freed memory. */
  if(st.st_size > 0 && st.st_size <= JWT_MAX_PEM_BYTES &&
     buf_reserve(&b, (size_t)st.st_size)) {
    rc = ERR_NOMEM;
    goto out;
  }
  for(;;) {
    n = read(fd, chunk, sizeof(chunk));
    if(n < 0 && errno == EINTR)
      continue;
    if(n < 0) {
      rc = ERR_IO;
      set_err(err, "%s: %s", path, strerror(errno));
      goto out;
    }
    if(n == 0)
      break;
    rc = buf_append(&b, chunk, (size_t)n);
    if(rc) {
      set_err(err, "%s: larger than %d bytes", path, JWT_MAX_PEM_BYTES);
      goto out;
    }
  }
  rc = jwt_key_load_mem(b.data ? b.data : "", b.len, password, out, err);
  if(rc && err) {
    char tmp[sizeof(err->text)];

    /* Both parts are cut so that the reason survives a long path. */
    snprintf(tmp, sizeof(tmp), "%.100s: %.150s", path, err->text);
    memcpy(err->text, tmp, sizeof(tmp));
  }
out:
  if(fd >= 0)
    close(fd);
  OPENSSL_cleanse(chunk, sizeof(chunk));
  if(b.data)
    OPENSSL_cleanse(b.data, b.len);
  buf_free(&b);
  return rc;
}

void
jwt_key_destroy(struct jwt_key *k)
{
  if(!k)
    return;
  EVP_PKEY_free(k->pkey);
  free(k);
}

const char *
jwt_key_x5t(const struct jwt_key *k)
{
  return k->x5t;
}

const char *
jwt_key_x5t_s256(const struct jwt_key *k)
{
  return k->x5t_s256;
}

/* Appends base64url of p[0..n) to b. */
static int
append_b64(struct buf *b, const void *p, size_t n)
{
  size_t cap = n / 3 * 4 + 5, len;
  char *tmp = malloc(cap);
  int rc;

  if(!tmp)
    return ERR_NOMEM;
  len = jwt_base64url(p, n, tmp, cap);
  rc = buf_append(b, tmp, len);
  free(tmp);
  return rc;
}

/* Appends base64url of a JSON value's compact text to b. */
static int
append_json_b64(struct buf *b, json_t *v)
{
  char *text = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
  int rc;

  if(!text)
    return ERR_NOMEM;
  rc = append_b64(b, text, strlen(text));
  free(text);
  return rc;
}

int
jwt_client_assertion(const struct jwt_key *k, enum jwt_alg alg,
                     const char *client_id, const char *audience,
                     int64_t now, int64_t lifetime, char **out)
{
  json_t *hdr = NULL, *claims = NULL;
  EVP_MD_CTX *md = NULL;
  EVP_PKEY_CTX *pctx = NULL;
  unsigned char *sig = NULL;
  size_t siglen = 0;
  char jti[JWT_UUID_LEN + 1];
  struct buf b;
  int rc;

  buf_init(&b, 64 * 1024);
  if(!k || !client_id || !*client_id || !audience || !*audience || !out ||
     (alg != JWT_PS256 && alg != JWT_RS256))
    return ERR_INVAL;
  *out = NULL;
  if(lifetime <= 0)
    lifetime = JWT_DEFAULT_LIFETIME;
  rc = jwt_uuid(jti);
  if(rc)
    return rc;
  hdr = alg == JWT_PS256 ?
    json_pack("{s:s,s:s,s:s}", "alg", "PS256", "typ", "JWT", "x5t#S256",
              k->x5t_s256) :
    json_pack("{s:s,s:s,s:s}", "alg", "RS256", "typ", "JWT", "x5t", k->x5t);
  claims = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "aud", audience,
                     "iss", client_id, "sub", client_id, "jti", jti,
                     "nbf", (json_int_t)now, "exp",
                     (json_int_t)(now + lifetime));
  if(!hdr || !claims) {
    /* json_pack fails on NOMEM and on strings that are not UTF-8. */
    rc = ERR_INVAL;
    goto out;
  }
  rc = append_json_b64(&b, hdr);
  if(!rc)
    rc = buf_putc(&b, '.');
  if(!rc)
    rc = append_json_b64(&b, claims);
  if(rc)
    goto out;

  rc = ERR_AUTH;
  md = EVP_MD_CTX_new();
  if(!md) {
    rc = ERR_NOMEM;
    goto out;
  }
  if(EVP_DigestSignInit(md, &pctx, EVP_sha256(), NULL, k->pkey) != 1)
    goto out;
  if(alg == JWT_PS256 &&
     (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
    goto out;
  if(EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)b.data,
                    b.len) != 1)
    goto out;
  sig = malloc(siglen);
  if(!sig) {
    rc = ERR_NOMEM;
    goto out;
  }
  if(EVP_DigestSign(md, sig, &siglen, (const unsigned char *)b.data,
                    b.len) != 1)
    goto out;
  rc = buf_putc(&b, '.');
  if(!rc)
    rc = append_b64(&b, sig, siglen);
  if(rc)
    goto out;
  *out = buf_detach(&b, NULL);
  rc = 0;
out:
  ERR_clear_error();
  free(sig);
  EVP_MD_CTX_free(md);
  json_decref(hdr);
  json_decref(claims);
  buf_free(&b);
  return rc;
}
