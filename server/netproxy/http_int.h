/* server/netproxy internals of the HTTP side, shared by http_msg.c (the
 * parser's callbacks, heads, answers), http_head.c (the request head, pure)
 * and http.c (the exchange). */
#ifndef WARDEN_NP_HTTP_INT_H
#define WARDEN_NP_HTTP_INT_H

#include "server/netproxy/np_int.h"

#define NP_IOV_MAX 192               /* body pieces gathered per write */
#define NP_SCRATCH (NP_IOV_MAX * 12) /* chunk-size lines of one write */
#define NP_UPSTREAM_IN (NETPROXY_MAX_RESPONSE_HEAD + 64 * 1024)

enum { H_HEAD = 0, H_DECIDE, H_BODY, H_WAIT, H_TUNNEL, H_DONE };

extern http_parser_settings np_req_settings, np_resp_settings;
void np_http_settings_init(void);

/* Answers of our own; each ends the connection once written. */
void np_http_answer(np_conn *c, int code, const char *status, const char *extra_headers,
                    const char *ctype, const char *body);
void np_http_answer_text(np_conn *c, int code, const char *status, const char *fmt,
                         const char *a);
/* A policy refusal: reported, then 403 with x-proxy-error and the JSON body. */
void np_http_refuse(np_conn *c, const char *reason, const char *source);

/* Writes gathered from parser callbacks (to the upstream or to the client). */
void np_iov_add(np_conn *c, bool to_up, const char *p, size_t len);
bool np_iov_full(const np_conn *c, bool to_up);

/* A growing string for rebuilt heads; oom set on allocation failure. */
typedef struct np_sbuf {
  char *p;
  size_t len, cap;
  bool oom;
} np_sbuf;
void np_sb_add(np_sbuf *b, const char *s, size_t n);
void np_sb_str(np_sbuf *b, const char *s);
/* The head's headers without the hop-by-hop ones. */
void np_sb_headers(np_sbuf *b, const char *base, const np_head *h);
/* Every header name is a token. The parser (built without
 * HTTP_PARSER_STRICT) lets a space into one: " X: 1" after a header line
 * reads to the next hop as a continuation of that line (obs-fold). */
bool np_head_names_valid(const char *base, const np_head *h);
/* The index of the first header of that name (from index `from` on), or -1. */
int np_find_header(const char *base, const np_head *h, const char *name);
int np_find_header_after(const char *base, const np_head *h, const char *name, unsigned from);

/* ---- http_head.c: the request head, pure (no I/O, no timers) ---- */

/* The buffers and the request parser of a new HTTP connection; 0 or
 * -ENOMEM (whatever was allocated is freed with the connection). */
int np_http_prepare(np_conn *c);

enum { NP_HEAD_MORE = 0, NP_HEAD_READY = 1 };
typedef struct np_head_outcome {
  int code;           /* NP_HEAD_MORE, NP_HEAD_READY, -ENOMEM, or a status to answer (400, 431) */
  const char *status; /* the answer's reason phrase */
  const char *fmt;    /* its text, with one %s for arg */
  const char *arg;
} np_head_outcome;

/* Feed c->in[c->in_used..c->in_len) to the request parser (state H_HEAD).
 * NP_HEAD_MORE: the head is not complete yet and within the limits.
 * NP_HEAD_READY: c->method, host, port, proto, req_keepalive, head_request
 * and chunked_req are set; for CONNECT c->in_used is past the head (what
 * follows is tunnel data), else c->req_head is the head for the upstream.
 * Anything else: the answer the client gets. */
void np_req_head_step(np_conn *c, np_head_outcome *o);

#endif
