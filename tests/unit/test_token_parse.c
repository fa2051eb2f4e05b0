/*
 * test_token_parse.c: token answers of Entra ID, IMDS, App Service and Arc,
 * their error documents, and that no token leaks into an error text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "token_parse.h"

#define NOW 1795996800  /* 2026-11-30T00:00:00Z */

static int
parse(const char *body, struct token_result *r, struct token_error *e)
{
  return token_parse(body, strlen(body), NOW, r, e);
}

static void
test_entra_success(void **state)
{
  struct token_result r;
  struct token_error e;

  (void)state;
  assert_int_equal(parse("{\"token_type\":\"Bearer\",\"expires_in\":3599,"
                         "\"ext_expires_in\":3599,\"access_token\":\"eyJ.a.b\"}",
                         &r, &e), 0);
  assert_string_equal(r.access_token, "eyJ.a.b");
  assert_int_equal(r.expires_at, NOW + 3599);
  assert_int_equal(r.lifetime, 3599);
  assert_int_equal(r.refresh_at, 0);
  token_result_free(&r);
  assert_null(r.access_token);
}

static void
test_imds_strings(void **state)
{
  struct token_result r;

  (void)state;
  /* IMDS sends both as strings; expires_in wins. */
  assert_int_equal(parse("{\"access_token\":\"tok123\",\"client_id\":\"c\","
                         "\"expires_in\":\"86399\",\"expires_on\":\"1\","
                         "\"resource\":\"https://monitor.azure.com/\","
                         "\"token_type\":\"Bearer\"}", &r, NULL), 0);
  assert_int_equal(r.expires_at, NOW + 86399);
  token_result_free(&r);
  /* Only expires_on, as a string of epoch seconds. */
  assert_int_equal(parse("{\"access_token\":\"tok123\",\"expires_on\":"
                         "\"1796000400\",\"token_type\":\"bearer\"}", &r, NULL), 0);
  assert_int_equal(r.expires_at, 1796000400);
  assert_int_equal(r.lifetime, 3600);
  token_result_free(&r);
  /* expires_on as a number and as RFC 3339 with an offset. */
  assert_int_equal(parse("{\"access_token\":\"t\",\"expires_on\":1795996860}",
                         &r, NULL), 0);
  assert_int_equal(r.lifetime, 60);
  token_result_free(&r);
  assert_int_equal(parse("{\"access_token\":\"t\",\"expires_on\":"
                         "\"2026-11-30T01:30:00.25+01:00\"}", &r, NULL), 0);
  assert_int_equal(r.expires_at, NOW + 1800);
  token_result_free(&r);
  assert_int_equal(parse("{\"access_token\":\"t\",\"expires_in\":\"60.9\"}",
                         &r, NULL), 0);
  assert_int_equal(r.lifetime, 60);
  token_result_free(&r);
  assert_int_equal(parse("{\"access_token\":\"t\",\"expires_in\":60.9}",
                         &r, NULL), 0);
  assert_int_equal(r.lifetime, 60);
  token_result_free(&r);
}

static void
test_refresh_in(void **state)
{
  struct token_result r;

  (void)state;
  assert_int_equal(parse("{\"access_token\":\"t\",\"expires_in\":7200,"
                         "\"refresh_in\":\"3600\"}", &r, NULL), 0);
  assert_int_equal(r.refresh_at, NOW + 3600);
  token_result_free(&r);
  /* A refresh_in beyond the lifetime is ignored. */
  assert_int_equal(parse("{\"access_token\":\"t\",\"expires_in\":100,"
                         "\"refresh_in\":200}", &r, NULL), 0);
  assert_int_equal(r.refresh_at, 0);
  token_result_free(&r);
}

static void
test_entra_error(void **state)
{
  struct token_result r;
  struct token_error e;

  (void)state;
  assert_int_equal(parse("{\"error\":\"invalid_client\",\"error_description\":"
                         "\"AADSTS7000215: Invalid client secret provided.\\r\\n"
                         "Trace ID: 1\",\"error_codes\":[7000215]}", &r, &e),
                   ERR_AUTH);
  assert_string_equal(e.code, "invalid_client");
  /* Control characters are folded so the text stays one log line. */
  assert_string_equal(e.text, "AADSTS7000215: Invalid client secret "
                      "provided.  Trace ID: 1");
  assert_null(r.access_token);
}

static void
test_other_error_shapes(void **state)
{
  struct token_result r;
  struct token_error e;

  (void)state;
  assert_int_equal(parse("{\"error\":{\"code\":\"Unauthorized\",\"message\":"
                         "\"no identity\"}}", &r, &e), ERR_AUTH);
  assert_string_equal(e.code, "Unauthorized");
  assert_string_equal(e.text, "no identity");
  assert_int_equal(parse("{\"statusCode\":400,\"message\":\"Unable to load "
                         "the proper Managed Identity.\",\"correlationId\":"
                         "\"x\"}", &r, &e), ERR_AUTH);
  assert_string_equal(e.code, "");
  assert_string_equal(e.text, "Unable to load the proper Managed Identity.");
  assert_int_equal(parse("{\"error\":\"invalid_request\"}", &r, &e), ERR_AUTH);
  assert_string_equal(e.text, "(no description)");
}

static void
test_error_scrubbed(void **state)
{
  struct token_result r;
  struct token_error e;

  (void)state;
  assert_int_equal(log_secret_add("s3cr3t-client-secret"), 0);
  assert_int_equal(parse("{\"error\":\"invalid_client\",\"error_description\":"
                         "\"bad s3cr3t-client-secret here\"}", &r, &e), ERR_AUTH);
  assert_string_equal(e.text, "bad *** here");
  log_secret_clear();
}

static void
test_long_description_cut_at_char(void **state)
{
  char body[2000];
  struct token_result r;
  struct token_error e;
  size_t n;

  (void)state;
  n = (size_t)snprintf(body, sizeof(body), "{\"error\":\"x\","
                       "\"error_description\":\"");
  /* 'a' then many three-byte characters: a naive cut splits one. */
  body[n++] = 'a';
  while(n < sizeof(body) - 10) {
    memcpy(body + n, "\xe2\x82\xac", 3);
    n += 3;
  }
  memcpy(body + n, "\"}", 3);
  assert_int_equal(parse(body, &r, &e), ERR_AUTH);
  n = strlen(e.text);
  assert_true(n < sizeof(e.text));
  assert_int_equal((n - 1) % 3, 0);
}

static void
test_invalid_bodies(void **state)
{
  struct token_result r;
  struct token_error e;

  (void)state;
  assert_int_equal(parse("", &r, &e), ERR_PARSE);
  assert_int_equal(parse("[1]", &r, &e), ERR_PARSE);
  assert_string_equal(e.text, "token response is not a JSON object");
  assert_int_equal(parse("{\"expires_in\":5}", &r, &e), ERR_PARSE);
  assert_int_equal(parse("{\"access_token\":\"\",\"expires_in\":5}", &r, &e),
                   ERR_PARSE);
  assert_int_equal(parse("{\"access_token\":\"t\"}", &r, &e), ERR_PARSE);
  assert_string_equal(e.text, "token response has neither expires_in nor "
                      "expires_on");
  assert_int_equal(parse("{\"access_token\":\"t\",\"expires_in\":0}", &r, &e),
                   ERR_PARSE);
  assert_int_equal(parse("{\"access_token\":\"t\",\"expires_in\":-5}", &r, &e),
                   ERR_PARSE);
  assert_int_equal(parse("{\"access_token\":\"t\",\"expires_in\":\"5s\"}",
                         &r, &e), ERR_PARSE);
  assert_int_equal(parse("{\"access_token\":\"t\",\"expires_in\":1e300}",
                         &r, &e), ERR_PARSE);
  assert_int_equal(parse("{\"access_token\":\"t\",\"expires_on\":\"1\"}",
                         &r, &e), ERR_PARSE);
  assert_string_equal(e.text, "expires_on is in the past");
  assert_int_equal(parse("{\"access_token\":\"t\",\"expires_on\":"
                         "\"2026-13-30T00:00:00Z\"}", &r, &e), ERR_PARSE);
  assert_int_equal(parse("{\"access_token\":\"t\",\"expires_in\":5,"
                         "\"token_type\":\"pop\"}", &r, &e), ERR_PARSE);
  assert_int_equal(parse("{\"access_token\":\"a b\",\"expires_in\":5}", &r, &e),
                   ERR_PARSE);
  assert_int_equal(parse("{\"access_token\":\"a\\r\\nX-Evil: 1\","
                         "\"expires_in\":5}", &r, &e), ERR_PARSE);
  assert_int_equal(parse("{\"access_token\":\"t\",\"access_token\":\"u\","
                         "\"expires_in\":5}", &r, &e), ERR_PARSE);
  assert_null(r.access_token);
}

static void
test_syntax_error_hides_token(void **state)
{
  struct token_result r;
  struct token_error e;

  (void)state;
  /* A truncated success body: the parser's excerpt would show the token. */
  assert_int_equal(parse("{\"token_type\":\"Bearer\",\n\"access_token\":"
                         "\"eyJSECRETPART", &r, &e), ERR_PARSE);
  assert_null(strstr(e.text, "SECRET"));
  assert_null(strstr(e.text, "eyJ"));
  assert_int_equal(e.line, 2);
  assert_true(e.column > 0);
  /* A wrong type next to a token: the text names the field only. */
  assert_int_equal(parse("{\"access_token\":\"eyJSECRETPART\","
                         "\"expires_in\":{}}", &r, &e), ERR_PARSE);
  assert_null(strstr(e.text, "SECRET"));
  assert_non_null(strstr(e.text, "expires_in"));
}

static void
test_token_too_long(void **state)
{
  static char body[TOKEN_MAX_LEN + 100];
  struct token_result r;
  size_t n;

  (void)state;
  n = (size_t)snprintf(body, sizeof(body), "{\"expires_in\":5,"
                       "\"access_token\":\"");
  memset(body + n, 'a', TOKEN_MAX_LEN + 1);
  n += TOKEN_MAX_LEN + 1;
  memcpy(body + n, "\"}", 3);
  assert_int_equal(parse(body, &r, NULL), ERR_TOOBIG);
  /* Exactly at the cap is accepted. */
  memcpy(body + n - 1, "\"}", 3);
  assert_int_equal(parse(body, &r, NULL), 0);
  assert_int_equal(strlen(r.access_token), TOKEN_MAX_LEN);
  token_result_free(&r);
}

static void
test_not_nul_terminated(void **state)
{
  const char body[] = "{\"access_token\":\"t\",\"expires_in\":9}garbage";
  struct token_result r;

  (void)state;
  assert_int_equal(token_parse(body, strlen(body) - 7, NOW, &r, NULL), 0);
  assert_int_equal(r.lifetime, 9);
  token_result_free(&r);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_entra_success),
    cmocka_unit_test(test_imds_strings),
    cmocka_unit_test(test_refresh_in),
    cmocka_unit_test(test_entra_error),
    cmocka_unit_test(test_other_error_shapes),
    cmocka_unit_test(test_error_scrubbed),
    cmocka_unit_test(test_long_description_cut_at_char),
    cmocka_unit_test(test_invalid_bodies),
    cmocka_unit_test(test_syntax_error_hides_token),
    cmocka_unit_test(test_token_too_long),
    cmocka_unit_test(test_not_nul_terminated),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
