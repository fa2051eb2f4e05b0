/*
 * fuzz_http_response.c: arbitrary bytes as the answer of an HTTP server, as
 * the HTTP engine (http.c) reads it: status lines, header lines (kept for
 * http_response_header within HTTP_MAX_HEADER_BYTES), Content-Length
 * checked against the cap before any body byte, bodies buffered or streamed
 * to a sink within the cap, and error bodies kept apart.
 *
 * A server thread on 127.0.0.1 answers every connection with the current
 * input and closes it; the engine runs on a libuv loop in the fuzzing
 * thread. Input layout: one flag byte, then the bytes the server sends.
 * Flags: bit 0 streams a 2xx body to a sink (else it is buffered); bits
 * 1-3 pick the response cap (16 bytes to 2 KiB); bit 4 sends HEAD.
 *
 * Oracles, besides memory safety and leaks: exactly one completion; a
 * result of 0 has a status from 100 to 999 and an empty error; a body,
 * buffered or streamed, never exceeds the cap; a sink sees only 2xx
 * bodies and its headers callback comes first; header lookups of any
 * name are NUL-terminated strings inside the response.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "err.h"
#include "http.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t loop;
static struct http_engine *engine;
static char url[64];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *answer;           /* what the server sends (guarded by mu) */
static size_t answer_len;

/* The server: reads a request head, sends the current answer, closes. */
static void *
serve(void *arg)
{
  int lfd = (int)(intptr_t)arg;

  for(;;) {
    char req[8192];
    size_t got = 0;
    int fd = accept(lfd, NULL, NULL);

    if(fd < 0)
      continue;
    while(got < sizeof(req) - 1) {
      ssize_t n = read(fd, req + got, sizeof(req) - 1 - got);

      if(n <= 0)
        break;
      got += (size_t)n;
      req[got] = '\0';
      if(strstr(req, "\r\n\r\n"))
        break;
    }
    pthread_mutex_lock(&mu);
    for(size_t off = 0; off < answer_len;) {
      ssize_t n = write(fd, answer + off, answer_len - off);

      if(n <= 0)
        break;
      off += (size_t)n;
    }
    pthread_mutex_unlock(&mu);
    shutdown(fd, SHUT_WR);
    /* Let the client read everything before the connection goes. */
    while(read(fd, req, sizeof(req)) > 0)
      ;
    close(fd);
  }
  return NULL;
}

static void
setup(void)
{
  struct sockaddr_in sa;
  socklen_t sl = sizeof(sa);
  struct http_engine_opts o;
  pthread_t t;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if(fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
     listen(fd, 64) || getsockname(fd, (struct sockaddr *)&sa, &sl))
    abort();
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/c/b?x=1",
           ntohs(sa.sin_port));
  if(pthread_create(&t, NULL, serve, (void *)(intptr_t)fd))
    abort();
  pthread_detach(t);
  log_set_level(LOG_ERROR);
  if(uv_loop_init(&loop))
    abort();
  memset(&o, 0, sizeof(o));
  o.timeout_ms = 3000;
  o.connect_timeout_ms = 3000;
  if(http_engine_create(&loop, &o, &engine))
    abort();
}

struct outcome {
  int done;
  int headers_seen;
  size_t streamed;
  size_t cap;
};

static int
sink_headers(void *ud, const struct http_response *resp)
{
  struct outcome *o = ud;

  if(o->headers_seen || o->streamed || resp->status < 200 ||
     resp->status > 299)
    abort();
  o->headers_seen = 1;
  return 0;
}

static int
sink_write(void *ud, const void *p, size_t n)
{
  struct outcome *o = ud;

  if(!o->headers_seen || (n && !p))
    abort();
  o->streamed += n;
  if(o->streamed > o->cap)
    abort(); /* the engine must stop at the cap */
  return 0;
}

static void
on_done(struct http_response *resp, void *ud)
{
  static const char *const names[] = {
    "Content-Length", "content-type", "ETag", "Retry-After",
    "x-ms-error-code", "WWW-Authenticate", "", "Last-Modified"
  };
  struct outcome *o = ud;

  if(o->done++)
    abort();
  if(!resp->error)
    abort();
  if(resp->result == 0) {
    if(resp->status < 100 || resp->status > 999 || resp->error[0])
      abort();
  }
  if(resp->body.len > o->cap)
    abort();
  for(size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    const char *v = http_response_header(resp, names[i]);

    if(v && strlen(v) > HTTP_MAX_HEADER_BYTES)
      abort();
  }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct http_request *r = NULL;
  struct http_sink sink;
  struct outcome o;
  int flags;

  if(!engine)
    setup();
  if(size < 1)
    return 0;
  flags = data[0];
  pthread_mutex_lock(&mu);
  free(answer);
  answer = malloc(size - 1 ? size - 1 : 1);
  if(!answer)
    abort();
  memcpy(answer, data + 1, size - 1);
  answer_len = size - 1;
  pthread_mutex_unlock(&mu);

  memset(&o, 0, sizeof(o));
  o.cap = (size_t)16 << ((flags >> 1) & 7);
  if(http_request_create(engine, flags & 16 ? "HEAD" : "GET", url, &r) ||
     http_request_add_header(r, "Connection", "close"))
    abort();
  http_request_set_max_response(r, o.cap);
  if(flags & 1) {
    sink.headers = sink_headers;
    sink.write = sink_write;
    sink.ud = &o;
    http_request_set_sink(r, &sink);
  }
  if(http_submit(r, on_done, &o))
    abort();
  while(!o.done)
    uv_run(&loop, UV_RUN_ONCE);
  return 0;
}
