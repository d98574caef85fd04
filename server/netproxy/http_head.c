/* The request head, pure: no I/O, no timers, no libuv call. The parser is
 * fed what the client sent so far (c->in), the head is checked against the
 * proxy's limits, the target and the Host header are parsed, and the head
 * for the upstream is rebuilt. http.c drives this from the connection's
 * reads and acts on the outcome (an answer of our own, or the decision);
 * tests/fuzz/fuzz_proxy_head.c drives it with bytes alone. */
#include "server/netproxy/http_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char too_large[] = "Request Header Fields Too Large";

static void answer(np_head_outcome *o, int code, const char *status, const char *fmt,
                   const char *arg) {
  o->code = code;
  o->status = status;
  o->fmt = fmt;
  o->arg = arg;
}

static void bad_request(np_head_outcome *o, const char *fmt) {
  answer(o, 400, "Bad Request", fmt, NULL);
}

int np_http_prepare(np_conn *c) {
  np_http_settings_init();
  c->iov_c = malloc(NP_IOV_MAX * sizeof *c->iov_c);
  c->iov_u = malloc(NP_IOV_MAX * sizeof *c->iov_u);
  c->scratch_c = malloc(NP_SCRATCH);
  c->scratch_u = malloc(NP_SCRATCH);
  if (!c->iov_c || !c->iov_u || !c->scratch_c || !c->scratch_u)
    return -ENOMEM;
  http_parser_init(&c->reqp, HTTP_REQUEST);
  c->reqp.data = c;
  c->state = H_HEAD;
  return 0;
}

/* The Host header of an absolute-form request must name the target: 0 when
 * it does (or there is none), -EINVAL when not. */
static int host_header_matches(const np_conn *c, int hi) {
  np_span v = c->rq.value[hi];
  char hh[NETPROXY_MAX_HOST + 1];
  const char *hv = c->in + v.off;
  size_t hl = v.len;
  /* the port part: after "]" for v6, else after the only ":" */
  const char *colon = NULL;
  const char *rb = memchr(hv, ']', hl);
  if (rb)
    colon = (size_t)(rb - hv) + 1 < hl && rb[1] == ':' ? rb + 1 : NULL;
  else {
    colon = memchr(hv, ':', hl);
    if (colon && memchr(colon + 1, ':', hl - (size_t)(colon - hv) - 1))
      colon = NULL;
  }
  long hport = 80;
  bool bad = np_host_normalize(hv, hl, hh, sizeof hh) < 0;
  if (!bad && colon) {
    char *end;
    char digits[8] = {0};
    size_t dl = hl - (size_t)(colon - hv) - 1;
    if (dl == 0 || dl >= sizeof digits)
      bad = true;
    else {
      memcpy(digits, colon + 1, dl);
      hport = strtol(digits, &end, 10);
      bad = *end != 0;
    }
  }
  return bad || strcmp(hh, c->host) != 0 || hport != c->port ? -EINVAL : 0;
}

/* The origin-form head for the upstream: request line, Host when the
 * client sent none, the end-to-end headers. */
static int rebuild_head(np_conn *c, const struct http_parser_url *u, int hi) {
  const char *url = c->in + c->rq.url.off;
  np_sbuf b = {0};
  np_sb_str(&b, c->method);
  np_sb_str(&b, " ");
  if (u->field_set & (1 << UF_PATH))
    np_sb_add(&b, url + u->field_data[UF_PATH].off, u->field_data[UF_PATH].len);
  else
    np_sb_str(&b, "/");
  if (u->field_set & (1 << UF_QUERY)) {
    np_sb_str(&b, "?");
    np_sb_add(&b, url + u->field_data[UF_QUERY].off, u->field_data[UF_QUERY].len);
  }
  char ver[32];
  snprintf(ver, sizeof ver, " HTTP/%u.%u\r\n", c->reqp.http_major, c->reqp.http_minor);
  np_sb_str(&b, ver);
  if (hi < 0) {
    size_t ho = u->field_data[UF_HOST].off, hl = u->field_data[UF_HOST].len;
    bool v6 = url[ho - 1] == '[';
    np_sb_str(&b, "Host: ");
    np_sb_add(&b, url + ho - (v6 ? 1 : 0), hl + (v6 ? 2 : 0));
    if (u->field_set & (1 << UF_PORT)) {
      char p[16];
      snprintf(p, sizeof p, ":%u", c->port);
      np_sb_str(&b, p);
    }
    np_sb_str(&b, "\r\n");
  }
  np_sb_headers(&b, c->in, &c->rq);
  np_sb_str(&b, "\r\n");
  if (b.oom) {
    free(b.p);
    return -ENOMEM;
  }
  free(c->req_head);
  c->req_head = b.p;
  c->req_head_len = b.len;
  return 0;
}

/* The head is complete: parse the target and the Host header, build the
 * head for the upstream (or, for CONNECT, consume the rest of the head:
 * what follows is tunnel data). */
static void target(np_conn *c, np_head_outcome *o) {
  const char *in = c->in;
  snprintf(c->method, sizeof c->method, "%s", http_method_str(c->reqp.method));
  c->req_keepalive = http_should_keep_alive(&c->reqp);
  c->head_request = c->reqp.method == HTTP_HEAD;
  c->chunked_req = (c->reqp.flags & F_CHUNKED) != 0;
  bool connect = c->reqp.method == HTTP_CONNECT;
  /* HTTP/0.9 (a request line without a version, no headers) and versions
   * past 1.x are no requests this proxy forwards: a 0.9 CONNECT would
   * swallow the first bytes of the tunnel as the rest of its head. */
  if (c->reqp.http_major != 1) {
    answer(o, 505, "HTTP Version Not Supported",
           "warden proxy: only HTTP/1.0 and HTTP/1.1 requests are forwarded%s", NULL);
    return;
  }
  struct http_parser_url u;
  http_parser_url_init(&u);
  if (!c->rq.url.len ||
      http_parser_parse_url(in + c->rq.url.off, c->rq.url.len, connect, &u) != 0) {
    bad_request(o, "warden proxy: the request target is not a valid URL%s");
    return;
  }
  const char *url = in + c->rq.url.off;
  if (!connect) {
    if (!(u.field_set & (1 << UF_SCHEMA)) || !(u.field_set & (1 << UF_HOST))) {
      bad_request(o, "warden proxy: this is a forward proxy; send absolute-form requests "
                     "(GET http://host/path) or CONNECT host:port%s");
      return;
    }
    if (u.field_data[UF_SCHEMA].len != 4 ||
        strncasecmp(url + u.field_data[UF_SCHEMA].off, "http", 4) != 0) {
      bad_request(o, "warden proxy: only http:// URLs are forwarded; use CONNECT for https%s");
      return;
    }
  } else if (!(u.field_set & (1 << UF_PORT))) {
    bad_request(o, "warden proxy: CONNECT needs host:port%s");
    return;
  }
  /* the URL parser's host leaves an IPv6 literal's brackets out: they go
   * in again (without them, "[a:b]" would read as host a, port b) */
  size_t ho = u.field_data[UF_HOST].off, hl = u.field_data[UF_HOST].len;
  bool v6 = ho > 0 && url[ho - 1] == '[';
  if (np_host_normalize(url + ho - v6, hl + 2 * v6, c->host, sizeof c->host) < 0) {
    bad_request(o, "warden proxy: invalid host in the request target%s");
    return;
  }
  c->port = (u.field_set & (1 << UF_PORT)) ? u.port : 80;
  if (c->port == 0) {
    bad_request(o, "warden proxy: port 0 is not a destination%s");
    return;
  }
  c->proto = connect ? NETPROXY_HTTPS : NETPROXY_HTTP;
  int hi = np_find_header(in, &c->rq, "host");
  if (hi >= 0 && np_find_header_after(in, &c->rq, "host", (unsigned)hi + 1) >= 0) {
    /* which one would the upstream read? (RFC 9112 3.2: refused) */
    bad_request(o, "warden proxy: more than one Host header%s");
    return;
  }
  if (hi >= 0 && !connect && host_header_matches(c, hi) < 0) {
    bad_request(o, "warden proxy: the Host header does not match the request target%s");
    return;
  }
  if (!connect) {
    if (rebuild_head(c, &u, hi) < 0) {
      o->code = -ENOMEM;
      return;
    }
  } else {
    http_parser_pause(&c->reqp, 0);
    size_t n = http_parser_execute(&c->reqp, &np_req_settings, c->in + c->in_used,
                                   c->in_len - c->in_used);
    c->in_used += n;
  }
  o->code = NP_HEAD_READY;
}

/* What is wrong with the bytes of a complete head in[0, end), or NULL.
 * The parser (built without HTTP_PARSER_STRICT) takes whatever byte follows
 * a CR for the LF (a CONNECT's head would end on the tunnel's first byte, a
 * header line on the next line's first), and lets a NUL through in a
 * header value (to an upstream in C, the value's end). */
static const char *bad_bytes(const char *in, size_t end, size_t len) {
  for (size_t i = 0; i < end; i++) {
    if (in[i] == '\r' && (i + 1 >= len || in[i + 1] != '\n'))
      return "a CR without its LF in the head";
    if (in[i] == '\0')
      return "a NUL byte in the head";
  }
  return NULL;
}

void np_req_head_step(np_conn *c, np_head_outcome *o) {
  *o = (np_head_outcome){.code = NP_HEAD_MORE};
  if (c->in_len > c->in_used) {
    size_t n = http_parser_execute(&c->reqp, &np_req_settings, c->in + c->in_used,
                                   c->in_len - c->in_used);
    c->in_used += n;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->reqp);
    if (c->rq.too_many) {
      answer(o, 431, too_large, "warden proxy: more header lines than the proxy accepts%s", NULL);
      return;
    }
    if (c->rq.folded) {
      answer(o, 400, "Bad Request", "warden proxy: malformed request (%s)",
             "a header line folded onto the next (obs-fold)");
      return;
    }
    if (e == HPE_HEADER_OVERFLOW) {
      answer(o, 431, too_large, "warden proxy: the request head is larger than the proxy accepts%s",
             NULL);
      return;
    }
    if (e != HPE_OK && e != HPE_PAUSED) {
      answer(o, 400, "Bad Request", "warden proxy: malformed request (%s)",
             http_errno_description(e));
      return;
    }
    const char *why = c->rq.done ? bad_bytes(c->in, c->in_used, c->in_len) : NULL;
    if (!why && c->rq.done && !np_head_names_valid(c->in, &c->rq))
      why = "a header name that is not a token";
    if (why) {
      answer(o, 400, "Bad Request", "warden proxy: malformed request (%s)", why);
      return;
    }
    if (c->rq.done && c->reqp.uses_transfer_encoding && !(c->reqp.flags & F_CHUNKED)) {
      /* The parser refuses this (RFC 9112 6.3: no way to find the body's
       * end) only past the head, where it is paused: refused here, before
       * the head is decided and sent on. */
      answer(o, 400, "Bad Request", "warden proxy: malformed request (%s)",
             http_errno_description(HPE_INVALID_TRANSFER_ENCODING));
      return;
    }
    if (c->rq.done) {
      if (c->in_used > NETPROXY_MAX_HEAD) {
        answer(o, 431, too_large,
               "warden proxy: the request head is larger than the proxy accepts%s", NULL);
        return;
      }
      target(c, o);
      return;
    }
  }
  if (c->in_len >= NETPROXY_MAX_HEAD)
    answer(o, 431, too_large, "warden proxy: the request head is larger than the proxy accepts%s",
           NULL);
}
