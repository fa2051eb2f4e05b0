/*
 * test_cred.c: the credential provider without a token service: option
 * checks and method resolution at creation, and the request cycle against
 * a closed port (the error, the back-off, waiters, cancel and destroy).
 * The exchanges with a real token service are in
 * tests/integration/test_cred*.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "cred.h"
#include "err.h"
#include "http.h"
#include "log.h"

struct env {
  uv_loop_t loop;
  struct http_engine *http;
  char closed_url[64];   /* http://127.0.0.1:<a port nobody listens on> */
  int devnull;
};

static void
clear_env(void)
{
  static const char *const vars[] = {
    "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST", "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER", "IMDS_ENDPOINT"
  };

  for(size_t i = 0; i < sizeof(vars) / sizeof(*vars); i++)
    unsetenv(vars[i]);
}

static int
setup(void **state)
{
  struct env *e = calloc(1, sizeof(*e));
  struct sockaddr_in sa;
  socklen_t sl = sizeof(sa);
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
  close(fd);
  snprintf(e->closed_url, sizeof(e->closed_url), "http://127.0.0.1:%d",
           ntohs(sa.sin_port));
  assert_int_equal(uv_loop_init(&e->loop), 0);
  assert_int_equal(http_engine_create(&e->loop, NULL, &e->http), 0);
  clear_env();
  /* The expected errors are logged; keep them out of the test output. */
  e->devnull = open("/dev/null", O_WRONLY);
  log_set_fd(e->devnull);
  *state = e;
  return 0;
}

static int
teardown(void **state)
{
  struct env *e = *state;

  http_engine_destroy(e->http);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&e->loop), 0);
  log_set_fd(2);
  close(e->devnull);
  free(e);
  clear_env();
  log_secret_clear();
  return 0;
}

static void
test_method_names(void **state)
{
  enum cred_method m;

  (void)state;
  assert_int_equal(cred_method_parse("workload_identity", &m), 0);
  assert_int_equal(m, CRED_WORKLOAD_IDENTITY);
  assert_int_equal(cred_method_parse("managed_identity", &m), 0);
  assert_int_equal(m, CRED_MANAGED_IDENTITY);
  assert_int_equal(cred_method_parse("Default", &m), ERR_INVAL);
  assert_int_equal(cred_method_parse(NULL, &m), ERR_INVAL);
  assert_string_equal(cred_method_name(CRED_CLIENT_CERTIFICATE),
                      "client_certificate");
}

static void
test_config_errors(void **state)
{
  struct env *e = *state;
  struct cred_opts o;
  struct cred *c = NULL;

  memset(&o, 0, sizeof(o));
  o.method = CRED_CLIENT_SECRET;
  o.client_id = "app";
  o.client_secret = "secret-123456";
  /* No tenant. */
  assert_int_equal(cred_create(&e->loop, e->http, &o, &c), ERR_CONFIG);
  /* A tenant that would change the URL path. */
  o.tenant_id = "../evil";
  assert_int_equal(cred_create(&e->loop, e->http, &o, &c), ERR_CONFIG);
  o.tenant_id = "contoso.onmicrosoft.com";
  o.client_secret = NULL;
  assert_int_equal(cred_create(&e->loop, e->http, &o, &c), ERR_CONFIG);
  o.method = CRED_CLIENT_CERTIFICATE;
  o.certificate_file = "/nonexistent/cert.pem";
  assert_int_equal(cred_create(&e->loop, e->http, &o, &c), ERR_CONFIG);
  o.method = CRED_WORKLOAD_IDENTITY;
  assert_int_equal(cred_create(&e->loop, e->http, &o, &c), ERR_CONFIG);
  /* Two user-assigned selectors. */
  memset(&o, 0, sizeof(o));
  o.method = CRED_MANAGED_IDENTITY;
  o.mi_client_id = "a";
  o.mi_object_id = "b";
  assert_int_equal(cred_create(&e->loop, e->http, &o, &c), ERR_CONFIG);
  /* Azure Arc has no user-assigned identities. */
  setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:1/arc", 1);
  setenv("IMDS_ENDPOINT", "http://127.0.0.1:1", 1);
  o.mi_object_id = NULL;
  assert_int_equal(cred_create(&e->loop, e->http, &o, &c), ERR_CONFIG);
  assert_null(c);
  clear_env();
  assert_int_equal(cred_create(&e->loop, e->http, NULL, &c), ERR_INVAL);
}

static void
test_resolution(void **state)
{
  struct env *e = *state;
  struct cred_opts o;
  struct cred *c = NULL;

  memset(&o, 0, sizeof(o));
  o.arc_himds_path = "/nonexistent/himds";
  /* default: the environment's secret. */
  setenv("AZURE_TENANT_ID", "t1", 1);
  setenv("AZURE_CLIENT_ID", "c1", 1);
  setenv("AZURE_CLIENT_SECRET", "secret-abcdef", 1);
  assert_int_equal(cred_create(&e->loop, e->http, &o, &c), 0);
  assert_string_equal(cred_describe(c), "default: client_secret");
  cred_destroy(c);
  /* default without a secret or certificate: managed identity, user-
     assigned by AZURE_CLIENT_ID as the SDKs do. */
  unsetenv("AZURE_CLIENT_SECRET");
  assert_int_equal(cred_create(&e->loop, e->http, &o, &c), 0);
  assert_string_equal(cred_describe(c),
                      "default: managed_identity (IMDS, user-assigned)");
  cred_destroy(c);
  clear_env();
  assert_int_equal(cred_create(&e->loop, e->http, &o, &c), 0);
  assert_string_equal(cred_describe(c), "default: managed_identity (IMDS)");
  cred_destroy(c);
  /* App Service wins over Arc when both could apply. */
  setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi", 1);
  setenv("IDENTITY_HEADER", "hdr-value-123", 1);
  setenv("IMDS_ENDPOINT", "http://127.0.0.1:1", 1);
  o.method = CRED_MANAGED_IDENTITY;
  assert_int_equal(cred_create(&e->loop, e->http, &o, &c), 0);
  assert_string_equal(cred_describe(c), "managed_identity (App Service)");
  cred_destroy(c);
  unsetenv("IDENTITY_HEADER");
  assert_int_equal(cred_create(&e->loop, e->http, &o, &c), 0);
  assert_string_equal(cred_describe(c), "managed_identity (Azure Arc)");
  cred_destroy(c);
  clear_env();
}

struct answers {
  int n;
  int rc[8];
  char err[8][512];
};

static void
on_token(void *ud, int rc, const char *token, const char *err)
{
  struct answers *a = ud;

  assert_true(a->n < 8);
  assert_true(rc != 0 || token != NULL);
  a->rc[a->n] = rc;
  snprintf(a->err[a->n], sizeof(a->err[0]), "%s", err);
  a->n++;
}

static struct cred *
unreachable_cred(struct env *e)
{
  struct cred_opts o;
  struct cred *c = NULL;

  memset(&o, 0, sizeof(o));
  o.method = CRED_CLIENT_SECRET;
  o.tenant_id = "t1";
  o.client_id = "c1";
  o.client_secret = "secret-abcdef";
  o.authority_host = e->closed_url;
  o.backoff_base_ms = 60000;
  o.backoff_cap_ms = 60000;
  assert_int_equal(cred_create(&e->loop, e->http, &o, &c), 0);
  return c;
}

static void
test_unreachable_backs_off(void **state)
{
  struct env *e = *state;
  struct cred *c = unreachable_cred(e);
  struct answers a = { 0 }, b = { 0 };
  struct cred_stats st;

  /* Two callers share one request; both get the network error. */
  assert_int_equal(cred_get_token(c, on_token, &a), 0);
  assert_int_equal(cred_get_token(c, on_token, &a), 0);
  assert_int_equal(a.n, 0);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(a.n, 2);
  assert_int_equal(a.rc[0], ERR_NET);
  assert_non_null(strstr(a.err[0], "/t1/oauth2/v2.0/token failed"));
  assert_null(strstr(a.err[0], "secret-abcdef"));
  /* Within the back-off: the last error at once, no new request. */
  assert_int_equal(cred_get_token(c, on_token, &b), 0);
  assert_int_equal(b.n, 1);
  assert_int_equal(b.rc[0], ERR_NET);
  cred_get_stats(c, &st);
  assert_int_equal(st.requests, 1);
  assert_int_equal(st.failures, 1);
  assert_int_equal(st.expires_at_ms, 0);
  cred_destroy(c);
}

static void
test_destroy_and_cancel(void **state)
{
  struct env *e = *state;
  struct cred *c = unreachable_cred(e);
  struct answers a = { 0 }, b = { 0 };

  assert_int_equal(cred_get_token(c, on_token, &a), 0);
  assert_int_equal(cred_get_token(c, on_token, &b), 0);
  /* b goes away: it is never called. a is told of the shutdown. */
  cred_cancel(c, &b);
  cred_destroy(c);
  assert_int_equal(a.n, 1);
  assert_int_equal(a.rc[0], ERR_ABORTED);
  assert_int_equal(b.n, 0);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(b.n, 0);
  cred_destroy(NULL);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_method_names),
    cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
    cmocka_unit_test_setup_teardown(test_resolution, setup, teardown),
    cmocka_unit_test_setup_teardown(test_unreachable_backs_off, setup,
                                    teardown),
    cmocka_unit_test_setup_teardown(test_destroy_and_cancel, setup, teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
