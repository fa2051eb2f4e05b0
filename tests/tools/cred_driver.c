/*
 * cred_driver.c: drives a credential provider through a script of steps, for
 * the integration tests (tests/integration/test_cred*.sh), which compile it
 * against $BUILD/libspectra.a and run it against tests/fakes/fake_azure.py.
 *
 *   cred_driver [--option value]... STEP...
 *
 * Options map onto struct cred_opts (--method, --tenant, --client-id,
 * --secret, --cert, --cert-password, --alg rs256|ps256, --fed-file,
 * --authority, --scope, --imds, --mi-client-id, --mi-object-id,
 * --mi-res-id, --arc-key-dir, --arc-himds, --backoff-base-ms,
 * --backoff-cap-ms, --timeout-ms) plus --ca-file for the HTTP engine.
 * Steps:
 *   get            ask for a token; prints "ok TOKEN" or "err CODE TEXT"
 *   burst=N        ask N times at once before any answer; prints each answer
 *   sleep=MS       let the loop run for MS milliseconds
 *   invalidate     report the last token as refused (as a 401 would)
 *   stats          prints "stats requests=R failures=F secrets=S", S the
 *                  strings the logger scrubs (log_secret_count)
 * Exit status: 0 when the script ran (answers may be errors), 2 for usage,
 * 3 when the provider could not be created, 4 when the loop did not close
 * cleanly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cred.h"
#include "err.h"
#include "http.h"
#include "log.h"

static struct {
  uv_loop_t loop;
  uv_timer_t timer;
  struct http_engine *http;
  struct cred *cred;
  char **steps;
  int nsteps;
  int step;
  int pending;
  char last[40000];
  int closed;
} d;

static void next_step(void);

static const char *
code_name(int rc)
{
  switch(rc) {
  case ERR_AUTH: return "AUTH";
  case ERR_NET: return "NET";
  case ERR_PARSE: return "PARSE";
  case ERR_CONFIG: return "CONFIG";
  case ERR_ABORTED: return "ABORTED";
  case ERR_AGAIN: return "AGAIN";
  default: return err_str(rc);
  }
}

static void
on_timer(uv_timer_t *t)
{
  (void)t;
  next_step();
}

/* Runs the next step from the loop, never from inside a callback. */
static void
schedule(uint64_t ms)
{
  uv_timer_start(&d.timer, on_timer, ms, 0);
}

static void
on_token(void *ud, int rc, const char *token, const char *err)
{
  (void)ud;
  if(rc == 0) {
    printf("ok %s\n", token);
    snprintf(d.last, sizeof(d.last), "%s", token);
  }
  else
    printf("err %s %s\n", code_name(rc), err);
  fflush(stdout);
  if(--d.pending == 0)
    schedule(0);
}

static void
on_closed(void *ud)
{
  (void)ud;
  d.closed = 1;
}

static void
on_handle_closed(uv_handle_t *h)
{
  (void)h;
}

static void
finish(void)
{
  cred_destroy(d.cred);
  d.cred = NULL;
  http_engine_close(d.http, on_closed, NULL);
  uv_close((uv_handle_t *)&d.timer, on_handle_closed);
}

static void
next_step(void)
{
  const char *s;

  if(d.step >= d.nsteps) {
    finish();
    return;
  }
  s = d.steps[d.step++];
  if(!strcmp(s, "get") || !strncmp(s, "burst=", 6)) {
    int n = s[0] == 'g' ? 1 : atoi(s + 6);

    d.pending = n;
    for(int i = 0; i < n; i++) {
      if(cred_get_token(d.cred, on_token, NULL)) {
        printf("err get_token refused\n");
        d.pending--;
      }
    }
    if(d.pending == 0)
      schedule(0);
  }
  else if(!strncmp(s, "sleep=", 6))
    schedule((uint64_t)atol(s + 6));
  else if(!strcmp(s, "invalidate")) {
    cred_invalidate(d.cred, d.last);
    schedule(0);
  }
  else if(!strcmp(s, "stats")) {
    struct cred_stats st;

    cred_get_stats(d.cred, &st);
    printf("stats requests=%llu failures=%llu secrets=%zu\n",
           (unsigned long long)st.requests, (unsigned long long)st.failures,
           log_secret_count());
    fflush(stdout);
    schedule(0);
  }
  else {
    fprintf(stderr, "unknown step %s\n", s);
    exit(2);
  }
}

int
main(int argc, char **argv)
{
  struct cred_opts o;
  struct http_engine_opts ho;
  const char *ca = NULL;
  int i, rc;

  memset(&o, 0, sizeof(o));
  memset(&ho, 0, sizeof(ho));
  if(getenv("DRIVER_DEBUG"))
    log_set_level(LOG_DEBUG);
  for(i = 1; i < argc && !strncmp(argv[i], "--", 2); i += 2) {
    const char *k = argv[i] + 2, *v = i + 1 < argc ? argv[i + 1] : NULL;

    if(!v) {
      fprintf(stderr, "option %s needs a value\n", argv[i]);
      return 2;
    }
    if(!strcmp(k, "method")) {
      if(cred_method_parse(v, &o.method)) {
        fprintf(stderr, "bad method %s\n", v);
        return 2;
      }
    }
    else if(!strcmp(k, "tenant")) o.tenant_id = v;
    else if(!strcmp(k, "client-id")) o.client_id = v;
    else if(!strcmp(k, "secret")) o.client_secret = v;
    else if(!strcmp(k, "cert")) o.certificate_file = v;
    else if(!strcmp(k, "cert-password")) o.certificate_password = v;
    else if(!strcmp(k, "alg"))
      o.certificate_alg = !strcmp(v, "rs256") ? JWT_RS256 : JWT_PS256;
    else if(!strcmp(k, "fed-file")) o.federated_token_file = v;
    else if(!strcmp(k, "authority")) o.authority_host = v;
    else if(!strcmp(k, "scope")) o.scope = v;
    else if(!strcmp(k, "imds")) o.imds_endpoint = v;
    else if(!strcmp(k, "mi-client-id")) o.mi_client_id = v;
    else if(!strcmp(k, "mi-object-id")) o.mi_object_id = v;
    else if(!strcmp(k, "mi-res-id")) o.mi_res_id = v;
    else if(!strcmp(k, "arc-key-dir")) o.arc_key_dir = v;
    else if(!strcmp(k, "arc-himds")) o.arc_himds_path = v;
    else if(!strcmp(k, "backoff-base-ms")) o.backoff_base_ms = strtoull(v, 0, 10);
    else if(!strcmp(k, "backoff-cap-ms")) o.backoff_cap_ms = strtoull(v, 0, 10);
    else if(!strcmp(k, "timeout-ms")) o.timeout_ms = atol(v);
    else if(!strcmp(k, "ca-file")) ca = v;
    else {
      fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  d.steps = argv + i;
  d.nsteps = argc - i;
  /* A himds file that cannot exist keeps the host's Arc agent out of the
     tests unless a test names one. */
  if(!o.arc_himds_path)
    o.arc_himds_path = "/nonexistent/himds";
  ho.ca_file = ca;
  uv_loop_init(&d.loop);
  uv_timer_init(&d.loop, &d.timer);
  rc = http_engine_create(&d.loop, &ho, &d.http);
  if(rc) {
    printf("create err %s\n", code_name(rc));
    return 3;
  }
  rc = cred_create(&d.loop, d.http, &o, &d.cred);
  if(rc) {
    printf("create err %s\n", code_name(rc));
    http_engine_destroy(d.http);
    uv_close((uv_handle_t *)&d.timer, on_handle_closed);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    uv_loop_close(&d.loop);
    return 3;
  }
  printf("describe %s\n", cred_describe(d.cred));
  fflush(stdout);
  schedule(0);
  uv_run(&d.loop, UV_RUN_DEFAULT);
  log_secret_clear();
  if(!d.closed || uv_loop_close(&d.loop)) {
    fprintf(stderr, "the loop did not close cleanly\n");
    return 4;
  }
  return 0;
}
