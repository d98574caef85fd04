#include "server/framing.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void framing_init(framing *f, size_t max_line_bytes,
                  void (*on_line)(void *, const char *, size_t),
                  void (*on_oversize)(void *, uint64_t), void *arg) {
  memset(f, 0, sizeof *f);
  f->max_line_bytes = max_line_bytes;
  f->on_line = on_line;
  f->on_oversize = on_oversize;
  f->arg = arg;
}

static void deliver(framing *f, const char *line, size_t len) {
  if (len && line[len - 1] == '\r')
    len--;
  f->on_line(f->arg, line, len);
}

static int append(framing *f, const char *data, size_t len) {
  if (f->len + len > f->cap) {
    size_t cap = f->cap ? f->cap : 4096;
    while (cap < f->len + len)
      cap *= 2;
    char *nb = realloc(f->buf, cap);
    if (!nb)
      return -ENOMEM;
    f->buf = nb;
    f->cap = cap;
  }
  memcpy(f->buf + f->len, data, len);
  f->len += len;
  return 0;
}

/* Drop a large carry buffer once it is no longer needed, so one big line
 * does not pin its memory for the life of the connection. */
static void shrink(framing *f) {
  if (f->cap > 65536) {
    free(f->buf);
    f->buf = NULL;
    f->cap = 0;
  }
  f->len = 0;
}

static int park(framing *f, const char *data, size_t len) {
  if (!len)
    return 0;
  if (f->parked_len + len > f->parked_cap) {
    size_t cap = f->parked_cap ? f->parked_cap : 4096;
    while (cap < f->parked_len + len)
      cap *= 2;
    char *nb = realloc(f->parked, cap);
    if (!nb)
      return -ENOMEM;
    f->parked = nb;
    f->parked_cap = cap;
  }
  memcpy(f->parked + f->parked_len, data, len);
  f->parked_len += len;
  return 0;
}

void framing_pause(framing *f) { f->paused = 1; }
size_t framing_parked(const framing *f) { return f->parked_len; }

static int frame(framing *f, const char *data, size_t len);

int framing_feed(framing *f, const char *data, size_t len) {
  if (f->paused)
    return park(f, data, len);
  return frame(f, data, len);
}

int framing_resume(framing *f) {
  f->paused = 0;
  if (!f->parked_len)
    return 0;
  /* Take the parked bytes: what pauses again parks into a fresh buffer. */
  char *data = f->parked;
  size_t len = f->parked_len;
  f->parked = NULL;
  f->parked_len = f->parked_cap = 0;
  int rc = frame(f, data, len);
  free(data);
  return rc;
}

static int frame(framing *f, const char *data, size_t len) {
  while (len) {
    if (f->paused)
      return park(f, data, len);
    const char *nl = memchr(data, '\n', len);
    size_t seg = nl ? (size_t)(nl - data) : len;
    if (f->skipping) {
      f->skipped_bytes += seg;
      if (nl) {
        f->skipping = 0;
        f->on_oversize(f->arg, f->skipped_bytes);
        f->skipped_bytes = 0;
      }
    } else if (f->len + seg > f->max_line_bytes) {
      /* Oversize: forget what was carried and skip to the newline. */
      f->skipped_bytes = f->len + seg;
      shrink(f);
      if (nl) {
        f->on_oversize(f->arg, f->skipped_bytes);
        f->skipped_bytes = 0;
      } else {
        f->skipping = 1;
      }
    } else if (nl && f->len == 0) {
      deliver(f, data, seg); /* the common case: no copy */
    } else {
      if (append(f, data, seg) < 0)
        return -ENOMEM;
      if (nl) {
        deliver(f, f->buf, f->len);
        shrink(f);
      }
    }
    if (!nl)
      break;
    data += seg + 1;
    len -= seg + 1;
  }
  return 0;
}

void framing_finish(framing *f) {
  if (f->skipping) {
    f->skipping = 0;
    f->on_oversize(f->arg, f->skipped_bytes);
  } else if (f->len) {
    deliver(f, f->buf, f->len);
  }
  shrink(f);
}

void framing_free(framing *f) {
  free(f->parked);
  f->parked = NULL;
  f->parked_len = f->parked_cap = 0;
  free(f->buf);
  f->buf = NULL;
  f->len = f->cap = 0;
}
