/* The stand-in for the egress proxy: serves the two listening sockets that a
 * proxy-mode sandbox created inside its network namespace (HTTP on one,
 * SOCKS5 on the other) and refuses every request, so a command with
 * network mode "proxy" reaches nothing until the egress proxy with its
 * allow/deny rules takes over these sockets. Refusals are explicit: HTTP 403
 * for plain requests and CONNECT, SOCKS5 reply 0x02 ("not allowed by
 * ruleset"), each naming warden, so a user sees why instead of a hang.
 */
#ifndef WARDEN_NETSTUB_H
#define WARDEN_NETSTUB_H

#include <uv.h>

typedef struct netstub netstub;

/* Takes ownership of both listening fds (closed on error too). */
int netstub_start(uv_loop_t *loop, int http_fd, int socks_fd, netstub **out);
/* Close the listeners and every open connection; frees itself once libuv
 * has closed the handles. NULL is fine. */
void netstub_close(netstub *n);

/* Limits: the request head an HTTP client may send before it is answered,
 * and the SOCKS5 handshake bytes we read. */
#define NETSTUB_MAX_HTTP_HEAD 16384
#define NETSTUB_MAX_SOCKS 1024

#endif
