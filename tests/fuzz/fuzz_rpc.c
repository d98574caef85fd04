/* libFuzzer target: the line framer, the JSON-RPC dispatcher and params
 * validation, fed whole NDJSON streams.
 *
 * The input is a byte stream as a client would write it to stdin. The first
 * byte picks how it is cut into reads (so partial lines, CRLF splits and
 * oversize lines cross read boundaries); the rest goes through framing into
 * rpc_handle_line with every protocol method wired to a stub handler that
 * answers at once (no process is ever spawned). Output goes to a pipe that
 * is drained after every line.
 *
 * Checked, besides the sanitizers: every line yields at most one message;
 * a request (an object with a string method and an integer or string id,
 * jsonrpc "2.0" or absent) yields exactly one; every message written is one
 * line of valid JSON with "jsonrpc":"2.0".
 */
#include "protocol/protocol.h"
#include "server/framing.h"
#include "server/rpc.h"
#include "server/transport.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_MAX_LINE 4096       /* small, so oversize lines are reachable */
#define FUZZ_MAX_HANDLERS 128
#define FUZZ_PIPE_BYTES (1 << 20)

static uv_loop_t loop;
static transport *tr;
static int out_r = -1, in_w = -1;
static rpc_handler handlers[FUZZ_MAX_HANDLERS];
static char pending[FUZZ_PIPE_BYTES];
static size_t pending_len;
static size_t messages; /* complete output lines seen */

static void stub(void *server, rpc_request *req, json_t *params) {
  (void)server;
  (void)params;
  if (strcmp(rpc_request_method(req), "initialize") == 0)
    rpc_set_initialized(rpc_request_rpc(req));
  rpc_respond(req, json_object());
}

static void check_message(const char *line, size_t len) {
  json_error_t e;
  json_t *m = json_loadb(line, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
  if (!m || !json_is_object(m) || !json_is_string(json_object_get(m, "jsonrpc")) ||
      strcmp(json_string_value(json_object_get(m, "jsonrpc")), "2.0") != 0) {
    fprintf(stderr, "bad output line: %.*s\n", (int)len, line);
    abort();
  }
  json_decref(m);
}

/* Read what the server wrote and count complete lines. */
static void drain(void) {
  for (;;) {
    uv_run(&loop, UV_RUN_NOWAIT);
    ssize_t n = read(out_r, pending + pending_len, sizeof pending - pending_len);
    if (n <= 0)
      break;
    pending_len += (size_t)n;
    size_t start = 0;
    for (size_t i = 0; i < pending_len; i++)
      if (pending[i] == '\n') {
        check_message(pending + start, i - start);
        messages++;
        start = i + 1;
      }
    memmove(pending, pending + start, pending_len - start);
    pending_len -= start;
    if (pending_len == sizeof pending)
      abort(); /* one message larger than 1 MiB: cannot come from this input */
  }
}

/* Would the dispatcher treat this line as a request it must answer? */
static bool is_request(const char *line, size_t len) {
  json_error_t e;
  json_t *m = json_loadb(line, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
  bool req = false;
  if (m && json_is_object(m)) {
    json_t *id = json_object_get(m, "id"), *method = json_object_get(m, "method"),
           *ver = json_object_get(m, "jsonrpc");
    req = id && method && json_is_string(method) && (json_is_integer(id) || json_is_string(id)) &&
          (!ver || (json_is_string(ver) && strcmp(json_string_value(ver), "2.0") == 0));
  }
  json_decref(m);
  return req;
}

typedef struct feed_ctx {
  rpc *r;
} feed_ctx;

static void on_line(void *arg, const char *line, size_t len) {
  feed_ctx *c = arg;
  size_t before = messages;
  rpc_handle_line(c->r, line, len);
  drain();
  size_t produced = messages - before;
  if (produced > 1 || (produced == 0 && is_request(line, len))) {
    fprintf(stderr, "line answered %zu times: %.*s\n", produced, (int)len, line);
    abort();
  }
}

static void on_oversize(void *arg, uint64_t bytes) {
  feed_ctx *c = arg;
  size_t before = messages;
  rpc_handle_oversize(c->r, (unsigned long long)bytes, FUZZ_MAX_LINE);
  drain();
  if (messages - before != 1)
    abort();
}

static void setup(void) {
  uv_loop_init(&loop);
  int out[2], in[2];
  if (pipe2(out, O_CLOEXEC) < 0 || pipe2(in, O_CLOEXEC) < 0)
    abort();
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  fcntl(out[1], F_SETPIPE_SZ, FUZZ_PIPE_BYTES);
  out_r = out[0];
  in_w = in[1];
  transport_opts to = {.in_fd = in[0],
                       .out_fd = out[1],
                       .max_line_bytes = FUZZ_MAX_LINE,
                       .high_water = 4u << 20,
                       .low_water = 1u << 20,
                       .input_stop = 8u << 20};
  if (transport_open(&loop, &to, &tr) < 0)
    abort();
  size_t n = 0;
  for (const proto_method *m = proto_methods; m->name && n < FUZZ_MAX_HANDLERS - 1; m++)
    if (m->dir == PD_CLIENT_REQUEST)
      handlers[n++] = (rpc_handler){m->name, stub};
  handlers[n] = (rpc_handler){NULL, NULL};
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!tr)
    setup();
  if (size == 0)
    return 0;
  size_t chunk = (size_t)data[0] % 64 + 1; /* bytes per read */
  data++;
  size--;
  rpc_opts o = {.max_inflight = 8, .call_timeout_ms = 1000, .handlers = handlers};
  rpc *r;
  if (rpc_new(&loop, tr, &o, &r) < 0)
    abort();
  feed_ctx c = {.r = r};
  framing f;
  framing_init(&f, FUZZ_MAX_LINE, on_line, on_oversize, &c);
  for (size_t off = 0; off < size; off += chunk) {
    size_t n = size - off < chunk ? size - off : chunk;
    if (framing_feed(&f, (const char *)data + off, n) < 0)
      abort();
  }
  framing_finish(&f);
  framing_free(&f);
  rpc_cancel_calls(r);
  rpc_free(r);
  drain();
  return 0;
}
