/*
 * ingest.c: the Logs Ingestion client of ingest.h.
 *
 * A submitted body becomes a job: an owned copy of the body plus one state
 * per record. The job's records are sent by pieces: a piece is a range
 * [from, to) of the job's records, one attempt at a time. A job starts with
 * one piece for all its records; a 413 or a 400 replaces a piece by its two
 * halves; an acknowledgement or a rejection retires a piece and settles its
 * records; every other answer sends the piece back to wait. The job
 * completes when no record is left unsettled.
 *
 * A piece moves through these places:
 *   ready    a FIFO of pieces that may start now;
 *   waiting  pieces backing off until their due time (one uv_timer serves
 *            all of them: it is armed for the earliest due time);
 *   active   at most `concurrency` pieces holding a slot, in one of the
 *            states TOKEN (waiting for cred_get_token), PREPARE (copy, clamp
 *            and gzip on the thread pool; each slot owns a compressor, so a
 *            compressor is never used by two threads at once) or HTTP.
 * The body a piece sends is rebuilt for every attempt from the job's copy,
 * which is never modified, so the clamp always starts from the report's own
 * times and several pieces of one job can be prepared in parallel.
 */
#include "ingest.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "err.h"
#include "gzip.h"
#include "jwt.h"
#include "log.h"
#include "storage_auth.h"
#include "retry_after.h"

#define MOD "ingest"

enum piece_state { P_READY, P_WAIT, P_TOKEN, P_PREPARE, P_HTTP };

struct job {
  struct job *next;
  struct job *prev;
  struct batcher_batch *orig;       /* the body as submitted (owned) */
  const struct batcher_body *body;  /* batcher_batch_body(orig) */
  uint8_t *state;                   /* per record, enum ingest_state */
  struct ingest_reject **reject;    /* per record, owned, or NULL */
  uint64_t unsettled;
  uint64_t acked;
  uint64_t rejected;
  ingest_done_cb cb;
  void *ud;
};

struct piece {
  struct piece *next;
  struct piece *prev;
  struct ingest *ing;
  struct job *job;
  uint64_t from;                    /* records [from, to) of job->body */
  uint64_t to;
  enum piece_state st;
  int slot;                         /* while active, else -1 */
  struct backoff bo;
  int last_401;                     /* the previous attempt got a 401 */
  uint64_t due;                     /* loop time to leave waiting */
  char *token;                      /* the attempt's token (owned, wiped) */
  uv_work_t work;
  int prep_rc;
  void *gz;                         /* the compressed body (owned) */
  size_t gz_len;
  struct batcher_batch *raw;        /* the uncompressed body (owned) when
                                       compression is off and it had to be
                                       copied */
  const struct batcher_body *send;  /* the uncompressed body to send when
                                       compression is off: raw's, or the
                                       job's own (borrowed: the job outlives
                                       its pieces) */
  size_t json_len;
  uint64_t clamped;
  struct http_request *req;         /* in flight, or NULL */
  char request_id[JWT_UUID_LEN + 1];
};

struct plist {
  struct piece *head;
  struct piece *tail;
};

struct ingest {
  uv_loop_t *loop;
  struct http_engine *http;
  struct cred *cred;
  char *url;
  char *dcr;
  char *stream;
  enum ingest_compression compression;
  unsigned concurrency;
  size_t max_pending;
  long timeout_ms;
  void (*observe)(void *ud, long status, uint64_t json_bytes);
  void *observe_ud;
  uint64_t backoff_base_ms;
  uint64_t backoff_cap_ms;
  struct gzip_compressor **gz;      /* one per slot */
  uint8_t *slot_busy;

  struct job *jobs;
  size_t njobs;
  struct plist ready;
  struct plist waiting;
  struct plist active;
  unsigned inflight;                /* pieces in active */
  unsigned works;                   /* thread-pool jobs not finished */
  uint64_t hold_until;              /* loop time: no start before (429) */

  uv_timer_t timer;
  int timer_closed;
  int pumping;
  int pump_again;
  int closing;
  int finished;
  void (*closed)(void *ud);
  void *closed_ud;
  struct ingest_stats stats;
};

/* ---- lists ------------------------------------------------------------ */

static void
pl_push_back(struct plist *l, struct piece *p)
{
  p->next = NULL;
  p->prev = l->tail;
  if(l->tail)
    l->tail->next = p;
  else
    l->head = p;
  l->tail = p;
}

static void
pl_push_front(struct plist *l, struct piece *p)
{
  p->prev = NULL;
  p->next = l->head;
  if(l->head)
    l->head->prev = p;
  else
    l->tail = p;
  l->head = p;
}

static void
pl_remove(struct plist *l, struct piece *p)
{
  if(p->prev)
    p->prev->next = p->next;
  else
    l->head = p->next;
  if(p->next)
    p->next->prev = p->prev;
  else
    l->tail = p->prev;
  p->next = p->prev = NULL;
}

/* ---- pieces and jobs -------------------------------------------------- */

static struct piece *
piece_create(struct ingest *ing, struct job *job, uint64_t from, uint64_t to)
{
  struct piece *p = calloc(1, sizeof(*p));

  if(!p)
    return NULL;
  p->ing = ing;
  p->job = job;
  p->from = from;
  p->to = to;
  p->slot = -1;
  p->st = P_READY;
  backoff_init(&p->bo, ing->backoff_base_ms, ing->backoff_cap_ms);
  p->work.data = p;
  return p;
}

/* Frees what one attempt built: token, bodies, request id. */
static void
piece_clear_attempt(struct piece *p)
{
  if(p->token) {
    memset(p->token, 0, strlen(p->token));
    free(p->token);
    p->token = NULL;
  }
  free(p->gz);
  p->gz = NULL;
  batcher_batch_destroy(p->raw);
  p->raw = NULL;
  p->send = NULL;
}

static void
piece_free(struct piece *p)
{
  if(!p)
    return;
  piece_clear_attempt(p);
  free(p);
}

static void
job_free(struct job *j)
{
  if(!j)
    return;
  if(j->reject) {
    for(uint64_t i = 0; i < j->body->count; i++)
      free(j->reject[i]);
    free(j->reject);
  }
  free(j->state);
  batcher_batch_destroy(j->orig);
  free(j);
}

/* Runs the job's callback and frees it. */
static void
job_complete(struct ingest *ing, struct job *j, int rc)
{
  struct ingest_result res;

  if(j->prev)
    j->prev->next = j->next;
  else
    ing->jobs = j->next;
  if(j->next)
    j->next->prev = j->prev;
  ing->njobs--;
  ing->stats.bodies_pending = ing->njobs;
  memset(&res, 0, sizeof(res));
  res.rc = rc;
  res.body = j->body;
  res.state = j->state;
  res.reject = (const struct ingest_reject *const *)j->reject;
  res.acked = j->acked;
  res.rejected = j->rejected;
  j->cb(j->ud, &res);
  job_free(j);
}

/* Marks records [from, to) acknowledged. */
static void
job_ack(struct ingest *ing, struct job *j, uint64_t from, uint64_t to)
{
  for(uint64_t i = from; i < to; i++)
    j->state[i] = INGEST_ACKED;
  j->acked += to - from;
  j->unsettled -= to - from;
  ing->stats.acked += to - from;
  if(!j->unsettled)
    job_complete(ing, j, 0);
}

/* Marks record i rejected for the reason rej (stolen). */
static void
job_reject(struct ingest *ing, struct job *j, uint64_t i,
           struct ingest_reject *rej)
{
  j->state[i] = INGEST_REJECTED;
  j->reject[i] = rej;
  j->rejected++;
  j->unsettled--;
  ing->stats.rejected++;
  if(!j->unsettled)
    job_complete(ing, j, 0);
}

/* A rejection reason in one allocation (the struct, then its strings). */
static struct ingest_reject *
reject_create(int status, const char *code, const char *message,
              const char *request_id)
{
  size_t cl = strlen(code) + 1, ml = strlen(message) + 1,
         rl = strlen(request_id) + 1;
  struct ingest_reject *r = malloc(sizeof(*r) + cl + ml + rl);
  char *s;

  if(!r)
    return NULL;
  s = (char *)(r + 1);
  r->status = status;
  r->code = memcpy(s, code, cl);
  r->message = memcpy(s + cl, message, ml);
  r->request_id = memcpy(s + cl + ml, request_id, rl);
  return r;
}

/* ---- scheduling ------------------------------------------------------- */

static void pump(struct ingest *ing);
static void on_token(void *ud, int rc, const char *token, const char *err);
static void prep_work(uv_work_t *w);
static void prep_done(uv_work_t *w, int status);
static void maybe_finish(struct ingest *ing);

static void
on_timer(uv_timer_t *t)
{
  pump(t->data);
}

/* Arms the timer for the earliest moment something can start. */
static void
arm_timer(struct ingest *ing)
{
  uint64_t now = uv_now(ing->loop), wake = UINT64_MAX;

  if(ing->closing)
    return;
  for(struct piece *p = ing->waiting.head; p; p = p->next) {
    if(p->due < wake)
      wake = p->due;
  }
  if(ing->ready.head && ing->inflight < ing->concurrency &&
     ing->hold_until > now && ing->hold_until < wake)
    wake = ing->hold_until;
  if(wake == UINT64_MAX)
    uv_timer_stop(&ing->timer);
  else
    uv_timer_start(&ing->timer, on_timer, wake > now ? wake - now : 0, 0);
}

/* Gives up p's slot and takes it out of the active list. */
static void
release(struct ingest *ing, struct piece *p)
{
  pl_remove(&ing->active, p);
  if(p->slot >= 0)
    ing->slot_busy[p->slot] = 0;
  p->slot = -1;
  ing->inflight--;
  ing->stats.in_flight = ing->inflight;
}

/* Sends p (not in any list) to wait delay_ms before its next attempt. */
static void
retry_later(struct ingest *ing, struct piece *p, uint64_t delay_ms)
{
  piece_clear_attempt(p);
  uv_update_time(ing->loop);
  p->due = uv_now(ing->loop) + delay_ms;
  p->st = P_WAIT;
  pl_push_back(&ing->waiting, p);
  ing->stats.retries++;
}

/* The same with the piece's own back-off. */
static uint64_t
retry_backoff(struct ingest *ing, struct piece *p)
{
  uint64_t d = backoff_next(&p->bo);

  retry_later(ing, p, d);
  return d;
}

/* Starts the attempt of a ready piece that was given a slot. */
static void
start(struct ingest *ing, struct piece *p)
{
  unsigned s;
  int rc;

  for(s = 0; s < ing->concurrency && ing->slot_busy[s]; s++)
    ;
  ing->slot_busy[s] = 1;
  p->slot = (int)s;
  ing->inflight++;
  ing->stats.in_flight = ing->inflight;
  pl_push_back(&ing->active, p);
  p->st = P_TOKEN;
  /* The callback may run before cred_get_token returns. */
  rc = cred_get_token(ing->cred, on_token, p);
  if(rc) {
    release(ing, p);
    log_warn(MOD, "cannot ask for a token: %s", err_str(rc));
    retry_backoff(ing, p);
  }
}

/* Moves due pieces to ready and starts what the limits allow. Re-entrant
   calls (from callbacks that run inside) only ask for another round. */
static void
pump(struct ingest *ing)
{
  if(ing->pumping) {
    ing->pump_again = 1;
    return;
  }
  ing->pumping = 1;
  do {
    uint64_t now;

    ing->pump_again = 0;
    uv_update_time(ing->loop);
    now = uv_now(ing->loop);
    for(struct piece *p = ing->waiting.head, *next; p; p = next) {
      next = p->next;
      if(p->due <= now) {
        pl_remove(&ing->waiting, p);
        p->st = P_READY;
        pl_push_back(&ing->ready, p);
      }
    }
    while(!ing->closing && ing->inflight < ing->concurrency &&
          ing->ready.head && now >= ing->hold_until) {
      struct piece *p = ing->ready.head;

      pl_remove(&ing->ready, p);
      start(ing, p);
    }
  } while(ing->pump_again && !ing->closing);
  ing->pumping = 0;
  arm_timer(ing);
}

/* ---- one attempt ------------------------------------------------------ */

static void
on_token(void *ud, int rc, const char *token, const char *err)
{
  struct piece *p = ud;
  struct ingest *ing = p->ing;
  uint64_t d;

  if(ing->closing) {
    release(ing, p);
    piece_free(p);
    maybe_finish(ing);
    return;
  }
  if(rc) {
    release(ing, p);
    d = retry_backoff(ing, p);
    log_warn(MOD, "no token for %llu records, retrying in %.1f s: %s",
             (unsigned long long)(p->to - p->from), (double)d / 1000.0, err);
    pump(ing);
    return;
  }
  p->token = strdup(token);
  if(!p->token)
    goto nomem;
  p->st = P_PREPARE;
  ing->works++;
  if(uv_queue_work(ing->loop, &p->work, prep_work, prep_done)) {
    ing->works--;
    goto nomem;
  }
  return;
nomem:
  release(ing, p);
  retry_backoff(ing, p);
  pump(ing);
}

/* Thread pool: copies the attempt's records, clamps their times to now,
   and compresses. Touches only the piece, its job's immutable copy and its
   slot's compressor. An attempt with all of the job's records, none of
   which needs its time clamped (the usual case: the first attempt),
   compresses or sends the job's copy as it is, without another copy. */
static void
prep_work(uv_work_t *w)
{
  struct piece *p = w->data;
  struct ingest *ing = p->ing;
  struct batcher_batch *b = NULL;
  const struct batcher_body *body;
  int64_t now = (int64_t)time(NULL);
  int rc;

  p->clamped = 0;
  if(p->from == 0 && p->to == p->job->body->count &&
     !batcher_body_needs_clamp(p->job->body, now)) {
    body = p->job->body;
    p->json_len = body->len;
    if(ing->compression == INGEST_GZIP)
      rc = gzip_compress(ing->gz[p->slot], body->json, body->len, &p->gz,
                         &p->gz_len);
    else {
      p->send = body;
      rc = 0;
    }
    p->prep_rc = rc;
    return;
  }
  rc = batcher_batch_create(p->job->body, p->from, p->to, &b);
  if(rc)
    goto out;
  /* A record without the transform's layout cannot be clamped; it is sent
     as it is (ERR_PARSE changes nothing). */
  rc = batcher_batch_clamp_time(b, now, &p->clamped);
  if(rc == ERR_PARSE)
    rc = 0;
  if(rc)
    goto out;
  body = batcher_batch_body(b);
  p->json_len = body->len;
  if(ing->compression == INGEST_GZIP)
    rc = gzip_compress(ing->gz[p->slot], body->json, body->len, &p->gz,
                       &p->gz_len);
  else {
    p->raw = b;
    p->send = batcher_batch_body(b);
    b = NULL;
  }
out:
  batcher_batch_destroy(b);
  p->prep_rc = rc;
}

static void on_http_done(struct http_response *resp, void *ud);

/* Loop thread: the body is ready; sends it. */
static void
prep_done(uv_work_t *w, int status)
{
  struct piece *p = w->data;
  struct ingest *ing = p->ing;
  struct http_request *r = NULL;
  struct buf auth;
  const void *data;
  size_t len;
  int rc;

  ing->works--;
  if(ing->closing || status == UV_ECANCELED) {
    release(ing, p);
    piece_free(p);
    maybe_finish(ing);
    return;
  }
  rc = p->prep_rc;
  if(rc) {
    log_error(MOD, "cannot prepare a request of %llu records: %s",
              (unsigned long long)(p->to - p->from), err_str(rc));
    goto retry;
  }
  ing->stats.clamped += p->clamped;
  if(p->clamped)
    log_debug(MOD, "set TimeGenerated of %llu records to the send time "
             "(outside the 47 h / 23 h window Azure keeps)",
             (unsigned long long)p->clamped);
  rc = jwt_uuid(p->request_id);
  if(!rc)
    rc = http_request_create(ing->http, "POST", ing->url, &r);
  buf_init(&auth, 64 * 1024);
  if(!rc)
    rc = buf_printf(&auth, "Bearer %s", p->token);
  if(!rc)
    rc = http_request_add_header(r, "Authorization", auth.data);
  if(auth.data)
    memset(auth.data, 0, auth.len);
  buf_free(&auth);
  if(!rc)
    rc = http_request_add_header(r, "Content-Type", "application/json");
  if(!rc && ing->compression == INGEST_GZIP)
    rc = http_request_add_header(r, "Content-Encoding", "gzip");
  if(!rc)
    rc = http_request_add_header(r, "x-ms-client-request-id", p->request_id);
  if(rc)
    goto fail;
  if(ing->compression == INGEST_GZIP) {
    data = p->gz;
    len = p->gz_len;
    http_request_set_body_owned(r, p->gz, len);
    p->gz = NULL;
  }
  else {
    data = p->send->json;
    len = p->send->len;
    http_request_set_body(r, data, len);
  }
  http_request_set_timeout(r, ing->timeout_ms);
  http_request_set_max_response(r, INGEST_MAX_RESPONSE);
  rc = http_submit(r, on_http_done, p);
  if(rc)
    goto fail;
  p->req = r;
  p->st = P_HTTP;
  ing->stats.bytes_sent += len;
  ing->stats.bytes_json += p->json_len;
  return;
fail:
  http_request_destroy(r);
  log_error(MOD, "cannot send a request: %s", err_str(rc));
retry:
  release(ing, p);
  retry_backoff(ing, p);
  pump(ing);
}

/* Reads {"error":{"code","message"}} (or x-ms-error-code) of an answer. */
static void
error_details(const struct http_response *resp, char *code, size_t ccap,
              char *msg, size_t mcap)
{
  json_t *root = NULL, *e;
  const char *c = NULL, *m = NULL, *h;

  if(resp->body.len)
    root = json_loadb(resp->body.data, resp->body.len, 0, NULL);
  e = json_object_get(root, "error");
  if(json_is_object(e)) {
    c = json_string_value(json_object_get(e, "code"));
    m = json_string_value(json_object_get(e, "message"));
  }
  h = http_response_header(resp, "x-ms-error-code");
  snprintf(code, ccap, "%s", c ? c : h ? h : "");
  if(m)
    snprintf(msg, mcap, "%s", m);
  else
    snprintf(msg, mcap, "HTTP %ld", resp->status);
  /* One log line per message, whatever the service sent. */
  for(char *q = msg; *q; q++) {
    if((unsigned char)*q < 0x20)
      *q = ' ';
  }
  log_scrub(msg, mcap);
  json_decref(root);
}

static const char *
tls_hint(const struct http_response *resp)
{
  switch(resp->curl_code) {
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CONNECT_ERROR:
    return " (TLS verification failed: if the endpoint uses a private CA, "
           "set tls.ca_file to a PEM bundle with that CA)";
  default:
    return "";
  }
}

/* Replaces p by its two halves at the front of the ready queue. */
static int
split(struct ingest *ing, struct piece *p)
{
  uint64_t mid = p->from + (p->to - p->from) / 2;
  struct piece *a = piece_create(ing, p->job, p->from, mid);
  struct piece *b = piece_create(ing, p->job, mid, p->to);

  if(!a || !b) {
    piece_free(a);
    piece_free(b);
    return ERR_NOMEM;
  }
  pl_push_front(&ing->ready, b);
  pl_push_front(&ing->ready, a);
  piece_free(p);
  return 0;
}

static void
on_http_done(struct http_response *resp, void *ud)
{
  struct piece *p = ud;
  struct ingest *ing = p->ing;
  struct job *job = p->job;
  uint64_t n = p->to - p->from, delay, now;
  long st = resp->status;
  char code[128], msg[INGEST_MAX_MESSAGE], where[256];
  int64_t hint;
  int was_401 = p->last_401;

  p->req = NULL;
  release(ing, p);
  if(ing->closing) {
    piece_free(p);
    maybe_finish(ing);
    return;
  }
  ing->stats.requests++;
  if(ing->observe)
    ing->observe(ing->observe_ud, resp->result ? 0 : st, p->json_len);
  p->last_401 = 0;
  if(resp->result) {
    http_url_redact(ing->url, where, sizeof(where));
    delay = retry_backoff(ing, p);
    log_warn(MOD, "POST %s failed for %llu records (request id %s): %s%s; "
             "retrying in %.1f s", where, (unsigned long long)n,
             p->request_id, resp->error, tls_hint(resp),
             (double)delay / 1000.0);
    goto out;
  }
  if(st >= 200 && st < 300) {
    log_debug(MOD, "%llu records acknowledged (%ld, request id %s)",
              (unsigned long long)n, st, p->request_id);
    uint64_t from = p->from, to = p->to;

    piece_free(p);
    job_ack(ing, job, from, to);
    goto out;
  }
  error_details(resp, code, sizeof(code), msg, sizeof(msg));
  if(st == 429 || st == 503) {
    ing->stats.throttled++;
    now = (uint64_t)time(NULL);
    if(retry_after_pick(http_response_header(resp, "retry-after-ms"),
                        http_response_header(resp, "x-ms-retry-after-ms"),
                        http_response_header(resp, "Retry-After"),
                        (int64_t)now, &hint) == 0) {
      delay = (uint64_t)hint;
      retry_later(ing, p, delay);
    }
    else
      delay = retry_backoff(ing, p);
    /* The limits are per DCR: hold every request, not just this one. */
    if(p->due > ing->hold_until)
      ing->hold_until = p->due;
    log_warn(MOD, "Logs Ingestion answered %ld (%s%s%s); waiting %.1f s "
             "before sending again", st, code, code[0] ? ": " : "", msg,
             (double)delay / 1000.0);
  }
  else if(st == 401) {
    ing->stats.auth_refreshes++;
    cred_invalidate(ing->cred, p->token);
    p->last_401 = 1;
    if(!was_401) {
      log_info(MOD, "Logs Ingestion answered 401 (%s); retrying with a new "
               "token", code[0] ? code : msg);
      piece_clear_attempt(p);
      p->st = P_READY;
      pl_push_front(&ing->ready, p);
    }
    else {
      delay = retry_backoff(ing, p);
      log_error(MOD, "Logs Ingestion answered 401 again (%s%s%s): the "
                "token is refused; check that the credential's tenant is "
                "the DCR's and credential.scope; retrying in %.1f s", code,
                code[0] ? ": " : "", msg, (double)delay / 1000.0);
    }
  }
  else if(st == 403 || st == 404) {
    ing->stats.config_errors++;
    delay = retry_backoff(ing, p);
    if(st == 403)
      log_error(MOD, "Logs Ingestion answered 403 (%s: %s). The identity "
                "needs the Monitoring Metrics Publisher role on data "
                "collection rule %s. The records stay pending; retrying "
                "in %.1f s", code, msg, ing->dcr, (double)delay / 1000.0);
    else
      log_error(MOD, "Logs Ingestion answered 404 (%s: %s). Check "
                "destination.endpoint, dcr_immutable_id (%s) and stream "
                "(%s). The records stay pending; retrying in %.1f s", code,
                msg, ing->dcr, ing->stream, (double)delay / 1000.0);
  }
  else if(st == 408 || st >= 500) {
    delay = retry_backoff(ing, p);
    log_warn(MOD, "Logs Ingestion answered %ld (%s%s%s); retrying in %.1f s",
             st, code, code[0] ? ": " : "", msg, (double)delay / 1000.0);
  }
  else if((st == 413 || (st >= 400 && st < 500)) && n > 1) {
    if(st == 413)
      ing->stats.splits++;
    else
      ing->stats.bisections++;
    log_info(MOD, "Logs Ingestion answered %ld %s for %llu records: %s "
             "them in halves", st, code, (unsigned long long)n,
             st == 413 ? "splitting" : "bisecting");
    if(split(ing, p))
      retry_backoff(ing, p);
  }
  else if(st >= 400 && st < 500) {
    struct ingest_reject *rej = reject_create((int)st, code, msg,
                                              p->request_id);

    if(!rej) {
      retry_backoff(ing, p);
      goto out;
    }
    log_warn(MOD, "Logs Ingestion rejected record %llu (%ld %s%s%s, request "
             "id %s); it goes to the dead-letter directory",
             (unsigned long long)(job->body->first + p->from), st, code,
             code[0] ? ": " : "", msg, p->request_id);
    {
      uint64_t from = p->from;

      piece_free(p);
      job_reject(ing, job, from, rej);
    }
  }
  else {
    /* 1xx and 3xx: redirects are not followed, so this is a wrong
       endpoint. */
    delay = retry_backoff(ing, p);
    log_error(MOD, "Logs Ingestion answered %ld; check destination.endpoint;"
              " the records stay pending; retrying in %.1f s", st,
              (double)delay / 1000.0);
  }
out:
  pump(ing);
}

/* ---- public ----------------------------------------------------------- */

/* Appends s percent-encoded as one URL path segment. */
static int
put_segment(struct buf *b, const char *s)
{
  return storage_url_encode(s, 0, b);
}

static void
free_client(struct ingest *ing)
{
  if(ing->gz) {
    for(unsigned i = 0; i < ing->concurrency; i++)
      gzip_compressor_destroy(ing->gz[i]);
    free(ing->gz);
  }
  free(ing->slot_busy);
  free(ing->url);
  free(ing->dcr);
  free(ing->stream);
  free(ing);
}

int
ingest_create(uv_loop_t *loop, struct http_engine *http, struct cred *cred,
              const struct ingest_opts *o, struct ingest **out)
{
  struct ingest *ing = NULL;
  struct buf url;
  size_t el;
  int rc = ERR_NOMEM;

  if(!loop || !http || !cred || !o || !out)
    return ERR_INVAL;
  *out = NULL;
  if(!o->endpoint || !*o->endpoint || !o->dcr_immutable_id ||
     !*o->dcr_immutable_id || !o->stream || !*o->stream) {
    log_error(MOD, "destination needs endpoint, dcr_immutable_id and stream");
    return ERR_CONFIG;
  }
  if(strncmp(o->endpoint, "https://", 8) && strncmp(o->endpoint, "http://", 7)) {
    log_error(MOD, "destination.endpoint must start with https://");
    return ERR_CONFIG;
  }
  if(o->compression != INGEST_GZIP && o->compression != INGEST_NONE)
    return ERR_INVAL;
  ing = calloc(1, sizeof(*ing));
  if(!ing)
    return ERR_NOMEM;
  ing->loop = loop;
  ing->http = http;
  ing->cred = cred;
  ing->compression = o->compression;
  ing->concurrency = o->concurrency ? o->concurrency :
                     INGEST_DEFAULT_CONCURRENCY;
  ing->max_pending = o->max_pending ? o->max_pending :
                     4 * (size_t)ing->concurrency;
  ing->observe = o->observe;
  ing->observe_ud = o->observe_ud;
  ing->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms :
                    INGEST_DEFAULT_TIMEOUT_MS;
  ing->backoff_base_ms = o->backoff_base_ms;
  ing->backoff_cap_ms = o->backoff_cap_ms;
  ing->dcr = strdup(o->dcr_immutable_id);
  ing->stream = strdup(o->stream);
  ing->slot_busy = calloc(ing->concurrency, 1);
  if(!ing->dcr || !ing->stream || !ing->slot_busy)
    goto fail;
  buf_init(&url, 8192);
  el = strlen(o->endpoint);
  while(el && o->endpoint[el - 1] == '/')
    el--;
  rc = buf_append(&url, o->endpoint, el);
  if(!rc)
    rc = buf_puts(&url, "/dataCollectionRules/");
  if(!rc)
    rc = put_segment(&url, o->dcr_immutable_id);
  if(!rc)
    rc = buf_puts(&url, "/streams/");
  if(!rc)
    rc = put_segment(&url, o->stream);
  if(!rc)
    rc = buf_puts(&url, "?api-version=" INGEST_API_VERSION);
  if(rc) {
    buf_free(&url);
    goto fail;
  }
  ing->url = buf_detach(&url, NULL);
  if(ing->compression == INGEST_GZIP) {
    rc = ERR_NOMEM;
    ing->gz = calloc(ing->concurrency, sizeof(*ing->gz));
    if(!ing->gz)
      goto fail;
    for(unsigned i = 0; i < ing->concurrency; i++) {
      rc = gzip_compressor_create(o->gzip_level > 0 ? o->gzip_level : 6,
                                  &ing->gz[i]);
      if(rc)
        goto fail;
    }
  }
  rc = uv_timer_init(loop, &ing->timer) ? ERR_INVAL : 0;
  if(rc)
    goto fail;
  ing->timer.data = ing;
  *out = ing;
  return 0;
fail:
  free_client(ing);
  return rc;
}

int
ingest_submit(struct ingest *ing, const struct batcher_body *body,
              ingest_done_cb cb, void *ud)
{
  struct batcher_batch *b;
  int rc;

  if(!ing || !body || !cb || !body->count)
    return ERR_INVAL;
  if(ing->closing)
    return ERR_ABORTED;
  if(ing->njobs >= ing->max_pending)
    return ERR_AGAIN;
  rc = batcher_batch_create(body, 0, body->count, &b);
  if(rc)
    return rc;
  rc = ingest_submit_batch(ing, b, cb, ud);
  if(rc)
    batcher_batch_destroy(b);
  return rc;
}

int
ingest_submit_batch(struct ingest *ing, struct batcher_batch *batch,
                    ingest_done_cb cb, void *ud)
{
  const struct batcher_body *body = batch ? batcher_batch_body(batch) : NULL;
  struct job *j;
  struct piece *p;

  if(!ing || !body || !body->json || !cb || !body->count)
    return ERR_INVAL;
  if(ing->closing)
    return ERR_ABORTED;
  if(ing->njobs >= ing->max_pending)
    return ERR_AGAIN;
  j = calloc(1, sizeof(*j));
  if(!j)
    return ERR_NOMEM;
  j->body = body;
  j->state = calloc(body->count, 1);
  j->reject = calloc(body->count, sizeof(*j->reject));
  p = piece_create(ing, j, 0, body->count);
  if(!j->state || !j->reject || !p) {
    piece_free(p);
    job_free(j);            /* j->orig is unset: the batch is the caller's */
    return ERR_NOMEM;
  }
  j->orig = batch;          /* taken: freed with the job */
  j->unsettled = body->count;
  j->cb = cb;
  j->ud = ud;
  j->next = ing->jobs;
  if(ing->jobs)
    ing->jobs->prev = j;
  ing->jobs = j;
  ing->njobs++;
  ing->stats.bodies_pending = ing->njobs;
  pl_push_back(&ing->ready, p);
  pump(ing);
  return 0;
}

size_t
ingest_pending(const struct ingest *ing)
{
  return ing->njobs;
}

void
ingest_get_stats(const struct ingest *ing, struct ingest_stats *out)
{
  *out = ing->stats;
}

static void
on_timer_closed(uv_handle_t *h)
{
  struct ingest *ing = h->data;

  ing->timer_closed = 1;
  maybe_finish(ing);
}

/* Finishes a close once no callback can reach the client any more. */
static void
maybe_finish(struct ingest *ing)
{
  void (*closed)(void *ud);
  void *closed_ud;
  struct piece *p;

  if(!ing->closing || !ing->timer_closed || ing->works || ing->finished)
    return;
  ing->finished = 1;
  while((p = ing->ready.head) != NULL) {
    pl_remove(&ing->ready, p);
    piece_free(p);
  }
  while((p = ing->waiting.head) != NULL) {
    pl_remove(&ing->waiting, p);
    piece_free(p);
  }
  while(ing->jobs)
    job_complete(ing, ing->jobs, ERR_ABORTED);
  closed = ing->closed;
  closed_ud = ing->closed_ud;
  free_client(ing);
  if(closed)
    closed(closed_ud);
}

void
ingest_close(struct ingest *ing, void (*closed)(void *ud), void *ud)
{
  struct piece *p, *next;

  if(!ing || ing->closing)
    return;
  ing->closing = 1;
  ing->closed = closed;
  ing->closed_ud = ud;
  for(p = ing->active.head; p; p = next) {
    next = p->next;
    if(p->st == P_TOKEN) {
      cred_cancel(ing->cred, p);
      release(ing, p);
      piece_free(p);
    }
    else if(p->st == P_HTTP && p->req) {
      /* The done callback runs now, sees closing, and frees p. */
      http_request_cancel(p->req);
    }
    else if(p->st == P_PREPARE) {
      /* Cancelled or not, prep_done runs and frees p. */
      (void)uv_cancel((uv_req_t *)&p->work);
    }
  }
  uv_timer_stop(&ing->timer);
  uv_close((uv_handle_t *)&ing->timer, on_timer_closed);
}
