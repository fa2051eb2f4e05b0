/*
 * test_ingest.c: the Logs Ingestion client without a service: option
 * checks, the bound on held bodies, and a shutdown that hands every body
 * back with its records still pending. The exchanges with the (fake)
 * service are in tests/integration/test_ingest*.sh.
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

#include "batcher.h"
#include "cred.h"
#include "err.h"
#include "http.h"
#include "ingest.h"
#include "log.h"

struct env {
  uv_loop_t loop;
  struct http_engine *http;
  struct cred *cred;
  char closed_url[64];
  int devnull;
  int closed;
};

static int
setup(void **state)
{
  struct env *e = calloc(1, sizeof(*e));
  struct sockaddr_in sa;
  socklen_t sl = sizeof(sa);
  struct cred_opts o;
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
  close(fd);
  snprintf(e->closed_url, sizeof(e->closed_url), "http://127.0.0.1:%d",
           ntohs(sa.sin_port));
  e->devnull = open("/dev/null", O_WRONLY);
  log_set_fd(e->devnull);
  assert_int_equal(uv_loop_init(&e->loop), 0);
  assert_int_equal(http_engine_create(&e->loop, NULL, &e->http), 0);
  memset(&o, 0, sizeof(o));
  o.method = CRED_CLIENT_SECRET;
  o.tenant_id = "t1";
  o.client_id = "c1";
  o.client_secret = "secret-abcdef";
  o.authority_host = e->closed_url;
  assert_int_equal(cred_create(&e->loop, e->http, &o, &e->cred), 0);
  *state = e;
  return 0;
}

static int
teardown(void **state)
{
  struct env *e = *state;

  cred_destroy(e->cred);
  http_engine_destroy(e->http);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&e->loop), 0);
  log_set_fd(2);
  close(e->devnull);
  log_secret_clear();
  free(e);
  return 0;
}

static void
opts(struct env *e, struct ingest_opts *o)
{
  memset(o, 0, sizeof(*o));
  o->endpoint = e->closed_url;
  o->dcr_immutable_id = "dcr-0123";
  o->stream = "Custom-SpectraDetectLogs_CL";
}

static void
test_config_errors(void **state)
{
  struct env *e = *state;
  struct ingest_opts o;
  struct ingest *ing = NULL;

  opts(e, &o);
  o.endpoint = "";
  assert_int_equal(ingest_create(&e->loop, e->http, e->cred, &o, &ing),
                   ERR_CONFIG);
  opts(e, &o);
  o.endpoint = "ftp://example.com";
  assert_int_equal(ingest_create(&e->loop, e->http, e->cred, &o, &ing),
                   ERR_CONFIG);
  opts(e, &o);
  o.stream = NULL;
  assert_int_equal(ingest_create(&e->loop, e->http, e->cred, &o, &ing),
                   ERR_CONFIG);
  opts(e, &o);
  o.dcr_immutable_id = "";
  assert_int_equal(ingest_create(&e->loop, e->http, e->cred, &o, &ing),
                   ERR_CONFIG);
  opts(e, &o);
  o.compression = (enum ingest_compression)9;
  assert_int_equal(ingest_create(&e->loop, e->http, e->cred, &o, &ing),
                   ERR_INVAL);
  assert_null(ing);
}

/* A body of n records made by the batcher. */
struct bodies {
  struct batcher_batch *b[8];
  int n;
};

static int
keep_body(void *ud, const struct batcher_body *body)
{
  struct bodies *bs = ud;

  return batcher_batch_create(body, 0, body->count, &bs->b[bs->n++]);
}

static int
no_reject(void *ud, uint64_t seq, const char *json, size_t len,
          const char *reason)
{
  (void)ud;
  (void)seq;
  (void)json;
  (void)len;
  (void)reason;
  return -1;
}

static void
make_bodies(struct bodies *bs, int nbodies, int per)
{
  struct batcher *b = NULL;

  memset(bs, 0, sizeof(*bs));
  assert_int_equal(batcher_create(1000000, keep_body, no_reject, bs, &b), 0);
  for(int i = 0; i < nbodies; i++) {
    for(int r = 0; r < per; r++) {
      char rec[128];
      int n = snprintf(rec, sizeof(rec), "{\"TimeGenerated\":"
                       "\"2026-11-30T00:07:03Z\",\"task_id\":\"%d-%d\"}", i, r);

      assert_int_equal(batcher_add(b, rec, (size_t)n, 1795997223), 0);
    }
    assert_int_equal(batcher_flush(b), 0);
  }
  batcher_destroy(b);
  assert_int_equal(bs->n, nbodies);
}

struct seen {
  int calls;
  int aborted;
  uint64_t pending;
  uint64_t records;
};

static void
on_done(void *ud, const struct ingest_result *res)
{
  struct seen *s = ud;

  s->calls++;
  if(res->rc == ERR_ABORTED)
    s->aborted++;
  s->records += res->body->count;
  for(uint64_t i = 0; i < res->body->count; i++) {
    if(res->state[i] == INGEST_PENDING)
      s->pending++;
  }
  assert_int_equal(res->acked + res->rejected, 0);
}

static void
on_closed(void *ud)
{
  struct env *e = ud;

  e->closed = 1;
}

static void
test_bound_and_close(void **state)
{
  struct env *e = *state;
  struct ingest_opts o;
  struct ingest *ing = NULL;
  struct ingest_stats st;
  struct bodies bs;
  struct seen seen = { 0 };
  struct batcher_body empty;

  make_bodies(&bs, 3, 5);
  opts(e, &o);
  o.max_pending = 2;
  o.concurrency = 1;
  o.backoff_base_ms = 60000;
  assert_int_equal(ingest_create(&e->loop, e->http, e->cred, &o, &ing), 0);
  assert_int_equal(ingest_submit(ing, batcher_batch_body(bs.b[0]), on_done,
                                 &seen), 0);
  assert_int_equal(ingest_submit(ing, batcher_batch_body(bs.b[1]), on_done,
                                 &seen), 0);
  /* The third is refused and not taken. */
  assert_int_equal(ingest_submit(ing, batcher_batch_body(bs.b[2]), on_done,
                                 &seen), ERR_AGAIN);
  memset(&empty, 0, sizeof(empty));
  assert_int_equal(ingest_submit(ing, &empty, on_done, &seen), ERR_INVAL);
  assert_int_equal(ingest_pending(ing), 2);
  /* The token request fails (nothing listens) and the pieces back off;
     no completion may come from that. */
  for(int i = 0; i < 20; i++)
    uv_run(&e->loop, UV_RUN_NOWAIT);
  assert_int_equal(seen.calls, 0);
  ingest_get_stats(ing, &st);
  assert_int_equal(st.bodies_pending, 2);
  assert_true(st.in_flight <= 1);
  /* Closing hands both bodies back, every record pending. */
  ingest_close(ing, on_closed, e);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(e->closed, 1);
  assert_int_equal(seen.calls, 2);
  assert_int_equal(seen.aborted, 2);
  assert_int_equal(seen.records, 10);
  assert_int_equal(seen.pending, 10);
  ingest_close(NULL, NULL, NULL);
  for(int i = 0; i < bs.n; i++)
    batcher_batch_destroy(bs.b[i]);
}

/*
 * ingest_submit_batch takes the batch on success and leaves it with the
 * caller on every refusal: the refused one is freed here, the taken ones
 * by the client (ASan and valgrind runs of this test catch a leak or a
 * double free either way).
 */
static void
test_submit_batch_ownership(void **state)
{
  struct env *e = *state;
  struct ingest_opts o;
  struct ingest *ing = NULL;
  struct bodies bs;
  struct seen seen = { 0 };
  struct batcher_batch *taken[2];

  make_bodies(&bs, 3, 4);
  opts(e, &o);
  o.max_pending = 2;
  o.concurrency = 1;
  o.backoff_base_ms = 60000;
  assert_int_equal(ingest_create(&e->loop, e->http, e->cred, &o, &ing), 0);
  assert_int_equal(ingest_submit_batch(ing, NULL, on_done, &seen), ERR_INVAL);
  assert_int_equal(ingest_submit_batch(ing, bs.b[0], NULL, &seen), ERR_INVAL);
  taken[0] = bs.b[0];
  taken[1] = bs.b[1];
  assert_int_equal(ingest_submit_batch(ing, taken[0], on_done, &seen), 0);
  assert_int_equal(ingest_submit_batch(ing, taken[1], on_done, &seen), 0);
  bs.b[0] = bs.b[1] = NULL;
  assert_int_equal(ingest_submit_batch(ing, bs.b[2], on_done, &seen),
                   ERR_AGAIN);
  assert_int_equal(ingest_pending(ing), 2);
  for(int i = 0; i < 20; i++)
    uv_run(&e->loop, UV_RUN_NOWAIT);
  assert_int_equal(seen.calls, 0);
  ingest_close(ing, on_closed, e);
  uv_run(&e->loop, UV_RUN_DEFAULT);
  assert_int_equal(e->closed, 1);
  assert_int_equal(seen.calls, 2);
  assert_int_equal(seen.aborted, 2);
  assert_int_equal(seen.records, 8);
  assert_int_equal(seen.pending, 8);
  for(int i = 0; i < bs.n; i++)
    batcher_batch_destroy(bs.b[i]);
}

int
main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
    cmocka_unit_test_setup_teardown(test_bound_and_close, setup, teardown),
    cmocka_unit_test_setup_teardown(test_submit_batch_ownership, setup,
                                    teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
