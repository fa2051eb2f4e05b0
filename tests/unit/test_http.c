/*
 * test_http.c: the HTTP engine against a tiny HTTP/1.1 responder that the
 * test forks on 127.0.0.1:0, so it stays hermetic. Every test ends by
 * closing the engine, running the loop dry and asserting uv_loop_close()==0.
 *
 * Responder paths:
 *   /ok          200 "hello" with X-Test: a
 *   /echo        200, the request head and body as the body
 *   /big         200, 200000 bytes with Content-Length
 *   /stream      200, 200000 bytes without Content-Length (close-delimited)
 *   /status/503  503 with a small XML error body
 *   /slow        answers after 5 s
 *   /conn        200, the number of the connection that served it
 *   /badstatus   a status line without a status, a header, a body, close
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

#include <openssl/ssl.h>

#include "buf.h"
#include "err.h"
#include "http.h"

#define BIG_LEN 200000

static pid_t server_pid = -1;
static int server_port;

/* Writes all of p or gives up (the client went away). */
static void
write_all(int fd, const void *p, size_t n)
{
  const char *c = p;

  while(n) {
    ssize_t w = write(fd, c, n);

    if(w <= 0)
      return;
    c += w;
    n -= (size_t)w;
  }
}

static void
big_body(char *p, size_t n)
{
  for(size_t i = 0; i < n; i++)
    p[i] = (char)('a' + i % 26);
}

/* Serves one connection (keep-alive) in a child process. */
static void
serve_conn(int fd, int conn_no)
{
  static char req[65536], big[BIG_LEN];
  char head[512];

  big_body(big, sizeof(big));
  for(;;) {
    size_t len = 0, body_len = 0;
    char *end = NULL, *cl, path[256] = "";

    while(!end) {
      ssize_t n = read(fd, req + len, sizeof(req) - 1 - len);

      if(n <= 0)
        _exit(0);
      len += (size_t)n;
      req[len] = '\0';
      end = strstr(req, "\r\n\r\n");
    }
    cl = strcasestr(req, "\r\nContent-Length:");
    if(cl && cl < end)
      body_len = strtoul(cl + 17, NULL, 10);
    while(len < (size_t)(end + 4 - req) + body_len) {
      ssize_t n = read(fd, req + len, sizeof(req) - 1 - len);

      if(n <= 0)
        _exit(0);
      len += (size_t)n;
      req[len] = '\0';
    }
    sscanf(req, "%*s %255s", path);
    if(!strcmp(path, "/ok")) {
      const char *r = "HTTP/1.1 200 OK\r\nX-Test:  a \r\nContent-Length: 5"
                      "\r\n\r\nhello";
      write_all(fd, r, strlen(r));
    }
    else if(!strcmp(path, "/echo")) {
      int n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\n"
                       "Content-Length: %zu\r\n\r\n", len);
      write_all(fd, head, (size_t)n);
      write_all(fd, req, len);
    }
    else if(!strcmp(path, "/big")) {
      int n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\n"
                       "Content-Length: %d\r\n\r\n", BIG_LEN);
      write_all(fd, head, (size_t)n);
      write_all(fd, big, sizeof(big));
    }
    else if(!strcmp(path, "/stream")) {
      const char *r = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
      write_all(fd, r, strlen(r));
      write_all(fd, big, sizeof(big));
      _exit(0);
    }
    else if(!strcmp(path, "/status/503")) {
      const char *r = "HTTP/1.1 503 Service Unavailable\r\n"
                      "Content-Length: 26\r\n\r\n<Error>ServerBusy</Error>\n";
      write_all(fd, r, strlen(r));
    }
    else if(!strcmp(path, "/slow")) {
      const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow";
      sleep(5);
      write_all(fd, r, strlen(r));
    }
    else if(!strcmp(path, "/badstatus")) {
      /* A status line without a status (found by fuzz_http_response). */
      const char *r = "HTTP/x-ms-error 1uthorized\r\nWWW-Authenticate: h: "
                      "0\r\n\r\nX";
      write_all(fd, r, strlen(r));
      _exit(0);
    }
    else if(!strcmp(path, "/conn")) {
      char b[16];
      int bl = snprintf(b, sizeof(b), "%d", conn_no);
      int n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\n"
                       "Content-Length: %d\r\n\r\n%s", bl, b);
      write_all(fd, head, (size_t)n);
    }
    else {
      const char *r = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
      write_all(fd, r, strlen(r));
    }
  }
}

static int
start_server(void **state)
{
  struct sockaddr_in sa;
  socklen_t sl = sizeof(sa);
  int fd, one = 1;

  (void)state;
  signal(SIGPIPE, SIG_IGN);
  fd = socket(AF_INET, SOCK_STREAM, 0);
  if(fd < 0)
    return -1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64) ||
     getsockname(fd, (struct sockaddr *)&sa, &sl))
    return -1;
  server_port = ntohs(sa.sin_port);
  server_pid = fork();
  if(server_pid < 0)
    return -1;
  if(server_pid == 0) {
    int conn_no = 0;

    /* Never outlive the test process (a crash skips the teardown). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setpgid(0, 0);
    signal(SIGCHLD, SIG_IGN);
    for(;;) {
      int c = accept(fd, NULL, NULL);

      if(c < 0)
        continue;
      conn_no++;
      if(fork() == 0) {
        close(fd);
        serve_conn(c, conn_no);
        _exit(0);
      }
      close(c);
    }
  }
  setpgid(server_pid, server_pid);
  close(fd);
  return 0;
}

static int
stop_server(void **state)
{
  (void)state;
  if(server_pid > 0) {
    kill(-server_pid, SIGKILL);
    kill(server_pid, SIGKILL);
    waitpid(server_pid, NULL, 0);
  }
  return 0;
}

/* One engine on one loop per test. */
struct fixture {
  uv_loop_t loop;
  struct http_engine *e;
  int closed;
};

static void
fx_init(struct fixture *fx, const struct http_engine_opts *opts)
{
  memset(fx, 0, sizeof(*fx));
  assert_int_equal(uv_loop_init(&fx->loop), 0);
  assert_int_equal(http_engine_create(&fx->loop, opts, &fx->e), 0);
}

static void
on_closed(void *ud)
{
  ((struct fixture *)ud)->closed = 1;
}

/* Closes the engine (unless a test did), runs the loop dry, and checks that
   no handle is left behind. */
static void
fx_done(struct fixture *fx)
{
  if(fx->e)
    http_engine_close(fx->e, on_closed, fx);
  fx->e = NULL;
  assert_int_equal(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(fx->closed, 1);
  assert_int_equal(uv_loop_close(&fx->loop), 0);
}

static void
url_for(char *out, size_t n, const char *path)
{
  snprintf(out, n, "http://127.0.0.1:%d%s", server_port, path);
}

/* What a done callback saw. */
struct result {
  int calls;
  int rc;
  long status;
  char error[256];
  char body[4096];
  size_t body_len;
  char xtest[32];
  char clen[32];
};

static void
on_done(struct http_response *resp, void *ud)
{
  struct result *res = ud;
  const char *h;

  res->calls++;
  res->rc = resp->result;
  res->status = resp->status;
  snprintf(res->error, sizeof(res->error), "%s", resp->error);
  res->body_len = resp->body.len;
  if(resp->body.len)
    snprintf(res->body, sizeof(res->body), "%s", resp->body.data);
  h = http_response_header(resp, "x-TEST");
  snprintf(res->xtest, sizeof(res->xtest), "%s", h ? h : "(none)");
  h = http_response_header(resp, "content-length");
  snprintf(res->clen, sizeof(res->clen), "%s", h ? h : "(none)");
}

/* Submits GET path and runs the loop until the request is done. */
static void
run_get(struct fixture *fx, const char *path, struct result *res,
        size_t max, long timeout_ms)
{
  struct http_request *r;
  char url[128];

  url_for(url, sizeof(url), path);
  memset(res, 0, sizeof(*res));
  assert_int_equal(http_request_create(fx->e, "GET", url, &r), 0);
  http_request_set_max_response(r, max);
  http_request_set_timeout(r, timeout_ms);
  assert_int_equal(http_submit(r, on_done, res), 0);
  assert_int_equal(res->calls, 0);   /* never from within submit */
  while(res->calls == 0)
    uv_run(&fx->loop, UV_RUN_ONCE);
}

static void
test_get_ok(void **state)
{
  struct fixture fx;
  struct result res;

  (void)state;
  fx_init(&fx, NULL);
  run_get(&fx, "/ok", &res, 0, 0);
  assert_int_equal(res.calls, 1);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.status, 200);
  assert_string_equal(res.body, "hello");
  assert_string_equal(res.xtest, "a");
  assert_string_equal(res.clen, "5");
  assert_string_equal(res.error, "");
  assert_int_equal(http_engine_inflight(fx.e), 0);
  fx_done(&fx);
}

/*
 * Found by fuzz_http_response: curl hands over a status line it cannot
 * read, and the body after it, as a complete response with status 0; the
 * engine reported that as a success. It is a network error now.
 */
static void
test_invalid_status_line_is_err_net(void **state)
{
  struct fixture fx;
  struct result res;

  (void)state;
  fx_init(&fx, NULL);
  run_get(&fx, "/badstatus", &res, 0, 0);
  assert_int_equal(res.calls, 1);
  assert_int_equal(res.rc, ERR_NET);
  assert_int_equal(res.status, 0);
  assert_non_null(strstr(res.error, "invalid HTTP status line"));
  fx_done(&fx);
}

static void
test_post_echo_headers_and_body(void **state)
{
  struct fixture fx;
  struct result res = { 0 };
  struct http_request *r;
  char url[128];
  char *body = strdup("{\"a\":1}");

  (void)state;
  assert_non_null(body);
  fx_init(&fx, NULL);
  url_for(url, sizeof(url), "/echo");
  assert_int_equal(http_request_create(fx.e, "POST", url, &r), 0);
  assert_int_equal(http_request_add_header(r, "X-Custom", "v1"), 0);
  assert_int_equal(http_request_add_header(r, "Content-Type",
                                           "application/json"), 0);
  assert_int_equal(http_request_add_header(r, "X-Bad", "a\r\nInjected: 1"),
                   ERR_INVAL);
  assert_int_equal(http_request_add_header(r, "Bad:Name", "v"), ERR_INVAL);
  http_request_set_body_owned(r, body, strlen(body));
  assert_int_equal(http_submit(r, on_done, &res), 0);
  while(res.calls == 0)
    uv_run(&fx.loop, UV_RUN_ONCE);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.status, 200);
  assert_non_null(strstr(res.body, "POST /echo HTTP/1.1\r\n"));
  assert_non_null(strstr(res.body, "\r\nUser-Agent: spectra-sentinel/"
                         SS_VERSION "\r\n"));
  assert_non_null(strstr(res.body, "\r\nX-Custom: v1\r\n"));
  assert_non_null(strstr(res.body, "\r\nContent-Type: application/json\r\n"));
  assert_non_null(strstr(res.body, "\r\nContent-Length: 7\r\n"));
  assert_null(strstr(res.body, "Injected"));
  assert_null(strstr(res.body, "Expect:"));
  assert_non_null(strstr(res.body, "\r\n\r\n{\"a\":1}"));
  fx_done(&fx);
}

static void
test_delete_without_body_sends_no_content_type(void **state)
{
  struct fixture fx;
  struct result res = { 0 };
  struct http_request *r;
  char url[128];

  (void)state;
  fx_init(&fx, NULL);
  url_for(url, sizeof(url), "/echo");
  assert_int_equal(http_request_create(fx.e, "DELETE", url, &r), 0);
  assert_int_equal(http_submit(r, on_done, &res), 0);
  while(res.calls == 0)
    uv_run(&fx.loop, UV_RUN_ONCE);
  assert_int_equal(res.rc, 0);
  assert_non_null(strstr(res.body, "DELETE /echo HTTP/1.1\r\n"));
  assert_null(strstr(res.body, "Content-Type"));
  fx_done(&fx);
}

static void
test_connection_refused_is_err_net(void **state)
{
  struct sockaddr_in sa;
  socklen_t sl = sizeof(sa);
  struct fixture fx;
  struct result res = { 0 };
  struct http_request *r;
  char url[128];
  int fd;

  (void)state;
  /* A port that was free a moment ago and has no listener. */
  fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
  close(fd);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/x?sig=SECRETSIG",
           ntohs(sa.sin_port));
  fx_init(&fx, NULL);
  assert_int_equal(http_request_create(fx.e, "GET", url, &r), 0);
  assert_int_equal(http_submit(r, on_done, &res), 0);
  while(res.calls == 0)
    uv_run(&fx.loop, UV_RUN_ONCE);
  assert_int_equal(res.rc, ERR_NET);
  assert_int_equal(res.status, 0);
  assert_true(strlen(res.error) > 0);
  assert_null(strstr(res.error, "SECRETSIG"));
  fx_done(&fx);
}

static void
test_timeout_is_err_net(void **state)
{
  struct fixture fx;
  struct result res;

  (void)state;
  fx_init(&fx, NULL);
  run_get(&fx, "/slow", &res, 0, 200);
  assert_int_equal(res.rc, ERR_NET);
  assert_non_null(strstr(res.error, "imed out"));
  fx_done(&fx);
}

static void
test_content_length_over_cap_refused(void **state)
{
  struct fixture fx;
  struct result res;

  (void)state;
  fx_init(&fx, NULL);
  run_get(&fx, "/big", &res, 1000, 0);
  assert_int_equal(res.rc, ERR_TOOBIG);
  assert_non_null(strstr(res.error, "200000 bytes is over the cap of 1000"));
  assert_int_equal(res.body_len, 0);   /* refused before any body byte */
  /* Exactly at the cap is fine. */
  run_get(&fx, "/big", &res, BIG_LEN, 0);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.body_len, BIG_LEN);
  fx_done(&fx);
}

static void
test_unknown_length_over_cap_refused(void **state)
{
  struct fixture fx;
  struct result res;

  (void)state;
  fx_init(&fx, NULL);
  run_get(&fx, "/stream", &res, 5000, 0);
  assert_int_equal(res.rc, ERR_TOOBIG);
  assert_true(res.body_len <= 5000);
  run_get(&fx, "/stream", &res, 0, 0);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.body_len, BIG_LEN);
  fx_done(&fx);
}

/* A sink that checks every streamed byte against the expected pattern. */
struct sink_state {
  int headers_calls;
  long headers_status;
  char clen[32];
  size_t got;
  int mismatch;
  int fail_after;   /* return ERR_IO once got passes this (0: never) */
  int refuse_headers;
};

static int
sink_headers(void *ud, const struct http_response *resp)
{
  struct sink_state *s = ud;
  const char *cl = http_response_header(resp, "Content-Length");

  s->headers_calls++;
  s->headers_status = resp->status;
  snprintf(s->clen, sizeof(s->clen), "%s", cl ? cl : "(none)");
  return s->refuse_headers ? ERR_TOOBIG : 0;
}

static int
sink_write(void *ud, const void *data, size_t len)
{
  struct sink_state *s = ud;
  const char *p = data;

  for(size_t i = 0; i < len; i++)
    if(p[i] != (char)('a' + (s->got + i) % 26))
      s->mismatch = 1;
  s->got += len;
  if(s->fail_after && s->got > (size_t)s->fail_after)
    return ERR_IO;
  return 0;
}

static void
run_sink(struct fixture *fx, const char *path, struct sink_state *s,
         struct result *res)
{
  struct http_sink sink = { sink_headers, sink_write, s };
  struct http_request *r;
  char url[128];

  url_for(url, sizeof(url), path);
  memset(res, 0, sizeof(*res));
  assert_int_equal(http_request_create(fx->e, "GET", url, &r), 0);
  http_request_set_sink(r, &sink);
  assert_int_equal(http_submit(r, on_done, res), 0);
  while(res->calls == 0)
    uv_run(&fx->loop, UV_RUN_ONCE);
}

static void
test_sink_streams_2xx(void **state)
{
  struct sink_state s = { 0 };
  struct fixture fx;
  struct result res;

  (void)state;
  fx_init(&fx, NULL);
  run_sink(&fx, "/big", &s, &res);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.status, 200);
  assert_int_equal(res.body_len, 0);   /* the sink took it */
  assert_int_equal(s.headers_calls, 1);
  assert_int_equal(s.headers_status, 200);
  assert_string_equal(s.clen, "200000");
  assert_int_equal(s.got, BIG_LEN);
  assert_int_equal(s.mismatch, 0);
  fx_done(&fx);
}

static void
test_sink_errors_abort(void **state)
{
  struct sink_state s = { 0 };
  struct fixture fx;
  struct result res;

  (void)state;
  fx_init(&fx, NULL);
  s.fail_after = 1000;
  run_sink(&fx, "/big", &s, &res);
  assert_int_equal(res.rc, ERR_IO);
  assert_non_null(strstr(res.error, "consumer"));
  assert_true(s.got < BIG_LEN);
  memset(&s, 0, sizeof(s));
  s.refuse_headers = 1;
  run_sink(&fx, "/big", &s, &res);
  assert_int_equal(res.rc, ERR_TOOBIG);
  assert_int_equal(s.got, 0);
  fx_done(&fx);
}

static void
test_sink_not_used_for_error_status(void **state)
{
  struct sink_state s = { 0 };
  struct fixture fx;
  struct result res;

  (void)state;
  fx_init(&fx, NULL);
  run_sink(&fx, "/status/503", &s, &res);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.status, 503);
  assert_string_equal(res.body, "<Error>ServerBusy</Error>\n");
  assert_int_equal(s.headers_calls, 0);
  assert_int_equal(s.got, 0);
  fx_done(&fx);
}

/* A timer that cancels a request and records that done had already run. */
struct cancel_ctx {
  struct http_request *r;
  struct result *res;
  int done_before_return;
};

static void
on_cancel_timer(uv_timer_t *t)
{
  struct cancel_ctx *c = t->data;

  http_request_cancel(c->r);
  c->done_before_return = c->res->calls;
  uv_close((uv_handle_t *)t, NULL);
}

static void
test_cancel(void **state)
{
  struct fixture fx;
  struct result res = { 0 };
  struct cancel_ctx c = { 0 };
  uv_timer_t t;
  char url[128];

  (void)state;
  fx_init(&fx, NULL);
  url_for(url, sizeof(url), "/slow");
  assert_int_equal(http_request_create(fx.e, "GET", url, &c.r), 0);
  assert_int_equal(http_submit(c.r, on_done, &res), 0);
  c.res = &res;
  uv_timer_init(&fx.loop, &t);
  t.data = &c;
  uv_timer_start(&t, on_cancel_timer, 100, 0);
  while(res.calls == 0)
    uv_run(&fx.loop, UV_RUN_ONCE);
  assert_int_equal(res.calls, 1);
  assert_int_equal(c.done_before_return, 1);
  assert_int_equal(res.rc, ERR_ABORTED);
  assert_int_equal(http_engine_inflight(fx.e), 0);
  fx_done(&fx);
}

static void
on_close_timer(uv_timer_t *t)
{
  struct fixture *fx = t->data;

  http_engine_close(fx->e, on_closed, fx);
  fx->e = NULL;
  uv_close((uv_handle_t *)t, NULL);
}

static void
test_close_aborts_inflight(void **state)
{
  struct fixture fx;
  struct result res[3];
  uv_timer_t t;
  char url[128];

  (void)state;
  memset(res, 0, sizeof(res));
  fx_init(&fx, NULL);
  url_for(url, sizeof(url), "/slow");
  for(int i = 0; i < 3; i++) {
    struct http_request *r;

    assert_int_equal(http_request_create(fx.e, "GET", url, &r), 0);
    assert_int_equal(http_submit(r, on_done, &res[i]), 0);
  }
  assert_int_equal(http_engine_inflight(fx.e), 3);
  uv_timer_init(&fx.loop, &t);
  t.data = &fx;
  uv_timer_start(&t, on_close_timer, 100, 0);
  fx_done(&fx);
  for(int i = 0; i < 3; i++) {
    assert_int_equal(res[i].calls, 1);
    assert_int_equal(res[i].rc, ERR_ABORTED);
  }
}

/* Closes the engine from a done callback while another request runs. */
struct close_in_done {
  struct fixture *fx;
  struct result res;
};

static void
on_done_close(struct http_response *resp, void *ud)
{
  struct close_in_done *c = ud;

  on_done(resp, &c->res);
  http_engine_close(c->fx->e, on_closed, c->fx);
  c->fx->e = NULL;
}

static void
test_close_from_done_callback(void **state)
{
  struct fixture fx;
  struct close_in_done c = { 0 };
  struct result slow = { 0 };
  struct http_request *r;
  char url[128];

  (void)state;
  fx_init(&fx, NULL);
  c.fx = &fx;
  url_for(url, sizeof(url), "/slow");
  assert_int_equal(http_request_create(fx.e, "GET", url, &r), 0);
  assert_int_equal(http_submit(r, on_done, &slow), 0);
  url_for(url, sizeof(url), "/ok");
  assert_int_equal(http_request_create(fx.e, "GET", url, &r), 0);
  assert_int_equal(http_submit(r, on_done_close, &c), 0);
  while(c.res.calls == 0)
    uv_run(&fx.loop, UV_RUN_ONCE);
  assert_null(fx.e);
  fx_done(&fx);
  assert_int_equal(c.res.rc, 0);
  assert_int_equal(c.res.status, 200);
  assert_int_equal(slow.calls, 1);
  assert_int_equal(slow.rc, ERR_ABORTED);
}

static void
test_connection_reused(void **state)
{
  struct fixture fx;
  struct result a, b;

  (void)state;
  fx_init(&fx, NULL);
  run_get(&fx, "/conn", &a, 0, 0);
  run_get(&fx, "/conn", &b, 0, 0);
  assert_int_equal(a.rc, 0);
  assert_int_equal(b.rc, 0);
  assert_true(atoi(a.body) > 0);
  assert_string_equal(a.body, b.body);
  fx_done(&fx);
}

static void
test_many_concurrent(void **state)
{
  struct fixture fx;
  struct result res[20];
  char url[128];
  int left;

  (void)state;
  memset(res, 0, sizeof(res));
  fx_init(&fx, NULL);
  url_for(url, sizeof(url), "/big");
  for(int i = 0; i < 20; i++) {
    struct http_request *r;

    assert_int_equal(http_request_create(fx.e, "GET", url, &r), 0);
    assert_int_equal(http_submit(r, on_done, &res[i]), 0);
  }
  do {
    uv_run(&fx.loop, UV_RUN_ONCE);
    left = 0;
    for(int i = 0; i < 20; i++)
      left += res[i].calls == 0;
  } while(left);
  for(int i = 0; i < 20; i++) {
    assert_int_equal(res[i].rc, 0);
    assert_int_equal(res[i].body_len, BIG_LEN);
  }
  fx_done(&fx);
}

/* Forks a one-answer-per-connection TLS responder with the test server
   certificate (signed by tests/data/http/ca.pem). Returns its pid. */
static pid_t
start_tls_server(int *port)
{
  struct sockaddr_in sa;
  socklen_t sl = sizeof(sa);
  int fd;
  pid_t pid;

  fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(listen(fd, 16), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
  *port = ntohs(sa.sin_port);
  pid = fork();
  assert_true(pid >= 0);
  if(pid == 0) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if(!ctx ||
       SSL_CTX_use_certificate_file(ctx, "tests/data/http/server.pem",
                                    SSL_FILETYPE_PEM) != 1 ||
       SSL_CTX_use_PrivateKey_file(ctx, "tests/data/http/server.key",
                                   SSL_FILETYPE_PEM) != 1)
      _exit(1);
    for(;;) {
      const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                      "Connection: close\r\n\r\ntls";
      char req[4096];
      int c = accept(fd, NULL, NULL);
      SSL *ssl;

      if(c < 0)
        continue;
      ssl = SSL_new(ctx);
      SSL_set_fd(ssl, c);
      if(SSL_accept(ssl) == 1 && SSL_read(ssl, req, sizeof(req)) > 0)
        SSL_write(ssl, r, (int)strlen(r));
      SSL_shutdown(ssl);
      SSL_free(ssl);
      close(c);
    }
  }
  close(fd);
  return pid;
}

static void
test_tls_verification_and_extra_ca(void **state)
{
  struct http_engine_opts o = { 0 };
  struct fixture fx;
  struct result res = { 0 };
  struct http_request *r;
  char url[128];
  int port;
  pid_t pid;

  (void)state;
  pid = start_tls_server(&port);
  snprintf(url, sizeof(url), "https://127.0.0.1:%d/", port);

  /* Without the extra CA the self-signed chain is refused. */
  fx_init(&fx, NULL);
  assert_int_equal(http_request_create(fx.e, "GET", url, &r), 0);
  assert_int_equal(http_submit(r, on_done, &res), 0);
  while(res.calls == 0)
    uv_run(&fx.loop, UV_RUN_ONCE);
  assert_int_equal(res.rc, ERR_NET);
  assert_non_null(strstr(res.error, "certificate"));
  fx_done(&fx);

  /* With tls.ca_file it is trusted, and the host name still checked. */
  memset(&res, 0, sizeof(res));
  o.ca_file = "tests/data/http/ca.pem";
  fx_init(&fx, &o);
  assert_int_equal(http_request_create(fx.e, "GET", url, &r), 0);
  assert_int_equal(http_submit(r, on_done, &res), 0);
  while(res.calls == 0)
    uv_run(&fx.loop, UV_RUN_ONCE);
  assert_int_equal(res.rc, 0);
  assert_int_equal(res.status, 200);
  assert_string_equal(res.body, "tls");
  fx_done(&fx);

  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

static void
test_bad_ca_file(void **state)
{
  struct http_engine_opts o = { 0 };
  struct http_engine *e = NULL;
  uv_loop_t loop;
  char path[] = "/tmp/test_http_caXXXXXX";
  int fd;

  (void)state;
  assert_int_equal(uv_loop_init(&loop), 0);
  o.ca_file = "/nonexistent/ca.pem";
  assert_int_equal(http_engine_create(&loop, &o, &e), ERR_CONFIG);
  assert_null(e);
  fd = mkstemp(path);
  assert_true(fd >= 0);
  write_all(fd, "not a certificate\n", 18);
  close(fd);
  o.ca_file = path;
  assert_int_equal(http_engine_create(&loop, &o, &e), ERR_CONFIG);
  unlink(path);
  o.ca_file = "tests/data/http/ca.pem";
  assert_int_equal(http_engine_create(&loop, &o, &e), 0);
  http_engine_destroy(e);
  http_engine_destroy(NULL);
  assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

static void
test_url_redact(void **state)
{
  char out[128], small[12];

  (void)state;
  assert_string_equal(http_url_redact("https://acct.blob.core.windows.net/c/"
                                      "a%20b.json?sv=2022&sig=SECRET", out,
                                      sizeof(out)),
                      "https://acct.blob.core.windows.net/c/a%20b.json");
  assert_string_equal(http_url_redact("http://user:pw@127.0.0.1:10000/dev/c"
                                      "#frag", out, sizeof(out)),
                      "http://127.0.0.1:10000/dev/c");
  assert_string_equal(http_url_redact("http://h?x=1@y", out, sizeof(out)),
                      "http://h");
  assert_string_equal(http_url_redact("/path?sig=1", out, sizeof(out)),
                      "/path");
  assert_string_equal(http_url_redact("https://example.com/abcdef", small,
                                      sizeof(small)), "https://exa");
  assert_string_equal(http_url_redact(NULL, out, sizeof(out)), "");
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_get_ok),
    cmocka_unit_test(test_invalid_status_line_is_err_net),
    cmocka_unit_test(test_post_echo_headers_and_body),
    cmocka_unit_test(test_delete_without_body_sends_no_content_type),
    cmocka_unit_test(test_connection_refused_is_err_net),
    cmocka_unit_test(test_timeout_is_err_net),
    cmocka_unit_test(test_content_length_over_cap_refused),
    cmocka_unit_test(test_unknown_length_over_cap_refused),
    cmocka_unit_test(test_sink_streams_2xx),
    cmocka_unit_test(test_sink_errors_abort),
    cmocka_unit_test(test_sink_not_used_for_error_status),
    cmocka_unit_test(test_cancel),
    cmocka_unit_test(test_close_aborts_inflight),
    cmocka_unit_test(test_close_from_done_callback),
    cmocka_unit_test(test_connection_reused),
    cmocka_unit_test(test_many_concurrent),
    cmocka_unit_test(test_tls_verification_and_extra_ca),
    cmocka_unit_test(test_bad_ca_file),
    cmocka_unit_test(test_url_redact),
  };

  return cmocka_run_group_tests(tests, start_server, stop_server);
}
