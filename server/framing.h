/* Newline framing for the stdio transport: bytes in, complete lines out.
 *
 * Lines end at '\n' (a '\r' before it is dropped). A line whose length
 * exceeds max_line_bytes is not buffered: its bytes are skipped up to the
 * next newline and on_oversize is called once for it. A final line without
 * a newline is delivered by framing_finish() at end of input.
 *
 * Pausing: framing_pause() (from on_line or elsewhere) stops delivery after
 * the current line; what is left of the bytes fed, and whatever is fed while
 * paused, is parked in order and delivered by framing_resume(). The caller
 * bounds what can be parked by not reading more input while paused.
 *
 * Ownership: the framer owns its partial-line and parked buffers; line
 * pointers passed to on_line are valid only during the call.
 */
#ifndef WARDEN_FRAMING_H
#define WARDEN_FRAMING_H

#include <stddef.h>
#include <stdint.h>

typedef struct framing {
  size_t max_line_bytes;
  char *buf; /* partial line carried between feeds */
  size_t len, cap;
  int skipping;           /* inside an oversize line */
  uint64_t skipped_bytes; /* length of the oversize line so far */
  int paused;
  char *parked; /* bytes fed but not yet framed, while paused */
  size_t parked_len, parked_cap;
  void *arg;
  void (*on_line)(void *arg, const char *line, size_t len);
  void (*on_oversize)(void *arg, uint64_t line_bytes);
} framing;

void framing_init(framing *f, size_t max_line_bytes,
                  void (*on_line)(void *, const char *, size_t),
                  void (*on_oversize)(void *, uint64_t), void *arg);
/* Feed bytes; calls back for every complete line. 0 or -ENOMEM. */
int framing_feed(framing *f, const char *data, size_t len);
/* Stop delivering lines after the current one (see above). */
void framing_pause(framing *f);
/* Deliver what was parked, until paused again. 0 or -ENOMEM. */
int framing_resume(framing *f);
/* Bytes parked while paused. */
size_t framing_parked(const framing *f);
/* End of input: deliver a trailing partial line (or oversize event). Only
 * when not paused and nothing is parked. */
void framing_finish(framing *f);
void framing_free(framing *f);

#endif
