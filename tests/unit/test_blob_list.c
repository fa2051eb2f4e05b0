/*
 * test_blob_list.c: the List Blobs parser over responses recorded from
 * Azurite and hand-written cases (tests/data/bloblist/README says which).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob_list.h"
#include "err.h"

/* 2026-11-30T01:02:18Z, the Last-Modified of the recorded blobs. */
#define T_RECORDED 1796000538

static char *
slurp(const char *name, size_t *len)
{
  char path[256];
  FILE *f;
  char *p;
  long n;

  snprintf(path, sizeof(path), "tests/data/bloblist/%s", name);
  f = fopen(path, "rb");
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  n = ftell(f);
  assert_true(n > 0);
  rewind(f);
  p = malloc((size_t)n + 1);
  assert_non_null(p);
  assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
  p[n] = '\0';
  fclose(f);
  *len = (size_t)n;
  return p;
}

static int
parse_file(const char *name, struct blob_page *page,
           struct blob_list_error *err)
{
  size_t len;
  char *xml = slurp(name, &len);
  int rc = blob_list_parse(xml, len, page, err);

  free(xml);
  return rc;
}

static void
test_recorded_page_with_marker_and_dirs(void **state)
{
  struct blob_page p;
  struct blob_list_error err;
  const char *names[] = { "big", "big/over-cap.bin", "in", "in/2026",
                          "in/2026/11", "in/2026/11/30" };
  const int dirs[] = { 1, 0, 1, 1, 1, 1 };

  (void)state;
  assert_int_equal(parse_file("azurite-page1.xml", &p, &err), 0);
  assert_int_equal(p.n, 6);
  for(size_t i = 0; i < p.n; i++) {
    assert_string_equal(p.entries[i].name, names[i]);
    assert_int_equal(p.entries[i].is_dir_marker, dirs[i]);
    assert_int_equal(p.entries[i].last_modified, T_RECORDED);
  }
  assert_string_equal(p.entries[1].etag, "0x2208F0B4653ECC0");
  assert_int_equal(p.entries[1].content_length, 3000);
  assert_int_equal(p.entries[0].content_length, 0);
  assert_null(p.entries[1].content_encoding);
  assert_string_equal(p.next_marker, "in/2026/11/30");
  blob_page_remove(&p, 0);
  assert_int_equal(p.n, 5);
  assert_string_equal(p.entries[0].name, "big/over-cap.bin");
  blob_page_remove(&p, 4);
  assert_int_equal(p.n, 4);
  assert_string_equal(p.entries[3].name, "in/2026/11");
  blob_page_remove(&p, 99);
  assert_int_equal(p.n, 4);
  blob_page_free(&p);
  assert_int_equal(p.n, 0);
  blob_page_free(NULL);
}

static void
test_recorded_escapes_and_unicode(void **state)
{
  struct blob_page p;

  (void)state;
  assert_int_equal(parse_file("azurite-special.xml", &p, NULL), 0);
  assert_int_equal(p.n, 3);
  assert_string_equal(p.entries[0].name,
                      "in/special/a b & <c> 'd' \"e\".json");
  assert_string_equal(p.entries[1].name, "in/special/plus+percent%25.json");
  assert_string_equal(p.entries[2].name, "in/special/\xc3\xa9t\xc3\xa9/"
                      "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e-\xc3\xbc.json");
  assert_int_equal(p.entries[2].content_length, 215);
  assert_int_equal(p.entries[2].is_dir_marker, 0);
  /* <NextMarker/>: the listing is complete. */
  assert_true(!p.next_marker || !p.next_marker[0]);
  blob_page_free(&p);
}

static void
test_recorded_empty_container(void **state)
{
  struct blob_page p;

  (void)state;
  assert_int_equal(parse_file("azurite-empty.xml", &p, NULL), 0);
  assert_int_equal(p.n, 0);
  assert_true(!p.next_marker || !p.next_marker[0]);
  blob_page_free(&p);
}

static void
test_recorded_gzip_blob(void **state)
{
  struct blob_page p;

  (void)state;
  assert_int_equal(parse_file("azurite-gz.xml", &p, NULL), 0);
  assert_int_equal(p.n, 2);
  assert_int_equal(p.entries[0].is_dir_marker, 1);
  assert_string_equal(p.entries[1].name, "in/gz/report.json.gz");
  assert_int_equal(p.entries[1].content_length, 166);
  blob_page_free(&p);
}

static void
test_encoded_names_and_directory_variants(void **state)
{
  struct blob_page p;

  (void)state;
  assert_int_equal(parse_file("handmade-encoded.xml", &p, NULL), 0);
  assert_int_equal(p.n, 4);
  assert_string_equal(p.entries[0].name, "in/bad\xef\xbf\xbe" "char.json");
  assert_string_equal(p.entries[0].content_encoding, "gzip");
  assert_int_equal(p.entries[0].content_length, 42);
  assert_int_equal(p.entries[0].is_dir_marker, 0);
  assert_int_equal(p.entries[1].is_dir_marker, 1);   /* ResourceType */
  assert_int_equal(p.entries[2].is_dir_marker, 1);   /* HDI_ISFOLDER True */
  assert_string_equal(p.entries[3].name, "in/not-a-dir \xe6\x97\xa5.json");
  assert_int_equal(p.entries[3].is_dir_marker, 0);   /* false */
  assert_int_equal(p.entries[3].last_modified, -1);  /* unparsable */
  assert_string_equal(p.next_marker, "2!96!MDAwMDM3IWluL2IuanNvbiEw&MDAwMjg-");
  blob_page_free(&p);
}

static void
test_malformed_reports_location(void **state)
{
  struct blob_page p;
  struct blob_list_error err;

  (void)state;
  assert_int_equal(parse_file("handmade-malformed.xml", &p, &err), ERR_PARSE);
  assert_int_equal(p.n, 0);
  assert_null(p.entries);
  assert_string_equal(err.text, "mismatched tag");
  assert_int_equal(err.line, 3);
  assert_int_equal(err.column, 30);   /* the name of the bad end tag */
}

static void
test_doctype_refused(void **state)
{
  struct blob_page p;
  struct blob_list_error err;

  (void)state;
  assert_int_equal(parse_file("handmade-doctype.xml", &p, &err), ERR_PARSE);
  assert_non_null(strstr(err.text, "document type"));
  assert_int_equal(err.line, 2);
}

static void
test_wrong_root_and_truncation(void **state)
{
  struct blob_page p;
  struct blob_list_error err;
  size_t len;
  char *xml;

  (void)state;
  assert_int_equal(parse_file("handmade-wrong-root.xml", &p, &err),
                   ERR_PARSE);
  assert_non_null(strstr(err.text, "EnumerationResults"));
  /* Every strict prefix of a valid page fails; none crashes or leaks. */
  xml = slurp("azurite-special.xml", &len);
  for(size_t n = 0; n < len - 1; n += 7) {
    assert_int_equal(blob_list_parse(xml, n, &p, &err), ERR_PARSE);
    assert_int_equal(p.n, 0);
  }
  free(xml);
  assert_int_equal(blob_list_parse("", 0, &p, &err), ERR_PARSE);
}

static void
test_caps(void **state)
{
  struct blob_page p;
  struct blob_list_error err;
  char *big, *q;
  const char *xml;
  size_t n = BLOB_LIST_MAX_FIELD + 100;

  (void)state;
  /* A name over the field cap. */
  big = malloc(n + 200);
  assert_non_null(big);
  q = big + sprintf(big, "<EnumerationResults><Blobs><Blob><Name>");
  memset(q, 'a', n);
  strcpy(q + n, "</Name></Blob></Blobs></EnumerationResults>");
  assert_int_equal(blob_list_parse(big, strlen(big), &p, &err), ERR_PARSE);
  assert_non_null(strstr(err.text, "cap"));
  free(big);
  /* Nesting beyond the depth limit. */
  big = malloc(64 * 3 + 64);
  assert_non_null(big);
  q = big + sprintf(big, "<EnumerationResults>");
  for(int i = 0; i < 40; i++)
    q += sprintf(q, "<a>");
  assert_int_equal(blob_list_parse(big, strlen(big), &p, &err), ERR_PARSE);
  assert_non_null(strstr(err.text, "deeply"));
  free(big);
  /* A Blob without a Name, and a non-numeric length: complete documents
     that fail for that reason alone. */
  xml = "<EnumerationResults><Blobs><Blob/></Blobs></EnumerationResults>";
  assert_int_equal(blob_list_parse(xml, strlen(xml), &p, &err), ERR_PARSE);
  assert_non_null(strstr(err.text, "no Name"));
  xml = "<EnumerationResults><Blobs><Blob><Name>x</Name><Properties>"
        "<Content-Length>12z</Content-Length></Properties></Blob></Blobs>"
        "</EnumerationResults>";
  assert_int_equal(blob_list_parse(xml, strlen(xml), &p, &err), ERR_PARSE);
  assert_non_null(strstr(err.text, "Content-Length"));
  /* Encoded names: empty (found by fuzzing), and one hiding a NUL. */
  xml = "<EnumerationResults><Blobs><Blob><Name Encoded=\"true\"></Name>"
        "</Blob></Blobs></EnumerationResults>";
  assert_int_equal(blob_list_parse(xml, strlen(xml), &p, &err), ERR_PARSE);
  assert_non_null(strstr(err.text, "no Name"));
  xml = "<EnumerationResults><Blobs><Blob><Name Encoded=\"true\">a%00b"
        "</Name></Blob></Blobs></EnumerationResults>";
  assert_int_equal(blob_list_parse(xml, strlen(xml), &p, &err), ERR_PARSE);
  assert_non_null(strstr(err.text, "NUL"));
}

static void
test_error_documents(void **state)
{
  char code[64], msg[256];
  size_t len;
  char *buf;
  const char *xml;

  (void)state;
  buf = slurp("azurite-error-permission.xml", &len);
  xml = buf;
  assert_int_equal(blob_error_parse(xml, len, code, sizeof(code), msg,
                                    sizeof(msg)), 0);
  assert_string_equal(code, "AuthorizationPermissionMismatch");
  assert_non_null(strstr(msg, "not authorized to perform this operation"));
  free(buf);
  xml = "<Error><Code>BlobNotFound</Code></Error>";
  assert_int_equal(blob_error_parse(xml, strlen(xml), code, sizeof(code), msg, sizeof(msg)),
                   0);
  assert_string_equal(code, "BlobNotFound");
  assert_string_equal(msg, "");
  /* Truncation to the caller's sizes. */
  xml = "<Error><Code>ContainerNotFound</Code></Error>";
  assert_int_equal(blob_error_parse(xml, strlen(xml), code, 5, msg, 1), 0);
  assert_string_equal(code, "Cont");
  assert_int_equal(blob_error_parse("<html>busy</html>", 17, code,
                                    sizeof(code), msg, sizeof(msg)),
                   ERR_PARSE);
  assert_string_equal(code, "");
  assert_int_equal(blob_error_parse(NULL, 0, code, sizeof(code), msg,
                                    sizeof(msg)), ERR_PARSE);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_recorded_page_with_marker_and_dirs),
    cmocka_unit_test(test_recorded_escapes_and_unicode),
    cmocka_unit_test(test_recorded_empty_container),
    cmocka_unit_test(test_recorded_gzip_blob),
    cmocka_unit_test(test_encoded_names_and_directory_variants),
    cmocka_unit_test(test_malformed_reports_location),
    cmocka_unit_test(test_doctype_refused),
    cmocka_unit_test(test_wrong_root_and_truncation),
    cmocka_unit_test(test_caps),
    cmocka_unit_test(test_error_documents),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
