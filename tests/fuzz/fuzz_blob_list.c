/*
 * fuzz_blob_list.c: arbitrary bytes into the List Blobs and error-document
 * parsers. Besides memory errors (ASan/UBSan), it checks the parser's own
 * contract: a success yields entries with names, a failure an empty page.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "blob_list.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct blob_page page;
  struct blob_list_error err;
  char code[64], msg[128];
  int rc;

  rc = blob_list_parse((const char *)data, size, &page, &err);
  if(rc == 0) {
    for(size_t i = 0; i < page.n; i++)
      if(!page.entries[i].name || !page.entries[i].name[0])
        abort();
  }
  else if(page.n || page.entries)
    abort();
  blob_page_free(&page);
  (void)blob_error_parse((const char *)data, size, code, sizeof(code), msg,
                         sizeof(msg));
  return 0;
}
