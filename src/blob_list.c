/*
 * blob_list.c: expat parsers for List Blobs responses and storage error
 * documents (blob_list.h).
 *
 * The parser tracks the element path with a small stack of element ids and
 * collects text only for the few elements it needs, each into a capped
 * buffer, so memory use is bounded by the caps whatever the input.
 */
#include "blob_list.h"

#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "err.h"
#include "storage_auth.h"

/* Element ids on the path stack. */
enum el {
  EL_OTHER = 0, EL_ROOT, EL_BLOBS, EL_BLOB, EL_NAME, EL_PROPS, EL_ETAG,
  EL_LASTMOD, EL_LENGTH, EL_ENCODING, EL_RESTYPE, EL_META, EL_ISFOLDER,
  EL_NEXTMARKER, EL_ERROR, EL_CODE, EL_MESSAGE
};

struct parser {
  XML_Parser xp;
  int errdoc;                 /* parsing an <Error> document instead */
  enum el stack[BLOB_LIST_MAX_DEPTH];
  int depth;
  struct buf text;            /* text of the element being collected */
  int collecting;
  int name_encoded;           /* <Name Encoded="true"> */
  struct blob_entry cur;      /* the <Blob> being built */
  int in_blob;
  struct blob_page *page;
  int rc;                     /* first failure */
  char why[160];
  char *code, *msg;           /* error document fields (owned) */
};

static void
entry_free(struct blob_entry *e)
{
  free(e->name);
  free(e->etag);
  free(e->content_encoding);
  memset(e, 0, sizeof(*e));
}

void
blob_page_free(struct blob_page *p)
{
  if(!p)
    return;
  for(size_t i = 0; i < p->n; i++)
    entry_free(&p->entries[i]);
  free(p->entries);
  free(p->next_marker);
  memset(p, 0, sizeof(*p));
}

void
blob_page_remove(struct blob_page *p, size_t i)
{
  if(i >= p->n)
    return;
  entry_free(&p->entries[i]);
  memmove(&p->entries[i], &p->entries[i + 1],
          (p->n - i - 1) * sizeof(p->entries[0]));
  p->n--;
}

/* Stops the parse with rc and a reason (the first one wins). */
static void
fail(struct parser *ps, int rc, const char *why)
{
  if(!ps->rc) {
    ps->rc = rc;
    snprintf(ps->why, sizeof(ps->why), "%s", why);
  }
  XML_StopParser(ps->xp, XML_FALSE);
}

static enum el
classify(const struct parser *ps, const char *name)
{
  enum el parent = ps->depth ? ps->stack[ps->depth - 1] : EL_OTHER;

  if(ps->depth == 0) {
    if(!strcmp(name, "EnumerationResults"))
      return EL_ROOT;
    if(!strcmp(name, "Error"))
      return EL_ERROR;
    return EL_OTHER;
  }
  switch(parent) {
  case EL_ROOT:
    if(!strcmp(name, "Blobs"))
      return EL_BLOBS;
    if(!strcmp(name, "NextMarker"))
      return EL_NEXTMARKER;
    break;
  case EL_BLOBS:
    if(!strcmp(name, "Blob"))
      return EL_BLOB;
    break;
  case EL_BLOB:
    if(!strcmp(name, "Name"))
      return EL_NAME;
    if(!strcmp(name, "Properties"))
      return EL_PROPS;
    if(!strcmp(name, "Metadata"))
      return EL_META;
    break;
  case EL_PROPS:
    if(!strcmp(name, "Etag"))
      return EL_ETAG;
    if(!strcmp(name, "Last-Modified"))
      return EL_LASTMOD;
    if(!strcmp(name, "Content-Length"))
      return EL_LENGTH;
    if(!strcmp(name, "Content-Encoding"))
      return EL_ENCODING;
    if(!strcmp(name, "ResourceType"))
      return EL_RESTYPE;
    break;
  case EL_META:
    /* Metadata names are case-insensitive in the service. */
    if(!strcasecmp(name, "hdi_isfolder"))
      return EL_ISFOLDER;
    break;
  case EL_ERROR:
    if(!strcmp(name, "Code"))
      return EL_CODE;
    if(!strcmp(name, "Message"))
      return EL_MESSAGE;
    break;
  default:
    break;
  }
  return EL_OTHER;
}

static void XMLCALL
on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
  struct parser *ps = ud;
  enum el el;

  if(ps->depth >= BLOB_LIST_MAX_DEPTH) {
    fail(ps, ERR_PARSE, "elements nested too deeply");
    return;
  }
  el = classify(ps, name);
  if(ps->depth == 0 && el != (ps->errdoc ? EL_ERROR : EL_ROOT)) {
    fail(ps, ERR_PARSE, ps->errdoc ? "not a storage error document"
                                   : "not a List Blobs response "
                                     "(no EnumerationResults)");
    return;
  }
  ps->stack[ps->depth++] = el;
  switch(el) {
  case EL_BLOB:
    entry_free(&ps->cur);
    ps->cur.last_modified = -1;
    ps->cur.content_length = -1;
    ps->in_blob = 1;
    break;
  case EL_NAME:
    ps->name_encoded = 0;
    for(int i = 0; attrs[i]; i += 2)
      if(!strcmp(attrs[i], "Encoded") && !strcasecmp(attrs[i + 1], "true"))
        ps->name_encoded = 1;
    /* fall through */
  case EL_ETAG: case EL_LASTMOD: case EL_LENGTH: case EL_ENCODING:
  case EL_RESTYPE: case EL_ISFOLDER: case EL_NEXTMARKER: case EL_CODE:
  case EL_MESSAGE:
    buf_reset(&ps->text);
    ps->collecting = 1;
    break;
  default:
    break;
  }
}

static void XMLCALL
on_text(void *ud, const XML_Char *s, int len)
{
  struct parser *ps = ud;
  int rc;

  if(!ps->collecting || len <= 0)
    return;
  rc = buf_append(&ps->text, s, (size_t)len);
  if(rc)
    fail(ps, rc == ERR_TOOBIG ? ERR_PARSE : rc,
         rc == ERR_TOOBIG ? "a field is over its size cap" : "out of memory");
}

/* Takes the collected text as a new string. */
static char *
take_text(struct parser *ps)
{
  char *s = strdup(ps->text.data ? ps->text.data : "");

  if(!s)
    fail(ps, ERR_NOMEM, "out of memory");
  return s;
}

/* Appends the finished entry to the page. */
static void
push_entry(struct parser *ps)
{
  struct blob_page *p = ps->page;

  if(!ps->cur.name || !ps->cur.name[0]) {
    fail(ps, ERR_PARSE, "a Blob has no Name");
    return;
  }
  if(p->n == p->cap) {
    size_t ncap = p->cap ? p->cap * 2 : 64;
    struct blob_entry *ne;

    if(p->n >= BLOB_LIST_MAX_ENTRIES) {
      fail(ps, ERR_PARSE, "too many entries in one page");
      return;
    }
    ne = realloc(p->entries, ncap * sizeof(*ne));
    if(!ne) {
      fail(ps, ERR_NOMEM, "out of memory");
      return;
    }
    p->entries = ne;
    p->cap = ncap;
  }
  p->entries[p->n++] = ps->cur;
  memset(&ps->cur, 0, sizeof(ps->cur));
}

static void XMLCALL
on_end(void *ud, const XML_Char *name)
{
  struct parser *ps = ud;
  enum el el;
  const char *t;
  char *end;

  (void)name;
  if(ps->depth == 0)
    return;
  el = ps->stack[--ps->depth];
  t = ps->text.data ? ps->text.data : "";
  switch(el) {
  case EL_NAME:
    free(ps->cur.name);
    ps->cur.name = NULL;
    if(ps->name_encoded) {
      struct buf d;

      buf_init(&d, BLOB_LIST_MAX_FIELD);
      if(storage_url_decode(t, ps->text.len, &d) == 0) {
        if(d.data && strlen(d.data) != d.len)
          fail(ps, ERR_PARSE, "an encoded Name holds a NUL byte");
        else if(!(ps->cur.name = strdup(d.data ? d.data : "")))
          fail(ps, ERR_NOMEM, "out of memory");
      }
      else
        fail(ps, ERR_NOMEM, "out of memory");
      buf_free(&d);
    }
    else
      ps->cur.name = take_text(ps);
    break;
  case EL_ETAG:
    free(ps->cur.etag);
    ps->cur.etag = take_text(ps);
    break;
  case EL_ENCODING:
    free(ps->cur.content_encoding);
    ps->cur.content_encoding = ps->text.len ? take_text(ps) : NULL;
    break;
  case EL_LASTMOD: {
    time_t tt;

    ps->cur.last_modified = storage_http_date_parse(t, &tt) ? -1
                                                            : (int64_t)tt;
    break;
  }
  case EL_LENGTH: {
    long long v = strtoll(t, &end, 10);

    if(end == t || *end || v < 0)
      fail(ps, ERR_PARSE, "Content-Length is not a number");
    else
      ps->cur.content_length = v;
    break;
  }
  case EL_RESTYPE:
    if(!strcasecmp(t, "directory"))
      ps->cur.is_dir_marker = 1;
    break;
  case EL_ISFOLDER:
    if(!strcasecmp(t, "true"))
      ps->cur.is_dir_marker = 1;
    break;
  case EL_BLOB:
    push_entry(ps);
    ps->in_blob = 0;
    break;
  case EL_NEXTMARKER: {
    struct blob_page *page = ps->page;
    char *marker = take_text(ps);

    free(page->next_marker);
    page->next_marker = marker;
    break;
  }
  case EL_CODE:
    free(ps->code);
    ps->code = take_text(ps);
    break;
  case EL_MESSAGE:
    free(ps->msg);
    ps->msg = take_text(ps);
    break;
  default:
    break;
  }
  if(el != EL_OTHER)
    ps->collecting = 0;
}

static void XMLCALL
on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
           const XML_Char *pubid, int has_internal_subset)
{
  (void)name;
  (void)sysid;
  (void)pubid;
  (void)has_internal_subset;
  fail(ud, ERR_PARSE, "document type declarations are not accepted");
}

/* Runs expat over the input with the handlers above. */
static int
run(struct parser *ps, const char *xml, size_t len,
    struct blob_list_error *err)
{
  int rc = 0;

  buf_init(&ps->text, BLOB_LIST_MAX_FIELD);
  ps->xp = XML_ParserCreate("UTF-8");
  if(!ps->xp)
    return ERR_NOMEM;
  XML_SetUserData(ps->xp, ps);
  XML_SetElementHandler(ps->xp, on_start, on_end);
  XML_SetCharacterDataHandler(ps->xp, on_text);
  XML_SetStartDoctypeDeclHandler(ps->xp, on_doctype);
  /* Feed in chunks: expat takes an int length. */
  do {
    int n = len > (1 << 30) ? (1 << 30) : (int)len;
    int final = (size_t)n == len;

    if(XML_Parse(ps->xp, xml, n, final) != XML_STATUS_OK) {
      if(!ps->rc) {
        ps->rc = ERR_PARSE;
        snprintf(ps->why, sizeof(ps->why), "%s",
                 XML_ErrorString(XML_GetErrorCode(ps->xp)));
      }
      break;
    }
    xml += n;
    len -= (size_t)n;
  } while(len);
  if(!ps->rc && ps->depth != 0) {
    ps->rc = ERR_PARSE;
    snprintf(ps->why, sizeof(ps->why), "document ends early");
  }
  rc = ps->rc;
  if(rc && err) {
    snprintf(err->text, sizeof(err->text), "%s", ps->why);
    err->line = (unsigned long)XML_GetCurrentLineNumber(ps->xp);
    err->column = (unsigned long)XML_GetCurrentColumnNumber(ps->xp) + 1;
  }
  XML_ParserFree(ps->xp);
  buf_free(&ps->text);
  entry_free(&ps->cur);
  return rc;
}

int
blob_list_parse(const char *xml, size_t len, struct blob_page *out,
                struct blob_list_error *err)
{
  struct parser ps;
  int rc;

  memset(out, 0, sizeof(*out));
  memset(&ps, 0, sizeof(ps));
  if(err)
    memset(err, 0, sizeof(*err));
  ps.page = out;
  if(!xml || !len) {
    if(err)
      snprintf(err->text, sizeof(err->text), "empty response body");
    return ERR_PARSE;
  }
  rc = run(&ps, xml, len, err);
  free(ps.code);
  free(ps.msg);
  if(rc)
    blob_page_free(out);
  return rc;
}

int
blob_error_parse(const char *xml, size_t len, char *code, size_t code_size,
                 char *msg, size_t msg_size)
{
  struct blob_page unused;
  struct parser ps;
  int rc;

  if(code_size)
    code[0] = '\0';
  if(msg_size)
    msg[0] = '\0';
  if(!xml || !len)
    return ERR_PARSE;
  memset(&ps, 0, sizeof(ps));
  memset(&unused, 0, sizeof(unused));
  ps.page = &unused;
  ps.errdoc = 1;
  rc = run(&ps, xml, len, NULL);
  if(!rc) {
    if(code_size)
      snprintf(code, code_size, "%s", ps.code ? ps.code : "");
    if(msg_size)
      snprintf(msg, msg_size, "%s", ps.msg ? ps.msg : "");
  }
  free(ps.code);
  free(ps.msg);
  blob_page_free(&unused);
  return rc;
}
