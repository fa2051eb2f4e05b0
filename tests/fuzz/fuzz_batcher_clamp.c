/*
 * fuzz_batcher_clamp.c: batcher_clamp_time (the in-place TimeGenerated
 * rewrite of a request body) and batcher_time_parse on arbitrary bodies.
 *
 * Input layout: a flag byte, 8 bytes for the send time, then the records,
 * one per line ('\n' cannot occur inside compact JSON). The harness builds
 * the body "[" r0 "," r1 ... "]" and its offsets as the batcher lays them
 * out. Flags:
 *   bit 0  the send time is 2026-06-30T00:00:00Z plus a signed number of
 *          minutes from the 8 bytes (else the 8 bytes are the time itself,
 *          mostly out of range);
 *   bit 1  every record gets the {"TimeGenerated":" prefix, so mutations
 *          spend their effort on the times;
 *   bit 2  the offsets are perturbed by the bytes of the input (the
 *          function must refuse offsets that do not describe records
 *          without reading outside the body).
 *
 * Oracles, besides memory safety:
 *   - all or nothing: a failure leaves the body untouched;
 *   - a success changes only the 20 time bytes of records, each either
 *     kept or set to the send time; times[] matches the body; clamped
 *     counts the records that changed;
 *   - afterwards every time is inside the window Azure keeps
 *     (-47 h .. +23 h of the send time), and if anything was out of the
 *     window the body spans at most 30 minutes;
 *   - a time that parses formats back to the same 20 bytes;
 *   - batcher_body_needs_clamp (the ingestion client's test for sending a
 *     body without a private copy) writes nothing and answers 1 exactly
 *     when the clamp then rewrites a record.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batcher.h"
#include "buf.h"
#include "err.h"
#include "transform.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RECORDS 256

static const char prefix[] = "{\"TimeGenerated\":\"";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  size_t offsets[MAX_RECORDS + 1];
  int64_t times[MAX_RECORDS], before[MAX_RECORDS], now, lo = 0, hi = 0;
  int parsed[MAX_RECORDS], any_out = 0, need;
  struct batcher_body view;
  uint64_t count = 0, clamped = 99, changed = 0;
  struct buf body;
  char *copy = NULL;
  uint64_t raw = 0;
  int flags, rc;
  size_t pos;

  if(size < 9)
    return 0;
  flags = data[0];
  for(int i = 0; i < 8; i++)
    raw = raw << 8 | data[1 + i];
  if(flags & 1)
    now = 1782777600 + (int64_t)(int32_t)(uint32_t)raw * 60;
  else
    now = (int64_t)raw;
  data += 9;
  size -= 9;

  buf_init(&body, 4 * size + 64 * MAX_RECORDS);
  buf_putc(&body, '[');
  pos = 0;
  while(pos <= size && count < MAX_RECORDS) {
    const uint8_t *nl = memchr(data + pos, '\n', size - pos);
    size_t len = nl ? (size_t)(nl - (data + pos)) : size - pos;

    if(count)
      buf_putc(&body, ',');
    offsets[count++] = body.len;
    if(flags & 2)
      buf_puts(&body, prefix);
    buf_append(&body, data + pos, len);
    pos += len + 1;
    if(!nl)
      break;
  }
  buf_putc(&body, ']');
  offsets[count] = body.len;
  if(flags & 4) {
    /* Perturb offsets with input bytes (cyclically). */
    for(uint64_t i = 0; i <= count && size; i++)
      offsets[i] += (size_t)(int8_t)data[i % size];
  }

  /* What each record says before the call. */
  for(uint64_t i = 0; i < count; i++) {
    size_t st = offsets[i], en = offsets[i + 1];
    int64_t t;

    parsed[i] = 0;
    if(en <= body.len && st < en &&
       en - st >= TRANSFORM_TG_OFFSET + TRANSFORM_TG_LEN + 2 &&
       !memcmp(body.data + st, prefix, TRANSFORM_TG_OFFSET) &&
       body.data[st + TRANSFORM_TG_OFFSET + TRANSFORM_TG_LEN] == '"' &&
       batcher_time_parse(body.data + st + TRANSFORM_TG_OFFSET, &t) == 0) {
      char back[TRANSFORM_TG_LEN];

      parsed[i] = 1;
      before[i] = t;
      if(batcher_time_format(t, back) ||
         memcmp(back, body.data + st + TRANSFORM_TG_OFFSET, sizeof(back)))
        abort(); /* parse and format disagree */
    }
  }

  copy = malloc(body.len + 1);
  if(!copy)
    abort();
  memcpy(copy, body.data, body.len + 1);
  memset(&view, 0, sizeof(view));
  view.json = body.data;
  view.len = body.len;
  view.count = count;
  view.offsets = offsets;
  need = batcher_body_needs_clamp(&view, now);
  if((need != 0 && need != 1) || memcmp(copy, body.data, body.len + 1))
    abort();
  rc = batcher_clamp_time(body.data, body.len, offsets, count, now, times,
                          &clamped);
  if(rc) {
    if(rc != ERR_PARSE && rc != ERR_INVAL)
      abort();
    if(memcmp(copy, body.data, body.len + 1) || clamped != 0)
      abort();
    /* Nothing can be rewritten: a record without the layout, or a send
       time out of range. */
    if(need)
      abort();
    goto out;
  }
  /* Success: every record had a parsable time and now was in range. */
  for(uint64_t i = 0; i < count; i++) {
    size_t st = offsets[i] + TRANSFORM_TG_OFFSET;
    int64_t t;

    if(!parsed[i])
      abort();
    if(batcher_time_parse(body.data + st, &t) || t != times[i])
      abort();
    if(t != before[i]) {
      if(t != now)
        abort();
      changed++;
    }
    if(before[i] < now - BATCHER_CLAMP_PAST_SECONDS ||
       before[i] > now + BATCHER_CLAMP_FUTURE_SECONDS)
      any_out = 1;
    if(t < now - BATCHER_CLAMP_PAST_SECONDS ||
       t > now + BATCHER_CLAMP_FUTURE_SECONDS)
      abort(); /* Azure would drop or rewrite it */
    if(!i || t < lo)
      lo = t;
    if(!i || t > hi)
      hi = t;
    /* Only the time bytes may differ. */
    memcpy(copy + st, body.data + st, TRANSFORM_TG_LEN);
  }
  if(changed != clamped)
    abort();
  if(need != (clamped > 0))
    abort();
  if(any_out && hi - lo > BATCHER_MAX_SPAN_SECONDS)
    abort();
  if(!any_out && changed)
    abort();
  if(memcmp(copy, body.data, body.len + 1))
    abort();
out:
  free(copy);
  buf_free(&body);
  return 0;
}
