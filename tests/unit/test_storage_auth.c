/*
 * test_storage_auth.c: Shared Key string-to-sign and signature, URL
 * encoding, HTTP dates and connection-string parsing.
 *
 * Provenance of the expected values:
 * - Canonicalized resources and the List Blobs string-to-sign are the
 *   worked examples of Microsoft's "Authorize with Shared Key" (Shared Key
 *   format for 2009-09-19 and later; the 2015-02-21 example date).
 * - The signatures were computed independently, once, with Python's hmac
 *   and base64 over the same strings with the emulator's public key
 *   (STORAGE_DEV_KEY), and are hard-coded here. Azurite accepting the
 *   signer's requests is the end-to-end check (test_storage_azurite.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "storage_auth.h"
#include "storage_conn.h"

static void
check_resource(const char *account, const char *url, const char *want)
{
  struct storage_header h[] = { { "x-ms-version", "2015-02-21" } };
  struct buf b;
  const char *res;

  buf_init(&b, 65536);
  assert_int_equal(storage_sk_string_to_sign(account, "GET", url, h, 1, &b),
                   0);
  /* The resource follows the last canonicalized header line. */
  res = strstr(b.data, "x-ms-version:2015-02-21\n");
  assert_non_null(res);
  assert_string_equal(res + strlen("x-ms-version:2015-02-21\n"), want);
  buf_free(&b);
}

static void
test_documented_canonical_resources(void **state)
{
  (void)state;
  check_resource("myaccount", "http://myaccount.blob.core.windows.net/"
                 "mycontainer?restype=container&comp=metadata",
                 "/myaccount/mycontainer\ncomp:metadata\nrestype:container");
  check_resource("myaccount", "http://myaccount.blob.core.windows.net/"
                 "mycontainer?restype=container&comp=list&include=snapshots"
                 "&include=metadata&include=uncommittedblobs",
                 "/myaccount/mycontainer\ncomp:list\ninclude:metadata,"
                 "snapshots,uncommittedblobs\nrestype:container");
  /* The account comes from the credentials, not the (secondary) host. */
  check_resource("myaccount", "https://myaccount-secondary.blob.core."
                 "windows.net/mycontainer/myblob",
                 "/myaccount/mycontainer/myblob");
  /* Path-style emulator URL: the account appears twice. */
  check_resource("devstoreaccount1", "http://127.0.0.1:10000/"
                 "devstoreaccount1/reports?restype=container&comp=list",
                 "/devstoreaccount1/devstoreaccount1/reports\ncomp:list\n"
                 "restype:container");
  /* Names are lower-cased, values decoded, upper-case names sorted too. */
  check_resource("a", "https://a.blob.core.windows.net/c?Prefix=in%2Fx%20y"
                 "&COMP=list", "/a/c\ncomp:list\nprefix:in/x y");
  /* An empty path is "/". */
  check_resource("a", "https://a.blob.core.windows.net?comp=list",
                 "/a/\ncomp:list");
}

static void
test_documented_list_blobs_string_to_sign(void **state)
{
  struct storage_header h[] = {
    { "x-ms-version", "2015-02-21" },
    { "x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT" },
  };
  const char *want = "GET\n\n\n\n\n\n\n\n\n\n\n\n"
    "x-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-version:2015-02-21\n"
    "/myaccount/mycontainer\ncomp:list\ninclude:metadata,snapshots,"
    "uncommittedblobs\nrestype:container";
  struct buf b;

  (void)state;
  buf_init(&b, 65536);
  assert_int_equal(storage_sk_string_to_sign("myaccount", "GET",
    "http://myaccount.blob.core.windows.net/mycontainer?restype=container"
    "&comp=list&include=snapshots&include=metadata&include=uncommittedblobs",
    h, 2, &b), 0);
  assert_string_equal(b.data, want);
  buf_free(&b);
}

static void
test_standard_headers_are_positional(void **state)
{
  struct storage_header h[] = {
    { "If-Match", "\"0x8DB\"" },
    { "X-MS-Version", "2023-11-03" },
    { "x-ms-date", "Mon, 30 Nov 2026 00:00:00 GMT" },
    { "Content-Length", "0" },
    { "User-Agent", "not signed" },
    { "x-ms-meta-note", "  a \t b   c  " },
  };
  struct buf b;

  (void)state;
  buf_init(&b, 65536);
  assert_int_equal(storage_sk_string_to_sign("acct", "PUT",
    "https://acct.blob.core.windows.net/c/b", h, 6, &b), 0);
  /* Content-Length 0 signs as empty; If-Match is the 8th header line;
     x-ms-* names lower-cased, sorted, values trimmed and folded. */
  assert_string_equal(b.data, "PUT\n\n\n\n\n\n\n\n\"0x8DB\"\n\n\n\n"
                      "x-ms-date:Mon, 30 Nov 2026 00:00:00 GMT\n"
                      "x-ms-meta-note:a b c\nx-ms-version:2023-11-03\n"
                      "/acct/c/b");
  buf_free(&b);
}

/*
 * Found by gcc -fanalyzer: with no x-ms-* header, or a URL whose query is
 * empty, the canonicalizers handed qsort a NULL array, which the C library
 * declares non-null (UBSan: nonnull-attribute). Neither list is sorted
 * when it has fewer than two entries now.
 */
static void
test_no_headers_and_empty_query(void **state)
{
  struct buf b;

  (void)state;
  buf_init(&b, 65536);
  assert_int_equal(storage_sk_string_to_sign("acct", "GET",
    "https://acct.blob.core.windows.net/c/b?", NULL, 0, &b), 0);
  assert_string_equal(b.data, "GET\n\n\n\n\n\n\n\n\n\n\n\n/acct/c/b");
  buf_free(&b);
}

static void
test_signature_known_values(void **state)
{
  unsigned char *key;
  size_t key_len;
  char sig[64];
  const char *sts = "GET\n\n\n\n\n\n\n\n\n\n\n\n"
    "x-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-version:2015-02-21\n"
    "/myaccount/mycontainer\ncomp:list\ninclude:metadata,snapshots,"
    "uncommittedblobs\nrestype:container";

  (void)state;
  assert_int_equal(storage_key_decode(STORAGE_DEV_KEY, &key, &key_len), 0);
  assert_int_equal(key_len, 64);
  assert_int_equal(storage_sk_signature(key, key_len, sts, strlen(sts), sig,
                                        sizeof(sig)), 0);
  assert_string_equal(sig, "qthaFu+XRMRab2FfKeut5XZl1/nvdAhqiaOupMDoYWg=");
  assert_int_equal(storage_sk_signature(key, key_len, sts, strlen(sts), sig,
                                        44), ERR_INVAL);
  free(key);
}

/*
 * A signer keyed once signs like the one-shot HMAC, every time: the keyed
 * state is copied per signature, never consumed (a second signature with
 * the same signer, after a different one, must still match).
 */
static void
test_signer_reuse(void **state)
{
  const char *sts = "GET\n\n\n\n\n\n\n\n\n\n\n\n"
    "x-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-version:2015-02-21\n"
    "/myaccount/mycontainer\ncomp:list\ninclude:metadata,snapshots,"
    "uncommittedblobs\nrestype:container";
  struct storage_signer *sg = NULL;
  unsigned char *key;
  size_t key_len;
  char sig[64], other[64];

  (void)state;
  assert_int_equal(storage_key_decode(STORAGE_DEV_KEY, &key, &key_len), 0);
  assert_int_equal(storage_signer_create(key, 0, &sg), ERR_INVAL);
  assert_null(sg);
  assert_int_equal(storage_signer_create(key, key_len, &sg), 0);
  memset(key, 0, key_len);      /* the signer keeps what it needs */
  free(key);
  for(int i = 0; i < 3; i++) {
    assert_int_equal(storage_signer_sign(sg, sts, strlen(sts), sig,
                                         sizeof(sig)), 0);
    assert_string_equal(sig, "qthaFu+XRMRab2FfKeut5XZl1/nvdAhqiaOupMDoYWg=");
    assert_int_equal(storage_signer_sign(sg, "x", 1, other, sizeof(other)),
                     0);
    assert_string_not_equal(other, sig);
  }
  assert_int_equal(storage_signer_sign(sg, sts, strlen(sts), sig, 44),
                   ERR_INVAL);
  assert_int_equal(storage_signer_sign(NULL, sts, strlen(sts), sig,
                                       sizeof(sig)), ERR_INVAL);
  storage_signer_destroy(sg);
  storage_signer_destroy(NULL);
}

static void
test_authorization_emulator_blob_and_list(void **state)
{
  struct storage_header get[] = {
    { "x-ms-date", "Mon, 30 Nov 2026 00:00:00 GMT" },
    { "x-ms-version", "2023-11-03" },
    { "If-Match", "\"0x8DB\"" },
  };
  struct buf name, url, auth;
  struct storage_signer *sg;
  unsigned char *key;
  size_t key_len;

  (void)state;
  assert_int_equal(storage_key_decode(STORAGE_DEV_KEY, &key, &key_len), 0);
  assert_int_equal(storage_signer_create(key, key_len, &sg), 0);
  buf_init(&name, 4096);
  buf_init(&url, 4096);
  buf_init(&auth, 4096);
  assert_int_equal(storage_url_encode("in/a b/\xc3\xa9t\xc3\xa9.json", 1,
                                      &name), 0);
  assert_string_equal(name.data, "in/a%20b/%C3%A9t%C3%A9.json");
  assert_int_equal(buf_printf(&url, "http://127.0.0.1:10000/devstoreaccount1"
                              "/reports/%s", name.data), 0);
  assert_int_equal(storage_sk_authorization("devstoreaccount1", sg, "GET",
                                            url.data, get, 3, &auth),
                   0);
  assert_string_equal(auth.data, "SharedKey devstoreaccount1:"
                      "48LzP9q5L70ZowWdHxHl4vvtfuDLi2t2mviJKpWIrow=");
  buf_reset(&auth);
  assert_int_equal(storage_sk_authorization("devstoreaccount1", sg,
    "GET", "http://127.0.0.1:10000/devstoreaccount1/reports?restype=container"
    "&comp=list&prefix=in%2F&marker=in%2F2026%2Fx%20y&maxresults=1000"
    "&include=metadata", get, 2, &auth), 0);
  assert_string_equal(auth.data, "SharedKey devstoreaccount1:"
                      "T84ffx+9UtnIQaRPTB/BIrbh81alOLuEQiuCyllx8R4=");
  buf_free(&name);
  buf_free(&url);
  buf_free(&auth);
  storage_signer_destroy(sg);
  free(key);
}

static void
test_key_decode_rejects_garbage(void **state)
{
  unsigned char *key;
  size_t len;

  (void)state;
  assert_int_equal(storage_key_decode("not base64!", &key, &len), ERR_CONFIG);
  assert_int_equal(storage_key_decode("abc", &key, &len), ERR_CONFIG);
  assert_int_equal(storage_key_decode("", &key, &len), ERR_CONFIG);
  assert_int_equal(storage_key_decode("ab=c", &key, &len), ERR_CONFIG);
  assert_null(key);
  assert_int_equal(storage_key_decode("YWJjZA==", &key, &len), 0);
  assert_int_equal(len, 4);
  assert_memory_equal(key, "abcd", 4);
  free(key);
}

static void
test_url_coding(void **state)
{
  struct buf b;

  (void)state;
  buf_init(&b, 4096);
  assert_int_equal(storage_url_encode("a+b&c=d/e~f", 0, &b), 0);
  assert_string_equal(b.data, "a%2Bb%26c%3Dd%2Fe~f");
  buf_reset(&b);
  assert_int_equal(storage_url_decode("a%2Bb+%zz%4", 11, &b), 0);
  assert_string_equal(b.data, "a+b+%zz%4");
  buf_free(&b);
}

static void
test_http_dates(void **state)
{
  char d[40];
  time_t t;

  (void)state;
  storage_http_date(784111777, d, sizeof(d));
  assert_string_equal(d, "Sun, 06 Nov 1994 08:49:37 GMT");
  assert_int_equal(storage_http_date_parse("Mon, 30 Nov 2026 00:09:34 GMT",
                                           &t), 0);
  assert_int_equal(t, 1795997374);
  assert_int_equal(storage_http_date_parse("Mon, 30 Nov 2026 00:09:34 UTC",
                                           &t), ERR_PARSE);
  assert_int_equal(storage_http_date_parse("Mon, 30 Foo 2026 00:09:34 GMT",
                                           &t), ERR_PARSE);
  assert_int_equal(storage_http_date_parse("garbage", &t), ERR_PARSE);
}

static void
test_conn_account_key(void **state)
{
  struct storage_conn c;
  char err[256];

  (void)state;
  assert_int_equal(storage_conn_parse("DefaultEndpointsProtocol=https;"
    "AccountName=stspectra;AccountKey=YWJjZA==;EndpointSuffix=core.windows.net",
    &c, err, sizeof(err)), 0);
  assert_string_equal(c.blob_endpoint, "https://stspectra.blob.core.windows.net");
  assert_string_equal(c.account, "stspectra");
  assert_string_equal(c.account_key, "YWJjZA==");
  assert_null(c.sas);
  storage_conn_free(&c);
  /* Sovereign cloud suffix, http, key case-insensitivity, trailing ';'. */
  assert_int_equal(storage_conn_parse("accountname=x;accountkey=YWJjZA==;"
    "endpointsuffix=core.chinacloudapi.cn;DefaultEndpointsProtocol=http;",
    &c, err, sizeof(err)), 0);
  assert_string_equal(c.blob_endpoint, "http://x.blob.core.chinacloudapi.cn");
  storage_conn_free(&c);
  storage_conn_free(NULL);
}

static void
test_conn_dev_storage(void **state)
{
  struct storage_conn c;
  char err[256];

  (void)state;
  assert_int_equal(storage_conn_parse("UseDevelopmentStorage=true", &c, err,
                                      sizeof(err)), 0);
  assert_string_equal(c.blob_endpoint, "http://127.0.0.1:10000/devstoreaccount1");
  assert_string_equal(c.account, "devstoreaccount1");
  assert_string_equal(c.account_key, STORAGE_DEV_KEY);
  storage_conn_free(&c);
  assert_int_equal(storage_conn_parse("UseDevelopmentStorage=true;BlobEndpoint="
    "http://127.0.0.1:41234/devstoreaccount1/", &c, err, sizeof(err)), 0);
  assert_string_equal(c.blob_endpoint, "http://127.0.0.1:41234/devstoreaccount1");
  storage_conn_free(&c);
  assert_int_equal(storage_conn_parse("UseDevelopmentStorage=false", &c, err,
                                      sizeof(err)), ERR_CONFIG);
}

static void
test_conn_sas_and_blob_endpoint(void **state)
{
  struct storage_conn c;
  char err[256];

  (void)state;
  assert_int_equal(storage_conn_parse("BlobEndpoint=https://acct.blob.core."
    "usgovcloudapi.net;SharedAccessSignature=sv=2023-11-03&sp=rl&sig=ab%3D%3D",
    &c, err, sizeof(err)), 0);
  assert_string_equal(c.blob_endpoint, "https://acct.blob.core.usgovcloudapi.net");
  assert_string_equal(c.account, "acct");
  assert_null(c.account_key);
  assert_string_equal(c.sas, "sv=2023-11-03&sp=rl&sig=ab%3D%3D");
  storage_conn_free(&c);
  /* Path-style endpoint: the account is the first path segment. */
  assert_int_equal(storage_conn_parse("BlobEndpoint=http://127.0.0.1:9/dev1;"
    "SharedAccessSignature=?sv=1&sig=x", &c, err, sizeof(err)), 0);
  assert_string_equal(c.account, "dev1");
  assert_string_equal(c.sas, "sv=1&sig=x");
  storage_conn_free(&c);
}

static void
test_conn_errors_name_the_key_not_the_value(void **state)
{
  struct storage_conn c;
  char err[256];

  (void)state;
  assert_int_equal(storage_conn_parse("", &c, err, sizeof(err)), ERR_CONFIG);
  assert_int_equal(storage_conn_parse("AccountName=a;AcountKey=SECRETVALUE",
                                      &c, err, sizeof(err)), ERR_CONFIG);
  assert_non_null(strstr(err, "AcountKey"));
  assert_null(strstr(err, "SECRETVALUE"));
  assert_int_equal(storage_conn_parse("AccountName=a", &c, err, sizeof(err)),
                   ERR_CONFIG);
  assert_non_null(strstr(err, "AccountKey or SharedAccessSignature"));
  assert_int_equal(storage_conn_parse("AccountKey=YWJjZA==", &c, err,
                                      sizeof(err)), ERR_CONFIG);
  assert_non_null(strstr(err, "AccountName"));
  assert_int_equal(storage_conn_parse("AccountName=a;AccountName=b;"
                                      "AccountKey=x", &c, err, sizeof(err)),
                   ERR_CONFIG);
  assert_non_null(strstr(err, "twice"));
  assert_int_equal(storage_conn_parse("garbage", &c, err, sizeof(err)),
                   ERR_CONFIG);
  assert_int_equal(storage_conn_parse("BlobEndpoint=ftp://x;"
                                      "SharedAccessSignature=s", &c, err,
                                      sizeof(err)), ERR_CONFIG);
  assert_int_equal(storage_conn_parse("DefaultEndpointsProtocol=gopher;"
                                      "AccountName=a;AccountKey=k", &c, err,
                                      sizeof(err)), ERR_CONFIG);
  assert_null(c.blob_endpoint);
}

/*
 * Found by fuzz_storage_conn: an endpoint without a host ("http://", whose
 * slashes were then stripped to "http:") and an empty AccountName
 * ("https://.blob.core.windows.net") were accepted. Names that would
 * change the host (a '/', '@' or '?' in AccountName or EndpointSuffix)
 * and user information in BlobEndpoint are refused too.
 */
static void
test_conn_endpoint_must_name_a_host(void **state)
{
  static const char *const bad[] = {
    "UseDevelopmentStorage=true;BlobEndpoint=http://",
    "BlobEndpoint=https:///;SharedAccessSignature=sv=1&sig=x",
    "BlobEndpoint=https://?x;SharedAccessSignature=sv=1&sig=x",
    ("BlobEndpoint=https://user:pw@acct.blob.core.windows.net;"
     "SharedAccessSignature=sv=1&sig=x"),
    "AccountName=;AccountKey=YWJjZA==",
    "AccountName=evil.example/x?;AccountKey=YWJjZA==",
    "AccountName=a@b;AccountKey=YWJjZA==",
    "AccountName=a;AccountKey=YWJjZA==;EndpointSuffix=evil.example/x#",
    "BlobEndpoint=http://:10000/acct;SharedAccessSignature=sv=1&sig=x",
    "BlobEndpoint=http://[]/acct;SharedAccessSignature=sv=1&sig=x",
    "BlobEndpoint=http://a b/acct;SharedAccessSignature=sv=1&sig=x",
    /* A SAS of only its '?' is empty: requests would go unsigned. */
    "BlobEndpoint=http://127.0.0.1:1/acct;SharedAccessSignature=?",
    "BlobEndpoint=http://127.0.0.1:1/acct;SharedAccessSignature=???",
  };
  struct storage_conn c;
  char err[256];

  (void)state;
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    err[0] = '\0';
    assert_int_equal(storage_conn_parse(bad[i], &c, err, sizeof(err)),
                     ERR_CONFIG);
    assert_null(c.blob_endpoint);
    assert_true(err[0] != '\0');
    /* The message names the key, not the value. */
    assert_null(strstr(err, "YWJjZA=="));
    assert_null(strstr(err, "evil"));
  }
  /* Every leading '?' goes (fuzz_storage_conn: "??sv=..." kept one). */
  assert_int_equal(storage_conn_parse("BlobEndpoint=http://127.0.0.1:1/a;"
                                      "SharedAccessSignature=??sv=1&sig=x",
                                      &c, err, sizeof(err)), 0);
  assert_string_equal(c.sas, "sv=1&sig=x");
  storage_conn_free(&c);
  /* An emulator account with digits and a suffix with a port-free host
     are still fine. */
  assert_int_equal(storage_conn_parse("AccountName=dev1Acct;AccountKey="
                                      "YWJjZA==;EndpointSuffix=core.windows"
                                      "-int.net", &c, err, sizeof(err)), 0);
  assert_string_equal(c.blob_endpoint,
                      "https://dev1Acct.blob.core.windows-int.net");
  storage_conn_free(&c);
}

static void
test_account_from_endpoint(void **state)
{
  char *a;

  (void)state;
  a = storage_conn_account_from_endpoint("https://st1.blob.core.windows.net");
  assert_string_equal(a, "st1");
  free(a);
  a = storage_conn_account_from_endpoint("http://localhost:10000/devstoreaccount1");
  assert_string_equal(a, "devstoreaccount1");
  free(a);
  a = storage_conn_account_from_endpoint("http://[::1]:10000/acc/");
  assert_string_equal(a, "acc");
  free(a);
  assert_null(storage_conn_account_from_endpoint("http://127.0.0.1:10000"));
  assert_null(storage_conn_account_from_endpoint("nourl"));
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_documented_canonical_resources),
    cmocka_unit_test(test_documented_list_blobs_string_to_sign),
    cmocka_unit_test(test_standard_headers_are_positional),
    cmocka_unit_test(test_no_headers_and_empty_query),
    cmocka_unit_test(test_signature_known_values),
    cmocka_unit_test(test_signer_reuse),
    cmocka_unit_test(test_authorization_emulator_blob_and_list),
    cmocka_unit_test(test_key_decode_rejects_garbage),
    cmocka_unit_test(test_url_coding),
    cmocka_unit_test(test_http_dates),
    cmocka_unit_test(test_conn_account_key),
    cmocka_unit_test(test_conn_dev_storage),
    cmocka_unit_test(test_conn_sas_and_blob_endpoint),
    cmocka_unit_test(test_conn_errors_name_the_key_not_the_value),
    cmocka_unit_test(test_conn_endpoint_must_name_a_host),
    cmocka_unit_test(test_account_from_endpoint),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
