#define _GNU_SOURCE
/* Benchmark backend: a small epoll server, faster than what it measures.
 * Port A echoes what it reads; port B ("source") writes zeros as fast as the peer reads.
 * Usage: backend ECHO_PORT SOURCE_PORT [any]  (loopback only, unless "any") */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXFD 262144
static unsigned char kind[MAXFD]; /* 1 listen-echo 2 listen-source 3 echo 4 source */
static char buf[1 << 16];
/* An echo connection whose peer cannot take all it sent back yet: the rest waits here and
 * the connection is read again only once it is written (never a busy loop on EAGAIN: one
 * slow peer would stall every other connection of this single-threaded server). */
static char *pend[MAXFD];
static size_t plen[MAXFD], poff[MAXFD];

static void watch_for(int ep, int fd, unsigned events) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

/* Writes what waits for fd; 1 when all is written, 0 when the peer is full, -1 on error. */
static int flush_pending(int fd) {
  while (poff[fd] < plen[fd]) {
    ssize_t w = write(fd, pend[fd] + poff[fd], plen[fd] - poff[fd]);
    if (w < 0) return errno == EAGAIN ? 0 : -1;
    poff[fd] += (size_t)w;
  }
  plen[fd] = poff[fd] = 0;
  return 1;
}

static int any = 0; /* listen on every address, not just loopback */

static int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(any ? INADDR_ANY : INADDR_LOOPBACK)};
  if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 4096)) { perror("bind/listen"); exit(1); }
  return fd;
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 4) { fprintf(stderr, "usage: backend ECHO_PORT SOURCE_PORT [any]\n"); return 2; }
  any = argc == 4 && strcmp(argv[3], "any") == 0;
  signal(SIGPIPE, SIG_IGN);
  int ep = epoll_create1(0);
  int ports[2] = {atoi(argv[1]), atoi(argv[2])};
  for (int i = 0; i < 2; i++) {
    int l = listen_on(ports[i]);
    kind[l] = 1 + i;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l};
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
  }
  struct epoll_event evs[512];
  for (;;) {
    int n = epoll_wait(ep, evs, 512, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (kind[fd] == 1 || kind[fd] == 2) {
        for (;;) {
          int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK);
          if (c < 0) break;
          if (c >= MAXFD) { close(c); continue; }
          int one = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          kind[c] = kind[fd] + 2;
          struct epoll_event ev = {.events = kind[c] == 3 ? EPOLLIN : (EPOLLIN | EPOLLOUT), .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
        }
        continue;
      }
      int done = 0;
      if (kind[fd] == 3) {
        if (plen[fd]) {
          int f = flush_pending(fd);
          if (f < 0) done = 1;
          else if (f == 1) watch_for(ep, fd, EPOLLIN);
        } else {
          for (;;) {
            ssize_t r = read(fd, buf, sizeof buf);
            if (r > 0) {
              ssize_t off = 0;
              while (off < r) {
                ssize_t w = write(fd, buf + off, r - off);
                if (w < 0 && errno == EAGAIN) break;
                if (w <= 0) { done = 1; break; }
                off += w;
              }
              if (done) break;
              if (off < r) {
                if (!pend[fd]) pend[fd] = malloc(sizeof buf);
                memcpy(pend[fd], buf + off, (size_t)(r - off));
                plen[fd] = (size_t)(r - off); poff[fd] = 0;
                watch_for(ep, fd, EPOLLOUT);
                break;
              }
            }
            else if (r == 0 || errno != EAGAIN) { done = 1; break; }
            else break;
          }
        }
        if (evs[i].events & (EPOLLHUP | EPOLLERR)) done = 1;
      } else {
        if (evs[i].events & EPOLLIN) { ssize_t r = read(fd, buf, sizeof buf); if (r == 0 || (r < 0 && errno != EAGAIN)) done = 1; }
        if (!done && (evs[i].events & EPOLLOUT)) {
          static char zeros[1 << 16];
          for (;;) { ssize_t w = write(fd, zeros, sizeof zeros); if (w < 0) { if (errno != EAGAIN) done = 1; break; } }
        }
        if (evs[i].events & (EPOLLHUP | EPOLLERR)) done = 1;
      }
      if (done) { epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL); kind[fd] = 0; plen[fd] = poff[fd] = 0; close(fd); }
    }
  }
}
