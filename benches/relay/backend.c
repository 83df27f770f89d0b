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
        for (;;) {
          ssize_t r = read(fd, buf, sizeof buf);
          if (r > 0) { ssize_t off = 0; while (off < r) { ssize_t w = write(fd, buf + off, r - off); if (w <= 0) { if (errno == EAGAIN) continue; done = 1; break; } off += w; } if (done) break; }
          else if (r == 0 || errno != EAGAIN) { done = 1; break; }
          else break;
        }
      } else {
        if (evs[i].events & EPOLLIN) { ssize_t r = read(fd, buf, sizeof buf); if (r == 0 || (r < 0 && errno != EAGAIN)) done = 1; }
        if (!done && (evs[i].events & EPOLLOUT)) {
          static char zeros[1 << 16];
          for (;;) { ssize_t w = write(fd, zeros, sizeof zeros); if (w < 0) { if (errno != EAGAIN) done = 1; break; } }
        }
        if (evs[i].events & (EPOLLHUP | EPOLLERR)) done = 1;
      }
      if (done) { epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL); kind[fd] = 0; close(fd); }
    }
  }
}
