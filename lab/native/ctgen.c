/*
 * ctgen: fast traffic helpers for the conntrack-ops network-namespace lab.
 * Compiled at run time when gcc is present (lab/traffic.ts); agents/udpflood.mjs and
 * agents/responder.mjs are the Node fallbacks with the same flow layout.
 *
 *   ctgen flood --dst IP [--passes N] [--gap-ms G] [--settle-ms S] [--batch B] [--pps R] FLOW...
 *       FLOW = SRC,COUNT,SPORT_OFFSET,DPORT_LO,DPORT_COUNT
 *       Sends one UDP packet per flow from a raw socket (so every flow has its own
 *       source ip:port without opening a socket per flow). Flow i of a group goes to
 *       DPORT_LO + i % DPORT_COUNT from port 1024 + (SPORT_OFFSET + i / DPORT_COUNT) % 64512.
 *       Groups are interleaved round-robin. Pass 2 re-sends every batch no sooner than
 *       G ms (default 2100) after pass 1 sent it: a UDP entry that saw a reply becomes
 *       ASSURED on a packet at least 2 s after its creation. Pass 3+ re-send S ms after the
 *       previous pass (assures flows whose first reply was lost). Prints one JSON line.
 *       With --hold-ms H --repeat-ms R it then re-sends every flow each R ms for H ms
 *       (keeps assured flows alive, or keeps knocking on a full table), and exits;
 *       --passes 0 skips the initial passes (flows that exist already).
 *
 *   ctgen echo --ports LO-HI
 *       UDP echo responder on 0.0.0.0:LO..HI (epoll, recvmmsg/sendmmsg). Prints "ready"
 *       once every port is bound, then runs until killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_GROUPS 256
#define MAX_BATCH 1024
#define PAYLOAD 8

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_until(double t) {
  for (;;) {
    double d = t - now_ms();
    if (d <= 0) return;
    struct timespec ts = {(time_t)(d / 1e3), (long)((d - (double)(time_t)(d / 1e3) * 1e3) * 1e6)};
    nanosleep(&ts, NULL);
  }
}

static void die(const char *what) {
  fprintf(stderr, "ctgen: %s: %s\n", what, strerror(errno));
  exit(1);
}

struct group {
  uint32_t src; /* network order */
  long count;
  long sport_offset;
  int dport_lo;
  int dport_count;
};

struct flow {
  uint32_t src;
  uint16_t sport, dport; /* host order */
};

/* ------------------------------------------------------------------ flood */

static int cmd_flood(int argc, char **argv) {
  struct group groups[MAX_GROUPS];
  int ngroups = 0, passes = 2, batch = 256;
  double gap_ms = 2100, settle_ms = 30, pps = 0, hold_ms = 0, repeat_ms = 1000;
  uint32_t dst = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--dst") && i + 1 < argc) {
      if (inet_pton(AF_INET, argv[++i], &dst) != 1) { fprintf(stderr, "ctgen: bad --dst\n"); return 2; }
    } else if (!strcmp(a, "--passes") && i + 1 < argc) passes = atoi(argv[++i]);
    else if (!strcmp(a, "--gap-ms") && i + 1 < argc) gap_ms = atof(argv[++i]);
    else if (!strcmp(a, "--settle-ms") && i + 1 < argc) settle_ms = atof(argv[++i]);
    else if (!strcmp(a, "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
    else if (!strcmp(a, "--pps") && i + 1 < argc) pps = atof(argv[++i]);
    else if (!strcmp(a, "--hold-ms") && i + 1 < argc) hold_ms = atof(argv[++i]);
    else if (!strcmp(a, "--repeat-ms") && i + 1 < argc) repeat_ms = atof(argv[++i]);
    else {
      char ip[64];
      long count, off;
      int lo, n;
      if (ngroups >= MAX_GROUPS || sscanf(a, "%63[0-9.],%ld,%ld,%d,%d", ip, &count, &off, &lo, &n) != 5 ||
          inet_pton(AF_INET, ip, &groups[ngroups].src) != 1 || count < 0 || off < 0 || lo < 1 || n < 1 ||
          lo + n - 1 > 65535) {
        fprintf(stderr, "ctgen: bad flow group '%s'\n", a);
        return 2;
      }
      groups[ngroups].count = count;
      groups[ngroups].sport_offset = off;
      groups[ngroups].dport_lo = lo;
      groups[ngroups].dport_count = n;
      ngroups++;
    }
  }
  if (!dst || ngroups == 0 || passes < 0 || (passes == 0 && hold_ms <= 0) || batch < 1 || batch > MAX_BATCH) {
    fprintf(stderr, "ctgen flood: need --dst and at least one flow group\n");
    return 2;
  }

  long total = 0;
  for (int g = 0; g < ngroups; g++) total += groups[g].count;
  struct flow *flows = calloc((size_t)total + 1, sizeof *flows);
  if (!flows) die("calloc");
  /* Interleave groups round-robin. */
  long idx[MAX_GROUPS] = {0}, k = 0;
  while (k < total) {
    for (int g = 0; g < ngroups; g++) {
      if (idx[g] >= groups[g].count) continue;
      long i = idx[g]++;
      flows[k].src = groups[g].src;
      flows[k].dport = (uint16_t)(groups[g].dport_lo + (int)(i % groups[g].dport_count));
      flows[k].sport = (uint16_t)(1024 + (groups[g].sport_offset + i / groups[g].dport_count) % 64512);
      k++;
    }
  }

  int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (fd < 0) die("socket(raw)");
  int sb = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sb, sizeof sb);

  static unsigned char pkts[MAX_BATCH][sizeof(struct iphdr) + sizeof(struct udphdr) + PAYLOAD];
  static struct iovec iov[MAX_BATCH];
  static struct mmsghdr msgs[MAX_BATCH];
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr.s_addr = dst};
  long nbatches = (total + batch - 1) / batch;
  double *stamp = calloc((size_t)nbatches + 1, sizeof(double));
  if (!stamp) die("calloc");

  if (repeat_ms < 100) repeat_ms = 100;
  double t0 = now_ms();
  printf("{\"flows\":%ld,\"passes\":[", total);
  long retries = 0;
  double hold_until = 0;
  for (int p = 0;; p++) {
    if (p == passes) {
      if (hold_ms <= 0) break;
      printf("],\"retries\":%ld,\"ms\":%.1f,\"holding\":true}\n", retries, now_ms() - t0);
      fflush(stdout);
      hold_until = now_ms() + hold_ms;
    }
    if (p >= passes) {
      double next = now_ms() + repeat_ms;
      sleep_until(next < hold_until ? next : hold_until);
      if (now_ms() >= hold_until) return 0;
    }
    double ps = now_ms();
    long sent = 0;
    for (long b = 0; b < nbatches; b++) {
      if (p == 1 && p < passes) sleep_until(stamp[b] + gap_ms);
      else if (p > 1 && p < passes) sleep_until(stamp[b] + settle_ms);
      if (pps > 0) sleep_until(ps + (double)sent * 1e3 / pps);
      long first = b * batch, n = total - first < batch ? total - first : batch;
      for (long j = 0; j < n; j++) {
        struct flow *f = &flows[first + j];
        unsigned char *pk = pkts[j];
        struct iphdr *ip = (struct iphdr *)pk;
        struct udphdr *uh = (struct udphdr *)(pk + sizeof *ip);
        memset(pk, 0, sizeof pkts[j]);
        ip->version = 4;
        ip->ihl = 5;
        ip->ttl = 64;
        ip->protocol = IPPROTO_UDP;
        ip->tot_len = htons(sizeof pkts[j]);
        ip->saddr = f->src;
        ip->daddr = dst;
        uh->source = htons(f->sport);
        uh->dest = htons(f->dport);
        uh->len = htons(sizeof *uh + PAYLOAD);
        uh->check = 0; /* optional for UDP over IPv4 */
        memcpy(pk + sizeof *ip + sizeof *uh, "ctgen\n\0\0", PAYLOAD);
        iov[j].iov_base = pk;
        iov[j].iov_len = sizeof pkts[j];
        memset(&msgs[j], 0, sizeof msgs[j]);
        msgs[j].msg_hdr.msg_name = &to;
        msgs[j].msg_hdr.msg_namelen = sizeof to;
        msgs[j].msg_hdr.msg_iov = &iov[j];
        msgs[j].msg_hdr.msg_iovlen = 1;
      }
      long done = 0;
      while (done < n) {
        int r = sendmmsg(fd, msgs + done, (unsigned)(n - done), 0);
        if (r < 0) {
          if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) {
            retries++;
            usleep(200);
            continue;
          }
          /* EPERM: a firewall (e.g. a full table on the client side) dropped it: skip. */
          if (errno == EPERM) { done++; continue; }
          die("sendmmsg");
        }
        done += r;
      }
      sent += n;
      if (p < 2) stamp[b] = now_ms();
    }
    if (p < passes) printf("%s{\"sent\":%ld,\"ms\":%.1f}", p ? "," : "", sent, now_ms() - ps);
  }
  printf("],\"retries\":%ld,\"ms\":%.1f}\n", retries, now_ms() - t0);
  fflush(stdout);
  return 0;
}

/* ------------------------------------------------------------------- echo */

static int cmd_echo(int argc, char **argv) {
  int lo = 0, hi = 0;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--ports") && i + 1 < argc) {
      if (sscanf(argv[++i], "%d-%d", &lo, &hi) != 2) hi = lo = atoi(argv[i]);
    }
  }
  if (lo < 1 || hi < lo || hi > 65535 || hi - lo > 4096) {
    fprintf(stderr, "ctgen echo: --ports LO-HI\n");
    return 2;
  }
  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  for (int port = lo; port <= hi; port++) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    int one = 1, rb = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rb, sizeof rb);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &rb, sizeof rb);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = INADDR_ANY};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  }
  printf("ready\n");
  fflush(stdout);

  enum { B = 64 };
  static char bufs[B][512];
  static struct sockaddr_in from[B];
  static struct iovec iov[B];
  static struct mmsghdr msgs[B];
  struct epoll_event evs[64];
  for (;;) {
    int n = epoll_wait(ep, evs, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int e = 0; e < n; e++) {
      int fd = evs[e].data.fd;
      for (;;) {
        for (int j = 0; j < B; j++) {
          iov[j].iov_base = bufs[j];
          iov[j].iov_len = sizeof bufs[j];
          memset(&msgs[j], 0, sizeof msgs[j]);
          msgs[j].msg_hdr.msg_name = &from[j];
          msgs[j].msg_hdr.msg_namelen = sizeof from[j];
          msgs[j].msg_hdr.msg_iov = &iov[j];
          msgs[j].msg_hdr.msg_iovlen = 1;
        }
        int r = recvmmsg(fd, msgs, B, MSG_DONTWAIT, NULL);
        if (r <= 0) break;
        for (int j = 0; j < r; j++) iov[j].iov_len = msgs[j].msg_len;
        int done = 0;
        while (done < r) {
          int s = sendmmsg(fd, msgs + done, (unsigned)(r - done), MSG_DONTWAIT);
          if (s <= 0) break; /* drop on a full send buffer: echo is best effort */
          done += s;
        }
        if (r < B) break;
      }
    }
  }
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 2 && !strcmp(argv[1], "flood")) return cmd_flood(argc - 2, argv + 2);
  if (argc >= 2 && !strcmp(argv[1], "echo")) return cmd_echo(argc - 2, argv + 2);
  fprintf(stderr, "usage: ctgen flood|echo ...\n");
  return 2;
}
