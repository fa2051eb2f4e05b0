/*
 * bench_yajl.c: the "just validate the JSON" ceiling of the benchmark.
 *
 * The transform must at least read every byte of a report and check its
 * grammar and UTF-8 (SPEC section 2 rejects invalid input). yajl with no
 * callbacks does exactly that and nothing more: it lexes, validates strings
 * and tracks nesting, but builds nothing and decodes nothing. Its throughput
 * is therefore a practical upper bound for any correct transform, and the
 * benchmark's yajl/transform ratio says how close the transform gets.
 *
 * Usage: bench_yajl -l MANIFEST | FILE...
 * Prints one line of measurements, timed around the loop only:
 *   tool=yajl files=N bytes=N records=0 out_bytes=0 wall=S user=S sys=S
 * Exit status: 0 success, 1 a file could not be read or is not valid JSON,
 * 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_parse.h>

#include "buf.h"
#include "err.h"
#include "bench_common.h"

/*
 * Validates the len bytes at data as JSON. Several top-level values are
 * allowed, as SPEC accepts NDJSON blobs and the corpus stream is one. path
 * is only used in the message. Returns 0 or ERR_PARSE/ERR_NOMEM.
 */
static int
validate(const char *path, const unsigned char *data, size_t len)
{
  yajl_handle h;
  yajl_status st;
  unsigned char *msg;
  int rc = 0;

  /* NULL callbacks: yajl checks each callback pointer before calling it,
     so it lexes and validates without building or decoding anything. */
  h = yajl_alloc(NULL, NULL, NULL);
  if(!h)
    return ERR_NOMEM;
  yajl_config(h, yajl_allow_multiple_values, 1);
  st = yajl_parse(h, data, len);
  if(st == yajl_status_ok)
    st = yajl_complete_parse(h);
  if(st != yajl_status_ok) {
    msg = yajl_get_error(h, 0, data, len);
    /* yajl ends its message with a newline; the line here has its own. */
    fprintf(stderr, "bench_yajl: %s: %.*s (offset %zu)\n", path,
            msg ? (int)strcspn((const char *)msg, "\n") : 12,
            msg ? (const char *)msg : "invalid JSON",
            yajl_get_bytes_consumed(h));
    yajl_free_error(h, msg);
    rc = ERR_PARSE;
  }
  yajl_free(h);
  return rc;
}

static int
usage(void)
{
  fputs("usage: bench_yajl -l MANIFEST | FILE...\n", stderr);
  return 2;
}

int
main(int argc, char **argv)
{
  struct buf data;
  struct bench_inputs in;
  struct bench_clock clk;
  const char *list = NULL;
  size_t i;
  uint64_t bytes = 0;
  int opt, rc, status = 1;

  buf_init(&data, BENCH_MAX_INPUT);
  while((opt = getopt(argc, argv, "l:")) != -1) {
    if(opt != 'l')
      return usage();
    list = optarg;
  }
  rc = bench_inputs_load(&in, "bench_yajl", list, argc, argv, optind);
  if(rc == 2) {
    bench_inputs_free(&in);
    return usage();
  }
  if(rc)
    goto out;

  bench_clock_start(&clk);
  for(i = 0; i < in.n; i++) {
    buf_reset(&data);
    if(bench_read_file(in.paths[i], &data)) {
      fprintf(stderr, "bench_yajl: cannot read %s\n", in.paths[i]);
      goto out;
    }
    bytes += data.len;
    if(validate(in.paths[i], (const unsigned char *)data.data, data.len))
      goto out;
  }
  bench_clock_report(&clk, "yajl", in.n, bytes, 0, 0);
  status = 0;
out:
  bench_inputs_free(&in);
  buf_free(&data);
  return status;
}
