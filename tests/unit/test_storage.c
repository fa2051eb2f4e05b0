/*
 * test_storage.c: the storage client's retry policy, Entra ID token flow,
 * paging and configuration errors, against a scripted HTTP responder that
 * the test forks on 127.0.0.1:0 (one connection at a time, keep-alive).
 *
 * The responder's behaviour is chosen per test by the first path segment
 * ("/MODE/..." is the container name):
 *   flaky    503, 503, then a one-blob listing
 *   down     500 always
 *   entra    401 unless "Authorization: Bearer tok2", then a listing
 *   paged    page 1 (a file, a directory marker, a .txt) with NextMarker
 *            "m1", then page 2 (one file) when marker=m1 is asked
 *   loop     a page whose NextMarker is always "same"
 *   slow     503 always (for cancel during the backoff wait)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "http.h"
#include "storage.h"

static pid_t server_pid = -1;
static int server_port;

#define BLOB(n, len, extra) \
  "<Blob><Name>" n "</Name><Properties><Last-Modified>Mon, 30 Nov 2026 " \
  "00:00:00 GMT</Last-Modified><Etag>0x1</Etag><Content-Length>" #len \
  "</Content-Length></Properties>" extra "</Blob>"
#define LISTING(blobs, marker) \
  "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults><Blobs>" \
  blobs "</Blobs><NextMarker>" marker "</NextMarker></EnumerationResults>"

static void
reply(int fd, int status, const char *extra_headers, const char *body)
{
  char head[512];
  int n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: "
                   "%zu\r\n%s\r\n", status, strlen(body), extra_headers);

  if(write(fd, head, (size_t)n) < 0 || write(fd, body, strlen(body)) < 0)
    return;
}

static void
serve(int lfd)
{
  static char req[65536];
  int count = 0;

  for(;;) {
    int fd = accept(lfd, NULL, NULL);

    if(fd < 0)
      continue;
    for(;;) {
      size_t len = 0;
      char path[1024] = "";
      ssize_t n;

      while(!strstr(req, "\r\n\r\n") || len == 0) {
        n = read(fd, req + len, sizeof(req) - 1 - len);
        if(n <= 0)
          goto next;
        len += (size_t)n;
        req[len] = '\0';
      }
      count++;
      sscanf(req, "%*s %1023s", path);
      if(strstr(path, "/flaky")) {
        if(count <= 2)
          reply(fd, 503, "x-ms-error-code: ServerBusy\r\n", "");
        else
          reply(fd, 200, "", LISTING(BLOB("a.json", 5, ""), ""));
      }
      else if(strstr(path, "/down"))
        reply(fd, 500, "", "<Error><Code>InternalError</Code><Message>"
              "boom</Message></Error>");
      else if(strstr(path, "/entra")) {
        if(strstr(req, "\r\nAuthorization: Bearer tok2\r\n"))
          reply(fd, 200, "", LISTING(BLOB("e.json", 1, ""), ""));
        else
          reply(fd, 401, "x-ms-error-code: InvalidAuthenticationInfo\r\n",
                "");
      }
      else if(strstr(path, "/paged")) {
        if(strstr(path, "marker=m1"))
          reply(fd, 200, "", LISTING(BLOB("b.json", 2, ""), ""));
        else
          reply(fd, 200, "", LISTING(BLOB("a.json", 1, "")
            BLOB("dir", 0, "<Metadata><hdi_isfolder>true</hdi_isfolder>"
                 "</Metadata>") BLOB("c.txt", 3, ""), "m1"));
      }
      else if(strstr(path, "/loop"))
        reply(fd, 200, "", LISTING(BLOB("a.json", 1, ""), "same"));
      else
        reply(fd, 503, "", "");
      req[0] = '\0';
    }
next:
    req[0] = '\0';
    close(fd);
  }
}

static void
kill_server(void)
{
  if(server_pid > 0) {
    kill(server_pid, SIGKILL);
    waitpid(server_pid, NULL, 0);
    server_pid = -1;
  }
}

/* Forks a fresh responder per test so that its request count restarts. */
static void
fork_server(void)
{
  struct sockaddr_in sa;
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

  assert_true(fd >= 0);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = 0;
  {
    socklen_t sl = sizeof(sa);

    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
  }
  server_port = ntohs(sa.sin_port);
  kill_server();   /* one left behind by a failed test */
  server_pid = fork();
  assert_true(server_pid >= 0);
  if(server_pid == 0) {
    /* Never outlive the test (a failed assertion skips kill_server), so
       a test runner reading our stdout is never kept waiting. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    serve(fd);
  }
  close(fd);
}

struct fx {
  uv_loop_t loop;
  struct http_engine *http;
  struct storage *s;
  char endpoint[64];
};

static void
fx_init(struct fx *f, struct storage_opts *o, const char *container)
{
  char err[256];

  fork_server();
  memset(f, 0, sizeof(*f));
  snprintf(f->endpoint, sizeof(f->endpoint), "http://127.0.0.1:%d/acct",
           server_port);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  assert_int_equal(http_engine_create(&f->loop, NULL, &f->http), 0);
  o->endpoint = f->endpoint;
  o->container = container;
  o->backoff_base_ms = 10;
  o->backoff_cap_ms = 20;
  assert_int_equal(storage_create(f->http, &f->loop, o, &f->s, err,
                                  sizeof(err)), 0);
}

static void
fx_done(struct fx *f)
{
  storage_destroy(f->s);
  http_engine_destroy(f->http);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  kill_server();
}

struct out {
  int calls;
  struct storage_result res;
  size_t n;
  char names[256];
  int pages;
};

static void
on_page(const struct storage_result *res, struct blob_page *page, void *ud)
{
  struct out *o = ud;

  o->calls++;
  o->res = *res;
  o->n = page ? page->n : 0;
}

static int
on_all_page(void *ud, struct blob_page *page)
{
  struct out *o = ud;

  o->pages++;
  for(size_t i = 0; i < page->n; i++) {
    strcat(o->names, page->entries[i].name);
    strcat(o->names, ";");
  }
  return 0;
}

static void
on_all_done(const struct storage_result *res, void *ud)
{
  struct out *o = ud;

  o->calls++;
  o->res = *res;
}

static void
run_until(struct fx *f, struct out *o)
{
  while(o->calls == 0)
    uv_run(&f->loop, UV_RUN_ONCE);
}

static void
test_retries_then_succeeds(void **state)
{
  struct storage_opts o = { 0 };
  struct out out = { 0 };
  struct fx f;

  (void)state;
  o.auth = STORAGE_AUTH_SAS;
  o.sas_token = "?sv=1&sig=abcdefgh";
  fx_init(&f, &o, "flaky");
  assert_int_equal(storage_list_page(f.s, NULL, NULL, 0, on_page, &out,
                                     NULL), 0);
  run_until(&f, &out);
  assert_int_equal(out.res.rc, 0);
  assert_int_equal(out.n, 1);
  fx_done(&f);
}

static void
test_gives_up_after_max_attempts(void **state)
{
  struct storage_opts o = { 0 };
  struct out out = { 0 };
  struct fx f;

  (void)state;
  o.auth = STORAGE_AUTH_SAS;
  o.sas_token = "sv=1&sig=abcdefgh";
  o.max_attempts = 2;
  fx_init(&f, &o, "down");
  assert_int_equal(storage_list_page(f.s, NULL, NULL, 0, on_page, &out,
                                     NULL), 0);
  run_until(&f, &out);
  assert_int_equal(out.res.rc, ERR_AGAIN);
  assert_int_equal(out.res.status, 500);
  assert_string_equal(out.res.code, "InternalError");
  assert_non_null(strstr(out.res.message, "after 2 attempts: boom"));
  assert_null(strstr(out.res.message, "abcdefgh"));
  fx_done(&f);
}

/* A token provider that hands out tok1, then tok2 after an invalidate. */
struct tokens {
  int gets;
  int invalidations;
  int fail;
};

static int
tok_get(void *ud, storage_token_cb cb, void *req)
{
  struct tokens *t = ud;

  t->gets++;
  if(t->fail) {
    cb(req, ERR_AUTH, NULL, "AADSTS700016: application not found");
    return 0;
  }
  cb(req, 0, t->invalidations ? "tok2" : "tok1", NULL);
  return 0;
}

static void
tok_invalidate(void *ud)
{
  ((struct tokens *)ud)->invalidations++;
}

static void
test_entra_refreshes_token_once_on_401(void **state)
{
  struct storage_opts o = { 0 };
  struct tokens t = { 0 };
  struct out out = { 0 };
  struct fx f;

  (void)state;
  o.auth = STORAGE_AUTH_ENTRA;
  o.token = (struct storage_token_provider){ tok_get, tok_invalidate, &t };
  fx_init(&f, &o, "entra");
  assert_string_equal(storage_auth_name(f.s), "Entra ID");
  assert_int_equal(storage_list_page(f.s, NULL, NULL, 0, on_page, &out,
                                     NULL), 0);
  run_until(&f, &out);
  assert_int_equal(out.res.rc, 0);
  assert_int_equal(out.n, 1);
  assert_int_equal(t.gets, 2);
  assert_int_equal(t.invalidations, 1);
  fx_done(&f);
}

static void
test_entra_token_failure_is_auth_error(void **state)
{
  struct storage_opts o = { 0 };
  struct tokens t = { 0, 0, 1 };
  struct out out = { 0 };
  struct fx f;

  (void)state;
  o.auth = STORAGE_AUTH_ENTRA;
  o.token = (struct storage_token_provider){ tok_get, tok_invalidate, &t };
  fx_init(&f, &o, "entra");
  assert_int_equal(storage_list_page(f.s, NULL, NULL, 0, on_page, &out,
                                     NULL), 0);
  run_until(&f, &out);
  assert_int_equal(out.res.rc, ERR_AUTH);
  assert_non_null(strstr(out.res.message, "AADSTS700016"));
  assert_non_null(strstr(out.res.message, "storage.azure.com"));
  fx_done(&f);
}

static void
test_list_all_pages_and_filters(void **state)
{
  const char *suffixes[] = { ".json" };
  struct storage_list_filter flt = { NULL, suffixes, 1, 0 };
  struct storage_opts o = { 0 };
  struct out out = { 0 };
  struct fx f;

  (void)state;
  o.auth = STORAGE_AUTH_SHARED_KEY;
  o.account = "acct";
  o.account_key = "YWJjZA==";
  fx_init(&f, &o, "paged");
  assert_int_equal(storage_list_all(f.s, &flt, on_all_page, on_all_done, &out,
                                    NULL), 0);
  run_until(&f, &out);
  assert_int_equal(out.res.rc, 0);
  assert_int_equal(out.pages, 2);
  assert_string_equal(out.names, "a.json;b.json;");
  fx_done(&f);
}

static void
test_list_all_detects_a_stuck_marker(void **state)
{
  struct storage_opts o = { 0 };
  struct out out = { 0 };
  struct fx f;

  (void)state;
  o.auth = STORAGE_AUTH_SAS;
  o.sas_token = "sig=abcdefgh";
  fx_init(&f, &o, "loop");
  assert_int_equal(storage_list_all(f.s, NULL, on_all_page, on_all_done, &out,
                                    NULL), 0);
  run_until(&f, &out);
  assert_int_equal(out.res.rc, ERR_PARSE);
  assert_non_null(strstr(out.res.message, "does not advance"));
  assert_int_equal(out.pages, 1);   /* the repeated page is not delivered */
  fx_done(&f);
}

static void
on_cancel_timer(uv_timer_t *t)
{
  storage_cancel(t->data);
  uv_close((uv_handle_t *)t, NULL);
}

static void
test_cancel_during_backoff(void **state)
{
  struct storage_opts o = { 0 };
  struct out out = { 0 };
  struct storage_op *op;
  uv_timer_t t;
  struct fx f;

  (void)state;
  o.auth = STORAGE_AUTH_SAS;
  o.sas_token = "sig=abcdefgh";
  o.max_attempts = 1000;
  fx_init(&f, &o, "slow");
  assert_int_equal(storage_list_page(f.s, NULL, NULL, 0, on_page, &out, &op),
                   0);
  uv_timer_init(&f.loop, &t);
  t.data = op;
  uv_timer_start(&t, on_cancel_timer, 100, 0);
  run_until(&f, &out);
  assert_int_equal(out.calls, 1);
  assert_int_equal(out.res.rc, ERR_ABORTED);
  fx_done(&f);
}

static void
test_destroy_aborts_inflight(void **state)
{
  struct storage_opts o = { 0 };
  struct out out = { 0 };
  struct fx f;

  (void)state;
  o.auth = STORAGE_AUTH_SAS;
  o.sas_token = "sig=abcdefgh";
  fx_init(&f, &o, "slow");
  assert_int_equal(storage_list_page(f.s, NULL, NULL, 0, on_page, &out,
                                     NULL), 0);
  uv_run(&f.loop, UV_RUN_NOWAIT);
  fx_done(&f);
  assert_int_equal(out.calls, 1);
  assert_int_equal(out.res.rc, ERR_ABORTED);
}

static void
test_config_errors(void **state)
{
  struct storage_opts o = { 0 };
  struct http_engine *http;
  struct storage *s;
  uv_loop_t loop;
  char err[256];

  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(http_engine_create(&loop, NULL, &http), 0);
  o.endpoint = "https://acct.blob.core.windows.net";
  assert_int_equal(storage_create(http, &loop, &o, &s, err, sizeof(err)),
                   ERR_CONFIG);
  assert_non_null(strstr(err, "container"));
  o.container = "reports";
  o.account_key = "not base64!SECRET";
  assert_int_equal(storage_create(http, &loop, &o, &s, err, sizeof(err)),
                   ERR_CONFIG);
  assert_non_null(strstr(err, "base64"));
  assert_null(strstr(err, "SECRET"));
  o.auth = STORAGE_AUTH_SAS;
  o.sas_token = "sv=2023&sp=rl";
  assert_int_equal(storage_create(http, &loop, &o, &s, err, sizeof(err)),
                   ERR_CONFIG);
  assert_non_null(strstr(err, "sig="));
  o.endpoint = "https://acct.blob.core.windows.net?sv=1&sig=x";
  assert_int_equal(storage_create(http, &loop, &o, &s, err, sizeof(err)),
                   ERR_CONFIG);
  assert_non_null(strstr(err, "query"));
  o.endpoint = NULL;
  o.account = "acct";
  o.sas_token = "sv=2023&sig=abcdefgh";
  assert_int_equal(storage_create(http, &loop, &o, &s, err, sizeof(err)), 0);
  assert_string_equal(storage_endpoint(s), "https://acct.blob.core.windows.net");
  assert_string_equal(storage_auth_name(s), "SAS token");
  storage_destroy(s);
  o.connection_string = "AccountName=a;AcountKey=x";
  assert_int_equal(storage_create(http, &loop, &o, &s, err, sizeof(err)),
                   ERR_CONFIG);
  assert_non_null(strstr(err, "AcountKey"));
  o.connection_string = "UseDevelopmentStorage=true";
  assert_int_equal(storage_create(http, &loop, &o, &s, err, sizeof(err)), 0);
  assert_string_equal(storage_auth_name(s), "Shared Key");
  assert_string_equal(storage_endpoint(s),
                      "http://127.0.0.1:10000/devstoreaccount1");
  storage_destroy(s);
  storage_destroy(NULL);
  http_engine_destroy(http);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_retries_then_succeeds),
    cmocka_unit_test(test_gives_up_after_max_attempts),
    cmocka_unit_test(test_entra_refreshes_token_once_on_401),
    cmocka_unit_test(test_entra_token_failure_is_auth_error),
    cmocka_unit_test(test_list_all_pages_and_filters),
    cmocka_unit_test(test_list_all_detects_a_stuck_marker),
    cmocka_unit_test(test_cancel_during_backoff),
    cmocka_unit_test(test_destroy_aborts_inflight),
    cmocka_unit_test(test_config_errors),
  };

  int rc = cmocka_run_group_tests(tests, NULL, NULL);

  kill_server();
  return rc;
}
