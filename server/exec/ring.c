/* The per-process ring of delivered output.
 *
 * Output is read straight into the ring (no copy): exec_ring_reserve() hands
 * out EXEC_CHUNK_MAX contiguous bytes at the write position, evicting the
 * oldest chunks that overlap them, and the chunk delivered to on_output points
 * into the ring. Chunks never wrap; when the tail is too short the write
 * position goes back to 0. The mapping is limit + 2 * EXEC_CHUNK_MAX so that
 * about `limit` bytes stay retained, and it is MADV_DONTFORK: clone() of a
 * supervisor does not copy it, and untouched pages cost nothing.
 */
#include "server/exec/exec_int.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#define RING_MAX_CHUNKS 65536 /* bounds the index when chunks are tiny */

size_t exec_chunk_size(size_t limit) {
  if (limit == 0 || limit / 4 >= EXEC_CHUNK_MAX)
    return EXEC_CHUNK_MAX;
  return limit / 4 < EXEC_CHUNK_MIN ? EXEC_CHUNK_MIN : limit / 4;
}

int exec_ring_init(exec_ring *r, size_t limit) {
  *r = (exec_ring){.limit = limit};
  if (limit == 0)
    return 0;
  size_t cap = limit + 2 * (size_t)EXEC_CHUNK_MAX;
  void *p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
                 0);
  if (p == MAP_FAILED)
    return -errno;
  madvise(p, cap, MADV_DONTFORK);
  r->buf = p;
  r->cap = cap;
  return 0;
}

void exec_ring_free(exec_ring *r) {
  if (r->buf)
    munmap(r->buf, r->cap);
  free(r->ch);
  *r = (exec_ring){0};
}

static void evict_oldest(exec_ring *r) {
  r->bytes -= r->ch[r->head].len;
  r->head = (r->head + 1) % r->chcap;
  r->n--;
}

uint8_t *exec_ring_reserve(exec_ring *r) {
  if (!r->buf)
    return NULL;
  if (r->cap - r->wpos < EXEC_CHUNK_MAX) {
    /* Abandon the tail: what is left of the previous lap above wpos is the
     * oldest output, and this lap's chunks below it come next. */
    while (r->n && r->ch[r->head].off >= r->wpos)
      evict_oldest(r);
    r->wpos = 0;
  }
  /* Chunks at or after wpos are older than everything before it. */
  while (r->n) {
    const exec_chunk *c = &r->ch[r->head];
    if (c->off < r->wpos || c->off >= r->wpos + EXEC_CHUNK_MAX)
      break;
    evict_oldest(r);
  }
  return r->buf + r->wpos;
}

void exec_ring_commit(exec_ring *r, uint64_t seq, exec_stream stream, size_t n) {
  if (!r->buf)
    return;
  if (r->n == r->chcap || r->n >= RING_MAX_CHUNKS) {
    if (r->n >= RING_MAX_CHUNKS) {
      evict_oldest(r);
    } else {
      size_t nc = r->chcap ? r->chcap * 2 : 64;
      exec_chunk *ch = malloc(nc * sizeof *ch);
      if (!ch) {
        if (!r->n)
          return;
        evict_oldest(r); /* keep going with what we have */
      } else {
        for (size_t i = 0; i < r->n; i++)
          ch[i] = r->ch[(r->head + i) % r->chcap];
        free(r->ch);
        r->ch = ch;
        r->chcap = nc;
        r->head = 0;
      }
    }
  }
  exec_chunk *c = &r->ch[(r->head + r->n) % r->chcap];
  *c = (exec_chunk){.seq = seq, .off = r->wpos, .len = (uint32_t)n, .stream = (uint8_t)stream};
  r->n++;
  r->bytes += n;
  r->wpos += n;
  while (r->n > 1 && r->bytes > r->limit)
    evict_oldest(r);
}

void exec_ring_read(const exec_ring *r, uint64_t after_seq, size_t max_bytes, exec_chunk_fn fn,
                    void *arg) {
  /* Binary search for the first chunk with seq > after_seq. */
  size_t lo = 0, hi = r->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (r->ch[(r->head + mid) % r->chcap].seq <= after_seq)
      lo = mid + 1;
    else
      hi = mid;
  }
  size_t total = 0;
  for (size_t i = lo; i < r->n; i++) {
    const exec_chunk *c = &r->ch[(r->head + i) % r->chcap];
    if (i > lo && total + c->len > max_bytes)
      break;
    total += c->len;
    fn(arg, c->seq, (exec_stream)c->stream, r->buf + c->off, c->len);
  }
}
