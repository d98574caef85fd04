/* The HTTP/1.x side: request heads parsed with http_parser (Debian's
 * libhttp-parser, the Node.js parser in C), absolute-form requests
 * forwarded with keep-alive and pipelining, bodies streamed both ways, and
 * CONNECT handed to the relay.
 *
 * One exchange at a time per client connection: the head is read (at most
 * NETPROXY_MAX_HEAD bytes and NETPROXY_MAX_HEADERS lines, complete within the
 * head timeout), decided, the upstream dialled (or the previous one reused
 * when it is the same host and port), a rebuilt head sent without hop-by-hop
 * headers, then the body streamed as the parser finds it (chunked bodies are
 * re-framed: the parser hands over the payload, the proxy writes the chunk
 * lines). The response comes back the same way. Pipelined requests wait in
 * the input buffer (the client is not read meanwhile) until the response
 * before them is out. Backpressure: while a write to one side is pending,
 * the other side is not read. */
#include "server/netproxy/http_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the exchange ---- */

static void feed_req(np_conn *c);
static void feed_resp(np_conn *c);
static void up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void compact_in(np_conn *c) {
  if (c->in_used) {
    memmove(c->in, c->in + c->in_used, c->in_len - c->in_used);
    c->in_len -= c->in_used;
    c->in_used = 0;
  }
}

static void head_timeout(np_conn *c) {
  np_http_answer_text(c, 408, "Request Timeout",
              "warden proxy: the request head did not arrive within the time allowed", NULL);
}

static void idle_timeout(np_conn *c) { np_conn_close(c); }

static void up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  np_conn *c = h->data;
  (void)suggested;
  if (!c->uin)
    c->uin = malloc(NP_UPSTREAM_IN);
  if (!c->uin || c->uin_len >= NP_UPSTREAM_IN) {
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  *buf = uv_buf_init(c->uin + c->uin_len, (unsigned)(NP_UPSTREAM_IN - c->uin_len));
}

static void resp_reset(np_conn *c) {
  http_parser_init(&c->resp, HTTP_RESPONSE);
  c->resp.data = c;
  memset(&c->rs, 0, sizeof c->rs);
  c->resp_done = false;
}

static void next_exchange(np_conn *c) {
  http_parser_init(&c->reqp, HTTP_REQUEST);
  c->reqp.data = c;
  memset(&c->rq, 0, sizeof c->rq);
  c->state = H_HEAD;
  compact_in(c);
  c->head_timing = c->in_len > 0;
  if (c->in_len)
    np_timer_set(c, np_head_timeout(c), head_timeout);
  else
    np_timer_set(c, np_idle_timeout(c), idle_timeout);
  if (c->in_len)
    feed_req(c);
  else if (np_client_read_start(c) < 0)
    np_conn_close(c);
}

/* The response is out; keep the connection for the next request or end it. */
static void exchange_done(np_conn *c) {
  bool keep = c->rq.complete && c->req_keepalive && !c->resp_close &&
              http_should_keep_alive(&c->resp);
  if (!keep) {
    np_conn_close(c);
    return;
  }
  c->uin_len = c->uin_used = 0;
  resp_reset(c);
  if (c->up) /* watch the idle upstream: its close is noticed, not found later */
    uv_read_start((uv_stream_t *)c->up, up_alloc, up_read);
  next_exchange(c);
}

static void wrote_client(uv_write_t *req, int status) {
  np_conn *c = req->data;
  if (c->dead)
    return;
  c->writing_client = false;
  c->niov_c = 0;
  c->scratch_c_len = 0;
  free(c->scratch_c_head);
  c->scratch_c_head = NULL;
  if (status < 0) {
    np_conn_close(c);
    return;
  }
  /* the bytes written were spans of uin: drop them */
  memmove(c->uin, c->uin + c->uin_used, c->uin_len - c->uin_used);
  c->uin_len -= c->uin_used;
  c->uin_used = 0;
  if (c->resp_done) {
    exchange_done(c);
    return;
  }
  if (c->up && !c->up_eof)
    uv_read_start((uv_stream_t *)c->up, up_alloc, up_read);
  if (c->uin_len || c->up_eof)
    feed_resp(c);
}

static void flush_client(np_conn *c) {
  if (!c->niov_c) {
    if (c->resp_done)
      exchange_done(c);
    return;
  }
  c->writing_client = true;
  c->wc.data = c;
  if (c->up)
    uv_read_stop((uv_stream_t *)c->up);
  if (uv_write(&c->wc, (uv_stream_t *)c->client, c->iov_c, c->niov_c, wrote_client) < 0)
    np_conn_close(c);
}

/* Build the head the client gets from the response head in uin. */
static int build_resp_head(np_conn *c) {
  np_sbuf b = {0};
  char line[64];
  snprintf(line, sizeof line, "HTTP/1.1 %u ", c->resp.status_code);
  np_sb_str(&b, line);
  np_sb_add(&b, c->uin + c->rs.status.off, c->rs.status.len);
  np_sb_str(&b, "\r\n");
  np_sb_headers(&b, c->uin, &c->rs);
  c->chunked_resp = (c->resp.flags & F_CHUNKED) != 0;
  bool until_close = !c->head_request && !c->chunked_resp && c->resp.status_code >= 200 &&
                     c->resp.status_code != 204 && c->resp.status_code != 304 &&
                     np_find_header(c->uin, &c->rs, "content-length") < 0;
  if (until_close)
    c->resp_close = true;
  if (c->resp.status_code >= 200 && (c->resp_close || !c->req_keepalive))
    np_sb_str(&b, "Connection: close\r\n");
  np_sb_str(&b, "\r\n");
  if (b.oom) {
    free(b.p);
    return -ENOMEM;
  }
  c->scratch_c_head = b.p;
  np_iov_add(c, false, b.p, b.len);
  return 0;
}

static void feed_resp(np_conn *c) {
  if (c->writing_client || c->dead)
    return;
  for (;;) {
    size_t avail = c->uin_len - c->uin_used;
    if (!avail && !c->up_eof)
      break;
    if ((HTTP_PARSER_ERRNO(&c->resp) == HPE_PAUSED))
      http_parser_pause(&c->resp, 0);
    size_t n = http_parser_execute(&c->resp, &np_resp_settings, avail ? c->uin + c->uin_used : NULL,
                                   avail);
    c->uin_used += n;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->resp);
    if (e != HPE_OK && e != HPE_PAUSED) {
      if (!c->rs.head_sent)
        np_http_answer_text(c, 502, "Bad Gateway", "warden proxy: the upstream answered with a malformed "
                                           "response (%s)", http_errno_name(e));
      else
        np_conn_close(c);
      return;
    }
    if (c->rs.done && !c->rs.head_sent && !np_head_names_valid(c->uin, &c->rs)) {
      np_http_answer_text(c, 502, "Bad Gateway",
                          "warden proxy: the upstream answered with a malformed response (%s)",
                          "a header name that is not a token");
      return;
    }
    if (c->rs.done && !c->rs.head_sent) {
      c->rs.head_sent = true;
      if (build_resp_head(c) < 0) {
        np_conn_close(c);
        return;
      }
    }
    if (c->rs.complete) {
      unsigned code = c->resp.status_code;
      if (code >= 100 && code < 200 && code != 101) { /* interim: the real answer follows */
        size_t used = c->uin_used;
        http_parser_init(&c->resp, HTTP_RESPONSE);
        c->resp.data = c;
        memset(&c->rs, 0, sizeof c->rs);
        c->uin_used = used;
        continue;
      }
      c->resp_done = true;
      if (code == 101)
        c->resp_close = true;
      break;
    }
    if (c->up_eof && !avail) {
      /* EOF before the end of the response */
      if (!c->rs.head_sent) {
        np_http_answer_text(c, 502, "Bad Gateway",
                    "warden proxy: the upstream closed the connection without a response%s",
                    NULL);
        return;
      }
      if (!c->niov_c) {
        np_conn_close(c);
        return;
      }
      break;
    }
    if (np_iov_full(c, false))
      break;
    if (n == avail && !(HTTP_PARSER_ERRNO(&c->resp) == HPE_PAUSED))
      break; /* all consumed; wait for more */
  }
  if (!c->rs.done && c->uin_len >= NETPROXY_MAX_RESPONSE_HEAD) {
    np_http_answer_text(c, 502, "Bad Gateway", "warden proxy: the upstream response head is too large%s",
                NULL);
    return;
  }
  flush_client(c);
  if (c->up_eof && !c->resp_done && !c->writing_client && !c->dead)
    np_conn_close(c);
}

static void up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  np_conn *c = s->data;
  (void)buf;
  if (c->dead || nread == 0)
    return;
  if (nread < 0 && nread != UV_ENOBUFS) {
    uv_read_stop(s);
    if ((c->state == H_HEAD || c->state == H_DECIDE) && c->uin_len == 0) {
      /* an idle keep-alive upstream (no request outstanding) went away:
       * dial again next time */
      np_handle_close(c, (uv_handle_t *)c->up);
      c->up = NULL;
      return;
    }
    c->up_eof = true;
    feed_resp(c);
    return;
  }
  if (nread == UV_ENOBUFS) {
    uv_read_stop(s);
    feed_resp(c);
    return;
  }
  c->uin_len += (size_t)nread;
  if (c->state == H_HEAD || c->state == H_DECIDE) {
    /* bytes from an idle upstream with no request outstanding: a broken
     * server; drop it */
    np_handle_close(c, (uv_handle_t *)c->up);
    c->up = NULL;
    c->uin_len = 0;
    return;
  }
  feed_resp(c);
}

static void wrote_up(uv_write_t *req, int status) {
  np_conn *c = req->data;
  if (c->dead)
    return;
  c->writing_up = false;
  c->niov_u = 0;
  c->scratch_u_len = 0;
  if (status < 0) {
    np_conn_close(c);
    return;
  }
  compact_in(c);
  feed_req(c);
}

static void flush_up(np_conn *c) {
  if (!c->niov_u)
    return;
  c->writing_up = true;
  c->wu.data = c;
  uv_read_stop((uv_stream_t *)c->client);
  if (uv_write(&c->wu, (uv_stream_t *)c->up, c->iov_u, c->niov_u, wrote_up) < 0)
    np_conn_close(c);
}

/* Stream the request body to the upstream. */
static void body_step(np_conn *c) {
  for (;;) {
    size_t avail = c->in_len - c->in_used;
    if (!avail) /* (a zero-length execute would mean EOF to the parser) */
      break;
    if ((HTTP_PARSER_ERRNO(&c->reqp) == HPE_PAUSED))
      http_parser_pause(&c->reqp, 0);
    size_t n = http_parser_execute(&c->reqp, &np_req_settings, c->in + c->in_used, avail);
    c->in_used += n;
    enum http_errno e = HTTP_PARSER_ERRNO(&c->reqp);
    if (e != HPE_OK && e != HPE_PAUSED) {
      np_conn_close(c); /* a malformed body: the upstream has a partial request */
      return;
    }
    if (c->rq.complete || np_iov_full(c, true) || n == avail)
      break;
  }
  if (c->rq.complete) {
    c->state = H_WAIT;
    uv_read_stop((uv_stream_t *)c->client);
  }
  if (c->niov_u) {
    flush_up(c);
    return;
  }
  if (c->state == H_BODY) {
    if (c->client_eof) {
      np_conn_close(c);
      return;
    }
    compact_in(c);
    np_client_read_start(c);
  }
}

static void send_head(np_conn *c) {
  /* The rebuilt head goes first; the body follows as it is parsed. */
  np_iov_add(c, true, c->req_head, c->req_head_len);
  c->state = H_BODY;
  c->req_done = false;
  uv_read_start((uv_stream_t *)c->up, up_alloc, up_read);
  body_step(c);
}

static void dialed(np_conn *c, int err) {
  if (c->dead)
    return;
  if (err == -EACCES) {
    np_http_refuse(c, "not_allowed_local", "baseline_policy");
    return;
  }
  if (err == -ETIMEDOUT) {
    np_http_answer_text(c, 504, "Gateway Timeout", "warden proxy: %s did not answer in time", c->host);
    return;
  }
  if (err < 0) {
    char msg[400];
    snprintf(msg, sizeof msg, "warden proxy: cannot reach %s port %u: %s", c->host, c->port,
             err == -EHOSTUNREACH ? "the name does not resolve" : uv_strerror(err));
    np_http_answer_text(c, 502, "Bad Gateway", "%s", msg);
    return;
  }
  np_report(c, NETPROXY_ALLOW, "allowed", c->allow_source);
  if (c->proto == NETPROXY_HTTPS) {
    c->state = H_TUNNEL;
    np_timer_stop(c);
    static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    np_relay_start(c, ok, sizeof ok - 1);
    return;
  }
  snprintf(c->up_host, sizeof c->up_host, "%s", c->host);
  c->up_port = c->port;
  c->up_reading = false;
  c->up_eof = false;
  c->uin_len = c->uin_used = 0;
  resp_reset(c);
  send_head(c);
}

static void decided(np_conn *c, netproxy_verdict v, const char *reason, const char *source) {
  if (c->dead)
    return;
  if (v != NETPROXY_ALLOW) {
    np_http_refuse(c, reason, source);
    return;
  }
  c->allow_source = source;
  if (c->proto == NETPROXY_HTTP && c->up && c->up_connected && !c->up_eof &&
      strcmp(c->up_host, c->host) == 0 && c->up_port == c->port) {
    np_report(c, NETPROXY_ALLOW, "allowed", source); /* reuse: checked when dialled */
    resp_reset(c);
    send_head(c);
    return;
  }
  if (c->up) {
    np_handle_close(c, (uv_handle_t *)c->up);
    c->up = NULL;
    c->up_connected = false;
  }
  np_dial(c, dialed);
}

static void feed_req(np_conn *c) {
  if (c->dead)
    return;
  if (c->state == H_BODY) {
    if (!c->writing_up)
      body_step(c);
    return;
  }
  if (c->state != H_HEAD)
    return;
  np_head_outcome o;
  np_req_head_step(c, &o);
  if (o.code == NP_HEAD_READY) {
    c->state = H_DECIDE;
    np_timer_stop(c);
    uv_read_stop((uv_stream_t *)c->client);
    np_decide(c, decided);
    return;
  }
  if (o.code < 0) {
    np_conn_close(c);
    return;
  }
  if (o.code != NP_HEAD_MORE) {
    np_http_answer_text(c, o.code, o.status, o.fmt, o.arg);
    return;
  }
  if (c->client_eof) {
    np_conn_close(c);
    return;
  }
  if (c->in_len && !c->head_timing) { /* a head has begun: it must end in time */
    c->head_timing = true;
    np_timer_set(c, np_head_timeout(c), head_timeout);
  }
  np_client_read_start(c);
}

void np_http_start(np_conn *c) {
  if (np_http_prepare(c) < 0) {
    np_conn_close(c);
    return;
  }
  feed_req(c);
}

void np_http_on_read(np_conn *c) { feed_req(c); }
