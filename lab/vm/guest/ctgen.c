/*
 * ctgen: UDP flow generator for the conntrack-ops VM gateway (runs inside the VM).
 * Compiled on the host with `gcc -static` and copied into the VM's initramfs.
 *
 *   ctgen echo PORT
 *       UDP echo server on 0.0.0.0:PORT (run in the server namespace).
 *   ctgen fill DST PORT [-n FLOWS] [-x EXTRA] [-r KEEPALIVE_S] [-R RETRY_S] [-w READY_FILE] [-c STAT_FILE]
 *       Opens UDP flows (one socket each) towards DST:PORT and makes them ASSURED on the
 *       gateway: first packet, echo reply, second packet >= 2 s after the first (the
 *       kernel sets ASSURED on a replied UDP flow only then). Without -n it keeps opening
 *       flows until the gateway's table (count read from STAT_FILE, default
 *       /proc/1/net/stat/nf_conntrack: the init namespace's table) reaches
 *       nf_conntrack_max. Then EXTRA more flows are tried (they are dropped when the table
 *       is full of assured entries). Writes a one-line summary to READY_FILE, then keeps
 *       running until SIGTERM/SIGINT: assured flows get a keepalive packet every
 *       KEEPALIVE_S (default 30; the kernel's UDP stream timeout is 120 s), flows that
 *       never got an answer are retried every RETRY_S (default 3): steady new-flow
 *       pressure, as on a real saturated gateway, and the way drops stop once the table
 *       has room again. With -r 0 it exits after the summary (entries stay until they time out).
 *   ctgen probe DST PORT N [TIMEOUT_MS]
 *       Tries N brand-new flows once each and prints "sent=N replied=R".
 *   ctgen tcpecho PORT
 *       TCP echo server on 0.0.0.0:PORT (epoll, any number of connections).
 *   ctgen tcphold DST PORT N [-r INTERVAL_S] [-w READY_FILE]
 *       Opens N long-lived TCP connections to DST:PORT, then sends a byte on each every
 *       INTERVAL_S (default 10: below a flowtable's 30 s idle timeout, so offloaded flows
 *       stay in the flowtable) and reads the echo. Writes "flows=N connected=C answered=A"
 *       to READY_FILE once every connection has had one echo (or after 60 s), then keeps
 *       running until SIGTERM/SIGINT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ST_NEW 0     /* no answer yet (first packet maybe dropped by the gateway) */
#define ST_REPLIED 1 /* answered once: the gateway has an entry that saw a reply */
#define ST_ASSURED 2 /* a later packet (>= 2 s after the entry's first) was answered too */

/* The kernel marks a replied UDP entry ASSURED on a packet after 2 s (HZ*2); keep a margin. */
#define ASSURE_AFTER_S 2.4

struct flow {
  int fd;
  unsigned char state;
  unsigned char sent_second;
  unsigned char inflight; /* counted in `inflight` (first packet out, no answer yet) */
  double t_first; /* send time of the packet whose answer made the flow REPLIED */
  double t_last;  /* last send */
};

static volatile sig_atomic_t stop_flag = 0;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "ctgen: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void raise_nofile(long want) {
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = (rlim_t)want;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* Entries of the gateway's table: first column (hex) of the stat file's first data line. */
static long read_count(const char *stat_file) {
  FILE *f = fopen(stat_file, "r");
  if (!f) return -1;
  char line[1024];
  long v = -1;
  if (fgets(line, sizeof line, f) && fgets(line, sizeof line, f)) v = strtol(line, NULL, 16);
  fclose(f);
  return v;
}

static long read_max(void) {
  FILE *f = fopen("/proc/sys/net/netfilter/nf_conntrack_max", "r");
  if (!f) return -1;
  long v = -1;
  if (fscanf(f, "%ld", &v) != 1) v = -1;
  fclose(f);
  return v;
}

static struct sockaddr_in dst_addr;
static struct flow *flows;
static long nflows, cap;
static int ep;
/* First packets out without an answer yet (bounded: a burst larger than the VM's backlogs
 * and socket memory loses packets under TCG). */
static long inflight;
#define MAX_INFLIGHT 256

static void send_on(long i, char tag) {
  char buf[8] = {tag, 'c', 't', 'g', 'e', 'n', 0, 0};
  /* EPERM/ENOBUFS/EAGAIN: the gateway or the qdisc said no; the flow simply stays unanswered. */
  (void)send(flows[i].fd, buf, sizeof buf, MSG_DONTWAIT);
  flows[i].t_last = now_s();
  if (tag == 'b') flows[i].sent_second = 1;
}

static long add_flow(void) {
  if (nflows == cap) {
    cap = cap ? cap * 2 : 1024;
    flows = realloc(flows, (size_t)cap * sizeof *flows);
    if (!flows) die("realloc");
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  if (connect(fd, (struct sockaddr *)&dst_addr, sizeof dst_addr) != 0) die("connect");
  long i = nflows++;
  memset(&flows[i], 0, sizeof flows[i]);
  flows[i].fd = fd;
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
  return i;
}

/* Reads every pending reply; waits at most timeout_ms for the first. Returns replies read. */
static long drain(int timeout_ms) {
  struct epoll_event evs[256];
  long got = 0;
  char buf[64];
  if (timeout_ms < 0) timeout_ms = 0;
  for (;;) {
    int n = epoll_wait(ep, evs, 256, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) return got;
      die("epoll_wait");
    }
    if (n == 0) return got;
    for (int k = 0; k < n; k++) {
      long i = (long)evs[k].data.u64;
      while (recv(flows[i].fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
        got++;
        if (flows[i].state == ST_NEW) {
          flows[i].state = ST_REPLIED;
          flows[i].t_first = flows[i].t_last;
          if (flows[i].inflight) {
            flows[i].inflight = 0;
            inflight--;
          }
        } else if (flows[i].state == ST_REPLIED && flows[i].sent_second && buf[0] == 'b') {
          flows[i].state = ST_ASSURED;
        }
      }
    }
    timeout_ms = 0;
  }
}

static void drain_until(double t) {
  while (!stop_flag) {
    double left = t - now_s();
    if (left <= 0) return;
    drain((int)(left * 1000) + 1);
  }
}

/* Waits until no reply arrived for quiet_ms, at most max_ms in all. */
static void settle(int quiet_ms, int max_ms) {
  double end = now_s() + max_ms / 1000.0;
  while (now_s() < end && !stop_flag) {
    if (drain(quiet_ms) == 0) return;
  }
}

/* Opens k flows (first packet each) and collects their answers. */
static void open_batch(long k) {
  for (long j = 0; j < k && !stop_flag; j++) {
    long i = add_flow();
    send_on(i, 'a');
    if ((j & 63) == 63) drain(0);
  }
  settle(300, 5000);
}

/*
 * Opens k flows and makes them ASSURED, pipelined: new flows go out in small batches (at
 * most MAX_INFLIGHT unanswered) while the flows answered >= 2.4 s earlier get their second
 * packet. Every flow's second packet follows its first by about 2.4 s, whatever k is (a
 * first pass over all k flows and then a second pass would leave early flows waiting
 * longer than the 30 s a replied, not yet assured UDP entry lives, when k is large).
 */
static void open_and_assure(long k) {
  long opened = 0, due = nflows;
  while (!stop_flag) {
    double now = now_s();
    /* Second packets that are due, in opening order (t_first grows with the index). */
    while (due < nflows) {
      struct flow *f = &flows[due];
      if (f->state == ST_NEW) {
        if (now - f->t_last < 3.0) break; /* the answer may still come */
        if (f->inflight) {                /* lost: left to the retry pass */
          f->inflight = 0;
          inflight--;
        }
        due++;
        continue;
      }
      if (f->state == ST_REPLIED && !f->sent_second) {
        if (now < f->t_first + ASSURE_AFTER_S) break;
        send_on(due, 'b');
      }
      due++;
    }
    if (opened < k && inflight < MAX_INFLIGHT) {
      for (int j = 0; j < 32 && opened < k && inflight < MAX_INFLIGHT; j++, opened++) {
        long i = add_flow();
        flows[i].inflight = 1;
        inflight++;
        send_on(i, 'a');
      }
      drain(0);
    } else if (opened >= k && due >= nflows) {
      break;
    } else {
      drain(10);
    }
  }
  settle(300, 5000);
}

/*
 * Until every flow in [from, to) is ASSURED (or max_s passes): retry the unanswered ones
 * and resend lost second packets, once a second.
 */
static void finish(long from, long to, double max_s) {
  double end = now_s() + max_s;
  while (!stop_flag && now_s() < end) {
    long pending = 0;
    double now = now_s();
    for (long i = from; i < to; i++) {
      struct flow *f = &flows[i];
      if (f->state == ST_ASSURED) continue;
      pending++;
      if (f->state == ST_NEW && now - f->t_last >= 1.0) send_on(i, 'a');
      else if (f->state == ST_REPLIED && now - f->t_first >= ASSURE_AFTER_S && now - f->t_last >= 1.0) send_on(i, 'b');
      if ((i & 63) == 63) drain(0);
    }
    if (!pending) return;
    drain_until(now + 0.25);
  }
}

static long count_state(long from, int st) {
  long c = 0;
  for (long i = from; i < nflows; i++) c += flows[i].state == st;
  return c;
}

static void parse_dst(const char *host, const char *port) {
  memset(&dst_addr, 0, sizeof dst_addr);
  dst_addr.sin_family = AF_INET;
  dst_addr.sin_port = htons((unsigned short)atoi(port));
  if (inet_pton(AF_INET, host, &dst_addr.sin_addr) != 1) {
    fprintf(stderr, "ctgen: bad address %s\n", host);
    exit(2);
  }
}

static int cmd_echo(const char *port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  int sz = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) die("bind");
  enum { B = 64 };
  struct mmsghdr msgs[B];
  struct iovec iov[B];
  struct sockaddr_in from[B];
  char bufs[B][64];
  while (!stop_flag) {
    for (int i = 0; i < B; i++) {
      iov[i].iov_base = bufs[i];
      iov[i].iov_len = sizeof bufs[i];
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int n = recvmmsg(fd, msgs, B, MSG_WAITFORONE, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("recvmmsg");
    }
    for (int i = 0; i < n; i++) iov[i].iov_len = msgs[i].msg_len;
    int off = 0;
    while (off < n) {
      int s = sendmmsg(fd, msgs + off, (unsigned)(n - off), 0);
      if (s <= 0) break;
      off += s;
    }
  }
  return 0;
}

static int cmd_probe(int argc, char **argv) {
  if (argc < 3) return 2;
  parse_dst(argv[0], argv[1]);
  long n = atol(argv[2]);
  int timeout_ms = argc > 3 ? atoi(argv[3]) : 1500;
  raise_nofile(n + 64);
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  for (long j = 0; j < n; j++) send_on(add_flow(), 'p');
  double end = now_s() + timeout_ms / 1000.0;
  while (now_s() < end && count_state(0, ST_REPLIED) < n) drain((int)((end - now_s()) * 1000) + 1);
  printf("sent=%ld replied=%ld\n", n, count_state(0, ST_REPLIED));
  return 0;
}

static int cmd_fill(int argc, char **argv) {
  if (argc < 2) return 2;
  parse_dst(argv[0], argv[1]);
  long fixed = -1, extra = 0;
  int keepalive = 30, retry = 3;
  const char *ready = NULL, *stat_file = "/proc/1/net/stat/nf_conntrack";
  optind = 2;
  int c;
  while ((c = getopt(argc, argv, "n:x:r:R:w:c:")) != -1) {
    switch (c) {
      case 'n': fixed = atol(optarg); break;
      case 'x': extra = atol(optarg); break;
      case 'r': keepalive = atoi(optarg); break;
      case 'R': retry = atoi(optarg); break;
      case 'w': ready = optarg; break;
      case 'c': stat_file = optarg; break;
      default: return 2;
    }
  }
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  signal(SIGPIPE, SIG_IGN);
  long max = read_max();
  raise_nofile((fixed >= 0 ? fixed : (max > 0 ? 2 * max : 65536)) + extra + 256);
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");

  double t0 = now_s();
  if (fixed >= 0) {
    open_and_assure(fixed);
    finish(0, nflows, 20);
  } else {
    /* Fill until the gateway's table is at its max (shortfalls come from other traffic). */
    for (int round = 0; round < 8 && !stop_flag; round++) {
      long count = read_count(stat_file);
      max = read_max();
      if (count < 0 || max < 0) {
        fprintf(stderr, "ctgen: cannot read the table size (%s)\n", stat_file);
        return 1;
      }
      long need = max - count;
      if (need <= 0) break;
      long from = nflows;
      open_and_assure(need);
      finish(from, nflows, 20);
    }
  }
  double t_assured = now_s();
  long extra_from = nflows;
  if (extra > 0 && !stop_flag) open_batch(extra);

  char summary[512];
  snprintf(summary, sizeof summary,
           "flows=%ld assured=%ld replied_once=%ld unanswered=%ld extra=%ld extra_replied=%ld "
           "count=%ld max=%ld fill_s=%.2f\n",
           nflows, count_state(0, ST_ASSURED), count_state(0, ST_REPLIED), count_state(0, ST_NEW), extra,
           nflows - extra_from - count_state(extra_from, ST_NEW), read_count(stat_file), read_max(),
           t_assured - t0);
  fputs(summary, stdout);
  fflush(stdout);
  if (ready) {
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", ready);
    FILE *f = fopen(tmp, "w");
    if (f) {
      fputs(summary, f);
      fclose(f);
      rename(tmp, ready);
    }
  }
  if (keepalive <= 0) return 0;

  /* Keep the assured entries alive; retry the unanswered flows; assure the newly answered. */
  while (!stop_flag) {
    double now = now_s();
    for (long i = 0; i < nflows && !stop_flag; i++) {
      struct flow *f = &flows[i];
      if (f->state == ST_NEW) {
        if (now - f->t_last >= retry) send_on(i, 'a');
      } else if (f->state == ST_REPLIED) {
        if (now - f->t_first >= ASSURE_AFTER_S && now - f->t_last >= 1.0) send_on(i, 'b');
      } else if (now - f->t_last >= keepalive) {
        send_on(i, 'k');
      }
      if ((i & 63) == 63) drain(0);
    }
    drain_until(now + 0.5);
  }
  return 0;
}

static int cmd_tcpecho(const char *port) {
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (ls < 0) die("socket");
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(ls, (struct sockaddr *)&a, sizeof a) != 0) die("bind");
  if (listen(ls, 4096) != 0) die("listen");
  raise_nofile(65536);
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) != 0) die("epoll_ctl");
  struct epoll_event evs[256];
  char buf[512];
  while (!stop_flag) {
    int n = epoll_wait(ep, evs, 256, 1000);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int k = 0; k < n; k++) {
      int fd = evs[k].data.fd;
      if (fd == ls) {
        int c;
        while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) != 0) close(c);
        }
        continue;
      }
      ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r > 0) {
        (void)send(fd, buf, (size_t)r, MSG_DONTWAIT | MSG_NOSIGNAL);
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
        close(fd);
      }
    }
  }
  return 0;
}

static int cmd_tcphold(int argc, char **argv) {
  if (argc < 3) return 2;
  parse_dst(argv[0], argv[1]);
  long n = atol(argv[2]);
  double interval = 10;
  const char *ready = NULL;
  for (int i = 3; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "-r") == 0) interval = atof(argv[i + 1]);
    else if (strcmp(argv[i], "-w") == 0) ready = argv[i + 1];
    else return 2;
  }
  if (n < 1 || interval <= 0) return 2;
  raise_nofile(n + 64);
  signal(SIGPIPE, SIG_IGN);
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  int *fds = calloc((size_t)n, sizeof *fds);
  unsigned char *state = calloc((size_t)n, 1); /* 0 connecting, 1 connected, 2 answered once */
  if (!fds || !state) die("calloc");
  for (long i = 0; i < n; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&dst_addr, sizeof dst_addr) != 0 && errno != EINPROGRESS) die("connect");
    fds[i] = fd;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u64 = (uint64_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
  }
  long connected = 0, answered = 0;
  double t0 = now_s(), next_round = 0;
  int wrote_ready = 0;
  struct epoll_event evs[256];
  char buf[512];
  while (!stop_flag) {
    double now = now_s();
    if (connected > 0 && now >= next_round) {
      /* one byte on every connected flow: data both ways keeps the flow (and its flowtable entry) alive */
      for (long i = 0; i < n; i++)
        if (state[i] >= 1) (void)send(fds[i], "k", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
      next_round = now + interval;
    }
    if (!wrote_ready && (answered == n || now - t0 > 60)) {
      if (ready) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", ready);
        FILE *f = fopen(tmp, "w");
        if (f) {
          fprintf(f, "flows=%ld connected=%ld answered=%ld seconds=%.2f\n", n, connected, answered, now - t0);
          fclose(f);
          rename(tmp, ready);
        }
      }
      wrote_ready = 1;
    }
    int wait_ms = (int)((next_round > now ? next_round - now : 0.1) * 1000) + 1;
    if (wait_ms > 1000) wait_ms = 1000;
    int k = epoll_wait(ep, evs, 256, wait_ms);
    if (k < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int j = 0; j < k; j++) {
      long i = (long)evs[j].data.u64;
      if (state[i] == 0 && (evs[j].events & EPOLLOUT)) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) {
          state[i] = 1;
          connected++;
          struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
          epoll_ctl(ep, EPOLL_CTL_MOD, fds[i], &ev);
          (void)send(fds[i], "h", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        }
      }
      if (evs[j].events & EPOLLIN) {
        ssize_t r = recv(fds[i], buf, sizeof buf, 0);
        if (r > 0 && state[i] == 1) {
          state[i] = 2;
          answered++;
        }
      }
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "echo") == 0) return cmd_echo(argv[2]);
  if (argc >= 2 && strcmp(argv[1], "fill") == 0) return cmd_fill(argc - 2, argv + 2);
  if (argc >= 2 && strcmp(argv[1], "probe") == 0) return cmd_probe(argc - 2, argv + 2);
  if (argc >= 3 && strcmp(argv[1], "tcpecho") == 0) return cmd_tcpecho(argv[2]);
  if (argc >= 2 && strcmp(argv[1], "tcphold") == 0) return cmd_tcphold(argc - 2, argv + 2);
  fprintf(stderr,
          "usage: ctgen echo PORT | ctgen fill DST PORT [-n N] [-x EXTRA] [-r KEEPALIVE_S] [-R RETRY_S] [-w FILE]"
          " [-c STAT] | ctgen probe DST PORT N [TIMEOUT_MS]\n");
  return 2;
}
