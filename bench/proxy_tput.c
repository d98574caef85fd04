/* The C client of bench/proxy_bench.py (built by it with cc): the Python
 * client costs more CPU than the proxies it measures, so the bulk numbers
 * come from here.
 *
 *   proxy_tput tput   PROXY_PORT TARGET_PORT BYTES   -> MiB/s
 *   proxy_tput tunnels PROXY_PORT TARGET_PORT SECONDS THREADS -> tunnels/s
 *
 * PROXY_PORT 0 means a direct connection to the target. The target is a
 * sink started here on 127.0.0.1 (TARGET_PORT is ignored and may be 0): it
 * reads an 8-byte length, then that many bytes, and answers "k". */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF (1 << 20)

static int sink_port;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int read_full(int fd, void *p, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)p + got, n - got);
    if (r <= 0)
      return -1;
    got += (size_t)r;
  }
  return 0;
}

static void *sink_conn(void *arg) {
  int fd = (int)(intptr_t)arg;
  uint64_t want = 0;
  unsigned char hdr[8];
  if (read_full(fd, hdr, 8) == 0) {
    for (int i = 0; i < 8; i++)
      want = want << 8 | hdr[i];
    char *buf = malloc(BUF);
    uint64_t n = 0;
    while (n < want) {
      ssize_t r = read(fd, buf, want - n < BUF ? want - n : BUF);
      if (r <= 0)
        break;
      n += (uint64_t)r;
    }
    free(buf);
    if (n == want && write(fd, "k", 1) != 1)
      perror("sink write");
  }
  close(fd);
  return NULL;
}

static void *sink(void *arg) {
  int ls = (int)(intptr_t)arg;
  for (;;) {
    int fd = accept(ls, NULL, NULL);
    if (fd < 0)
      continue;
    pthread_t t;
    pthread_create(&t, NULL, sink_conn, (void *)(intptr_t)fd);
    pthread_detach(t);
  }
  return NULL;
}

static int dial(int proxy_port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)(proxy_port ? proxy_port : sink_port));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    return -1;
  }
  if (!proxy_port)
    return fd;
  char req[128];
  int n = snprintf(req, sizeof req, "CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
                   sink_port, sink_port);
  if (write(fd, req, (size_t)n) != n) {
    close(fd);
    return -1;
  }
  char head[512];
  size_t got = 0;
  while (got < sizeof head - 1) { /* byte by byte: nothing past the head is ours */
    if (read(fd, head + got, 1) != 1)
      break;
    got++;
    head[got] = 0;
    if (got >= 4 && memcmp(head + got - 4, "\r\n\r\n", 4) == 0)
      break;
  }
  if (strncmp(head, "HTTP/1.", 7) || strncmp(head + 9, "200", 3)) {
    close(fd);
    return -1;
  }
  return fd;
}

static int proxy_port_g;
static double stop_at;
static long counts[64];

static void *tunnels(void *arg) {
  long i = (long)(intptr_t)arg, n = 0;
  while (now() < stop_at) {
    int fd = dial(proxy_port_g);
    if (fd < 0)
      break;
    unsigned char hdr[8] = {0};
    if (write(fd, hdr, 8) == 8) { /* zero bytes: the sink answers at once */
      char k;
      if (read(fd, &k, 1) == 1)
        n++;
    }
    close(fd);
  }
  counts[i] = n;
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: proxy_tput tput|tunnels PROXY_PORT TARGET_PORT BYTES|SECONDS [THREADS]\n");
    return 2;
  }
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 1024) < 0)
    return 1;
  socklen_t al = sizeof a;
  getsockname(ls, (struct sockaddr *)&a, &al);
  sink_port = ntohs(a.sin_port);
  pthread_t st;
  pthread_create(&st, NULL, sink, (void *)(intptr_t)ls);
  proxy_port_g = atoi(argv[2]);
  if (strcmp(argv[1], "tput") == 0) {
    uint64_t total = strtoull(argv[4], NULL, 10);
    int fd = dial(proxy_port_g);
    if (fd < 0)
      return 1;
    unsigned char hdr[8];
    for (int i = 0; i < 8; i++)
      hdr[i] = (unsigned char)(total >> (56 - 8 * i));
    char *buf = calloc(1, BUF);
    double t0 = now();
    if (write(fd, hdr, 8) != 8)
      return 1;
    uint64_t left = total;
    while (left) {
      ssize_t w = write(fd, buf, left < BUF ? left : BUF);
      if (w <= 0)
        return 1;
      left -= (uint64_t)w;
    }
    char k;
    if (read(fd, &k, 1) != 1)
      return 1;
    printf("%.1f\n", total / (now() - t0) / 1048576.0);
    return 0;
  }
  int threads = argc > 5 ? atoi(argv[5]) : 4;
  if (threads < 1 || threads > 64)
    threads = 4;
  double t0 = now();
  stop_at = t0 + atof(argv[4]);
  pthread_t t[64];
  for (int i = 0; i < threads; i++)
    pthread_create(&t[i], NULL, tunnels, (void *)(intptr_t)i);
  long n = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(t[i], NULL);
    n += counts[i];
  }
  printf("%.1f\n", n / (now() - t0));
  return 0;
}
