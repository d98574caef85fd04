/* The stdio transport: stdin as a stream of newline-terminated lines (a pipe,
 * socket, tty or regular file), stdout as a bounded queue of whole messages.
 *
 * Output: transport_out_alloc() returns a buffer the caller fills and hands
 * back with transport_out_send(); the transport tries to write it at once and
 * queues what the kernel did not take. Queued bytes are bounded by marks:
 * above `high_water` on_pressure(arg, 1) is called (the server stops reading
 * children's output), below `low_water` on_pressure(arg, 0). Above
 * `input_stop` the transport also stops reading stdin until the queue drains
 * below `low_water`, and the lines already read from stdin but not yet
 * delivered wait (parked in the framer, in order): a client that never reads
 * cannot grow memory past input_stop plus one read and the last reply,
 * whatever it sends. End of stdin is reported after the parked lines.
 *
 * Ownership: the transport owns every queued buffer.
 */
#ifndef WARDEN_TRANSPORT_H
#define WARDEN_TRANSPORT_H

#include "server/framing.h"

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

typedef struct transport transport;

typedef struct transport_opts {
  int in_fd, out_fd;
  size_t max_line_bytes;
  size_t high_water, low_water, input_stop;
  void *arg;
  void (*on_line)(void *arg, const char *line, size_t len);
  void (*on_oversize)(void *arg, unsigned long long bytes);
  void (*on_eof)(void *arg);                 /* stdin ended or failed */
  void (*on_pressure)(void *arg, int high);  /* output queue crossed a mark */
  void (*on_out_error)(void *arg, int err);  /* stdout broke (client gone) */
} transport_opts;

int transport_open(uv_loop_t *loop, const transport_opts *opts, transport **out);

typedef struct transport_buf transport_buf;
/* A buffer of `cap` bytes to fill (data points into it); NULL on ENOMEM. */
transport_buf *transport_out_alloc(size_t cap, char **data);
/* Send the first len bytes of b (which must end with '\n'); takes ownership. */
void transport_out_send(transport *t, transport_buf *b, size_t len);
/* Copy and send. */
void transport_out_write(transport *t, const char *data, size_t len);

size_t transport_queued_bytes(const transport *t);
/* Call done(arg) once everything queued has been written (or failed). */
void transport_flush(transport *t, void (*done)(void *arg), void *arg);
void transport_stop_input(transport *t);
/* Close handles; on_closed once libuv released them. */
void transport_close(transport *t, void (*on_closed)(void *arg), void *arg);

#endif
