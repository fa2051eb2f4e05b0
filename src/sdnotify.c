/*
 * sdnotify.c: sd_notify(3) without libsystemd, as in sdnotify.h.
 */
#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "err.h"

int
sdnotify_send(const char *state)
{
  const char *path = getenv("NOTIFY_SOCKET");
  struct sockaddr_un sa;
  socklen_t salen;
  size_t plen;
  ssize_t n;
  int fd, rc = 0;

  if(!path || !*path)
    return 0;
  plen = strlen(path);
  if((path[0] != '/' && path[0] != '@') || plen >= sizeof(sa.sun_path))
    return ERR_INVAL;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, plen);
  if(path[0] == '@')
    sa.sun_path[0] = '\0'; /* abstract namespace */
  salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
  fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if(fd < 0)
    return ERR_IO;
  do
    n = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
               (struct sockaddr *)&sa, salen);
  while(n < 0 && errno == EINTR);
  if(n < 0 || (size_t)n != strlen(state))
    rc = ERR_IO;
  close(fd);
  return rc;
}

void
sdnotify_watchdog_usec(uint64_t *usec)
{
  const char *s = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
  char *end;
  unsigned long long v;

  *usec = 0;
  if(!s || !*s)
    return;
  if(pid && *pid && strtol(pid, NULL, 10) != (long)getpid())
    return;
  errno = 0;
  v = strtoull(s, &end, 10);
  if(errno || *end || v == 0)
    return;
  *usec = (uint64_t)v;
}
