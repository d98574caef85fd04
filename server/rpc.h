/* The JSON-RPC dispatcher: turns lines into requests, notifications and
 * responses; validates params against protocol/; routes requests to the
 * handler table; answers every request exactly once; tracks server-to-client
 * requests by id with a timeout; bounds the number of requests in flight.
 *
 * Ownership: an rpc_request belongs to the dispatcher and is freed by the one
 * call that answers it (rpc_respond / rpc_respond_error). Result, data and
 * params objects passed in are stolen (the caller's reference moves).
 */
#ifndef WARDEN_RPC_H
#define WARDEN_RPC_H

#include "server/transport.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

enum {
  RPC_PARSE_ERROR = -32700,
  RPC_INVALID_REQUEST = -32600,
  RPC_METHOD_NOT_FOUND = -32601,
  RPC_INVALID_PARAMS = -32602,
  RPC_INTERNAL_ERROR = -32603,
  RPC_OVERLOADED = -32001,
  RPC_UNKNOWN_PROCESS = -32002,
  RPC_SANDBOX_DENIED = -32003,
  RPC_SPAWN_FAILED = -32004,
};

typedef struct rpc rpc;
typedef struct rpc_request rpc_request;

typedef void (*rpc_handler_fn)(void *server, rpc_request *req, json_t *params);

typedef struct rpc_handler {
  const char *method;
  rpc_handler_fn fn;
} rpc_handler;

typedef struct rpc_opts {
  unsigned max_inflight;      /* requests answered later, at once; past it -32001 */
  uint64_t call_timeout_ms;   /* default timeout of server-to-client requests */
  const rpc_handler *handlers; /* terminated by {NULL, NULL} */
  void *server;                /* passed to handlers */
  /* A client notification (params borrowed, may be NULL). */
  void (*on_notification)(void *server, const char *method, json_t *params);
} rpc_opts;

int rpc_new(uv_loop_t *loop, transport *out, const rpc_opts *opts, rpc **out_rpc);
void rpc_free(rpc *r);
void rpc_set_transport(rpc *r, transport *t);

/* Feed one line from the transport. */
void rpc_handle_line(rpc *r, const char *line, size_t len);
/* A line over the limit was skipped. */
void rpc_handle_oversize(rpc *r, unsigned long long bytes, size_t limit);

void rpc_set_initialized(rpc *r);
bool rpc_is_initialized(const rpc *r);
/* Notification methods this client opted out of (array of strings, borrowed
 * then copied). */
void rpc_set_opt_out(rpc *r, const json_t *methods);
bool rpc_notification_wanted(const rpc *r, const char *method);

void rpc_respond(rpc_request *req, json_t *result);
void rpc_respond_error(rpc_request *req, int code, const char *message, json_t *data);
/* printf-style message, no data. */
void rpc_respond_errorf(rpc_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *rpc_request_method(const rpc_request *req);
rpc *rpc_request_rpc(const rpc_request *req);

void rpc_notify(rpc *r, const char *method, json_t *params);
/* Send a preformatted message line (ending in '\n'). */
transport *rpc_transport(rpc *r);

/* Server-to-client request. cb gets the result (borrowed) or an error
 * (borrowed; code -32603 with "timed out" / "connection closed" when the
 * client did not answer). Returns the id. */
typedef void (*rpc_call_cb)(void *arg, const json_t *result, const json_t *error);
int64_t rpc_call(rpc *r, const char *method, json_t *params, uint64_t timeout_ms, rpc_call_cb cb,
                 void *arg);
/* Fail every pending server-to-client request (connection closing). */
void rpc_cancel_calls(rpc *r);

unsigned rpc_inflight(const rpc *r);

/* Telemetry (server/telemetry): one span per request, continuing the W3C
 * trace in params._meta.traceparent. `_meta` is accepted in every request's
 * params and removed before validation. t NULL: off. */
struct telemetry;
struct tele_span;
void rpc_set_telemetry(rpc *r, struct telemetry *t);
/* The request's span, for child spans and records (NULL when off). */
struct tele_span *rpc_request_span(const rpc_request *req);

#endif
