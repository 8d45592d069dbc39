/* statsd/listen.c - the StatsD listeners: the datagram readers (UDP, one socket per reader
 * with SO_REUSEPORT; Unix datagram), the TCP reader (epoll over every connection, its
 * connection list, idle timeout and connection cap), binding the sockets, and start/stop.
 *
 * Each reader is one thread with its own ingest context (ingest.c): it reads a batch, hands
 * every datagram or complete line to the context inside one registry section, and lets the
 * context fold its counts (metrics.c) when idle for IDLE_FOLD_MS.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "statsd/internal.h"

#define DG_VLEN 32        /* datagrams per recvmmsg */
#define DG_BUF 65536      /* bytes per datagram buffer: any UDP payload fits */
#define DG_DRAIN_MS 10000 /* after a stop request, queued datagrams are read for at most this */
#define IDLE_FOLD_MS 20   /* an idle reader folds its counts this soon */
/* After a batch that emptied the queue, a reader waits this long before its next receive, so
 * that datagrams gather: a reader faster than its senders otherwise takes one or two per
 * recvmmsg call, and the calls cost more than the lines. */
#define DG_GATHER_US 200
/* TCP: one read buffer per reader holds a pending line plus a read; connections keep only
 * their unterminated tails, in blocks, mapped pages of their own over TCP_TAIL_MMAP. */
#define TCP_RBUF (MAX_LINE + 1 + 65536)
#define TCP_TAIL_BLOCK 256
#define TCP_TAIL_MMAP 16384
#define TCP_TRIM_BYTES (1u << 20)  /* freed small tails that ask for a heap trim */
#define TCP_TRIM_MS 1000           /* the shortest time between two trims */
#define TCP_MAX_CONNS_DEFAULT 1024 /* statsd.max_tcp_connections when unset */
#define TCP_READS_PER_WAKE 8       /* fairness between busy connections */

/* One TCP connection of the TCP reader. */
typedef struct tconn {
    struct tconn *prev, *next; /* the reader's connections, most recently active first */
    int fd;
    char *buf; /* the unterminated tail of the stream (len bytes), NULL when cap is 0 */
    size_t len, cap;
    uint64_t active_ms; /* when it was accepted or last had something to read */
    exp_statsd_stream s;
} tconn;

/* One reader thread: a datagram reader (its socket) or the TCP reader (the listening socket,
 * epoll, the connections). */
typedef struct reader {
    struct exp_statsd_listener *L;
    exp_ingest *in;
    int fd;
    pthread_t th;
    int started;
    /* datagram readers */
    struct mmsghdr *msgs;
    struct iovec *iov;
    char *bufs;
    int rcvtimeo; /* SO_RCVTIMEO is set: counts are waiting for an idle fold */
    /* tcp */
    int ep;
    tconn *conns, *conns_tail; /* most recently active first; the tail is the longest idle */
    size_t nconns;
    char *rbuf;          /* TCP_RBUF bytes: every connection is read into it */
    size_t freed;        /* tail bytes freed since the last heap trim */
    uint64_t trimmed_ms; /* when the heap was last trimmed */
    int accept_paused;
    uint64_t paused_at_ms;
} reader;

/* ---- restart-only settings ----------------------------------------------------------------- */

/* After a reload: one reader says so when settings that only apply at start changed (listen
 * addresses, readers, read_buffer, cache_size, max_series). Cannot fail. */
void exp_statsd_warn_restart_only(exp_statsd_listener *L, const exp_config *c, uint64_t gen) {
    /* seq_cst, relaxed would do: the CAS only elects one reader per generation; the data it
     * then reads is its own snapshot c and start_* fixed before the readers started. */
    uint64_t seen = atomic_load(&L->warned_gen);
    if (seen >= gen || !atomic_compare_exchange_strong(&L->warned_gen, &seen, gen))
        return;
    const cfg_statsd *sc = &c->cfg->statsd;
    size_t readers = L->enabled[EXP_STATSD_LISTENER_UDP] ? (sc->readers ? sc->readers : 1) : 0;
    if (readers > 64)
        readers = 64;
    if (cfg_setting_changed(L->start_addr[0], sc->listen_udp) ||
        cfg_setting_changed(L->start_addr[1], sc->listen_tcp) ||
        cfg_setting_changed(L->start_addr[2], sc->listen_unixgram) ||
        (L->enabled[EXP_STATSD_LISTENER_UDP] && readers != L->start_readers) ||
        sc->read_buffer != L->start_rcvbuf || sc->cache_size != L->start_cache ||
        sc->max_series != L->start_max_series)
        exp_log(EXP_LOG_WARN,
                "statsd settings changed (listen addresses, readers, read_buffer, cache_size or "
                "max_series); they take effect after a restart",
                NULL);
}

/* ---- datagram readers (UDP, Unix datagram) ---------------------------------------------- */

/* 1 once exp_statsd_listener_stop was called. Cannot fail. */
static int stopping(const exp_statsd_listener *L) {
    /* Relaxed: pairs with the store in exp_statsd_listener_stop; the flag only ends the loop,
     * and pthread_join there orders the teardown. */
    return atomic_load_explicit(&((exp_statsd_listener *)L)->stopping, memory_order_relaxed);
}

/* The receive buffers of a datagram reader, and its socket's kernel drops counted by its
 * context. 0, or -1 when out of memory (freed by free_reader). */
static int dg_setup(reader *rd) {
    rd->msgs = calloc(DG_VLEN, sizeof *rd->msgs);
    rd->iov = calloc(DG_VLEN, sizeof *rd->iov);
    rd->bufs = malloc((size_t)DG_VLEN * DG_BUF);
    if (!rd->msgs || !rd->iov || !rd->bufs)
        return -1;
    for (size_t i = 0; i < DG_VLEN; i++) {
        rd->iov[i] = (struct iovec){rd->bufs + i * DG_BUF, DG_BUF};
        rd->msgs[i].msg_hdr.msg_iov = &rd->iov[i];
        rd->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    rd->in->dgfd = rd->fd;
    rd->in->kdrops_seen = 0;
    return 0;
}

/* Bound the wait for the next datagram (ms > 0) or not (0). Cannot fail (a failed setsockopt
 * leaves the wait as it was). */
static void dg_timeout(reader *rd, unsigned ms) {
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (long)(ms % 1000) * 1000};
    setsockopt(rd->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    rd->rcvtimeo = ms > 0;
}

/* Process n received datagrams as one batch. After a stop request the socket is shut down
 * and recvmmsg reports its end as zero-length datagrams: those are skipped then. Returns the
 * number of datagrams with content. */
static int dg_batch(reader *rd, int n, int stop) {
    exp_ingest *in = rd->in;
    int real = 0;
    exp_statsd_batch_begin(in);
    for (int i = 0; i < n; i++) {
        unsigned len = rd->msgs[i].msg_len;
        if (rd->msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
            in->cur.truncated++;
        else if (len > 0 || !stop)
            exp_statsd_ingest_packet(in, rd->bufs + (size_t)i * DG_BUF, len);
        real += len > 0;
        rd->msgs[i].msg_hdr.msg_flags = 0;
    }
    exp_statsd_batch_end(in);
    return real;
}

/* One blocking receive per wake-up: recvmmsg waits for the first datagram and takes what is
 * queued behind it. While counts wait for a fold, the wait is bounded so that an idle reader
 * folds within IDLE_FOLD_MS. Stop: exp_statsd_listener_stop shuts the socket down, which
 * wakes the wait; datagrams already queued are still read (a bounded number of batches).
 * Returns NULL; cannot fail (receive errors are logged at a bounded rate). */
static void *dg_thread(void *arg) {
    static exp_log_limit lim;
    reader *rd = arg;
    exp_ingest *in = rd->in;
    uint64_t drain_until = 0; /* set at a stop request: the queue is read until empty or then */
    for (;;) {
        int n =
            recvmmsg(rd->fd, rd->msgs, DG_VLEN, drain_until ? MSG_DONTWAIT : MSG_WAITFORONE, NULL);
        int stop = stopping(rd->L);
        if (stop && !drain_until)
            drain_until = exp_statsd_now_ms() + DG_DRAIN_MS;
        if (n > 0) {
            int real = dg_batch(rd, n, stop);
            /* A sender that keeps sending would keep the queue full: the deadline ends it. */
            if (stop && (real == 0 || exp_statsd_now_ms() >= drain_until))
                break;
            if (!rd->rcvtimeo && !stop)
                dg_timeout(rd, IDLE_FOLD_MS); /* counts are pending now */
            if (n < DG_VLEN && !stop) {
                struct timespec ts = {0, DG_GATHER_US * 1000L};
                nanosleep(&ts, NULL);
            }
            continue;
        }
        if (stop)
            break;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* Idle for IDLE_FOLD_MS: make the counts visible, then wait unbounded. */
            exp_ingest_fold(in);
            dg_timeout(rd, 0);
        } else if (n < 0 && errno != EINTR) {
            exp_log_limited(&lim, 5, EXP_LOG_WARN, "statsd receive failed", "listener",
                            exp_statsd_kind_names[in->kind], "err", strerror(errno), NULL);
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL); /* e.g. ENOMEM: do not spin */
        }
    }
    exp_ingest_fold(in);
    return NULL;
}

/* ---- the TCP reader ------------------------------------------------------------------------ */

#define ACCEPT_RETRY_MS 100 /* after running out of descriptors, try accepting again */

/* The TCP reader reads every connection into its one buffer (rd->rbuf); a connection keeps
 * only its unterminated tail, in a buffer sized to it (none at all between lines). So an idle
 * connection costs no buffer, and one holding a partial line costs that line. Connections are
 * listed most recently active first: the last one is the longest idle, which the idle timeout
 * closes. Tails over TCP_TAIL_MMAP are mapped pages of their own: glibc keeps freed chunks
 * below its (dynamic, up to 32 MiB) mmap threshold inside a thread's heap, where neither its
 * trimming nor malloc_trim reaches the top of a non-main arena, so thousands of closed 60 KB
 * tails would stay resident for good. Smaller freed tails are handed back with malloc_trim. */

/* Listen for new connections again after a pause. Cannot fail (a failed re-arm is retried). */
static void resume_accept(reader *rd) {
    if (!rd->accept_paused)
        return;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(rd->ep, EPOLL_CTL_MOD, rd->fd, &ev) == 0)
        rd->accept_paused = 0;
    else
        rd->paused_at_ms = exp_statsd_now_ms();
}

/* Take c out of the reader's connection list. Cannot fail. */
static void conn_unlink(reader *rd, tconn *c) {
    /* The list's ends are exactly the connections without a neighbour on that side. */
    assert((c->prev == NULL) == (rd->conns == c));
    assert((c->next == NULL) == (rd->conns_tail == c));
    if (c->prev)
        c->prev->next = c->next;
    else
        rd->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        rd->conns_tail = c->prev;
    c->prev = c->next = NULL;
}

/* Put c first (most recently active) in the reader's connection list. Cannot fail. */
static void conn_push_front(reader *rd, tconn *c) {
    c->next = rd->conns;
    c->prev = NULL;
    if (rd->conns)
        rd->conns->prev = c;
    else
        rd->conns_tail = c;
    rd->conns = c;
}

/* c received something at now: it becomes the most recently active. Cannot fail. */
static void conn_touch(reader *rd, tconn *c, uint64_t now) {
    c->active_ms = now;
    if (rd->conns != c) {
        conn_unlink(rd, c);
        conn_push_front(rd, c);
    }
}

/* cap bytes for a tail: malloc'ed, or mapped when over TCP_TAIL_MMAP. NULL when out of
 * memory. */
static char *tail_alloc(size_t cap) {
    if (cap <= TCP_TAIL_MMAP)
        return malloc(cap);
    // cppcheck-suppress invalidFunctionArg ; MAP_ANONYMOUS wants fd -1
    void *p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    // cppcheck-suppress memleak ; the mapping is the result, unmapped by tail_free
    return p == MAP_FAILED ? NULL : p;
}

/* Frees a tail from tail_alloc(cap); NULL is a no-op. Cannot fail. */
static void tail_free(char *p, size_t cap) {
    if (p && cap > TCP_TAIL_MMAP)
        munmap(p, cap);
    else
        free(p);
}

/* Close and free connection c (what it held of a line is dropped); accepting resumes if it
 * was paused. Cannot fail. */
static void tcp_close(reader *rd, tconn *c) {
    conn_unlink(rd, c);
    epoll_ctl(rd->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->cap <= TCP_TAIL_MMAP)
        rd->freed += c->cap;
    tail_free(c->buf, c->cap);
    free(c);
    rd->nconns--;
    resume_accept(rd);
}

/* Every complete line of b[0..len); moves the unterminated tail to the front of b and returns
 * its length (at most the stream's max_line: a longer one is being discarded). */
static size_t tcp_lines(exp_ingest *in, exp_statsd_stream *s, char *b, size_t len) {
    size_t pos = 0;
    exp_statsd_str line;
    for (;;) {
        exp_statsd_stream_status st = exp_statsd_stream_next(s, b, len, &pos, &line);
        if (st == EXP_STATSD_STREAM_LINE)
            exp_statsd_ingest_line(in, line.ptr, line.len);
        else if (st == EXP_STATSD_STREAM_TOO_LONG)
            in->cur.ps.errors[EXP_STATSD_ERR_LINE_TOO_LONG]++;
        else
            break;
    }
    if (pos)
        memmove(b, b + pos, len - pos);
    return len - pos;
}

/* Keep the unterminated tail b[0..len) in c, in a buffer of whole blocks (TCP_TAIL_BLOCK, or
 * pages when mapped) that grows when needed and shrinks once it is twice too large (freed
 * when empty). The old content need not survive: b holds it. Returns 0, or -1 when out of
 * memory (c unchanged). */
static int keep_tail(reader *rd, tconn *c, const char *b, size_t len) {
    size_t block = len > TCP_TAIL_MMAP ? 4096 : TCP_TAIL_BLOCK;
    size_t want = (len + block - 1) / block * block;
    if (want > c->cap || want * 2 <= c->cap) {
        char *nb = NULL;
        if (want && !(nb = tail_alloc(want)))
            return -1;
        if (c->cap <= TCP_TAIL_MMAP)
            rd->freed += c->cap;
        tail_free(c->buf, c->cap);
        c->buf = nb;
        c->cap = want;
    }
    assert(c->cap >= len); /* want rounds len up to whole blocks */
    if (len)
        memcpy(c->buf, b, len);
    c->len = len;
    return 0;
}

/* Read what a connection has (a bounded number of reads). Inside a section. Returns 0 to keep
 * the connection, -1 when it ended (closed by the caller). */
static int tcp_read(reader *rd, tconn *c) {
    exp_ingest *in = rd->in;
    char *b = rd->rbuf;
    size_t len = c->len;
    if (len)
        memcpy(b, c->buf, len);
    for (int r = 0; r < TCP_READS_PER_WAKE; r++) {
        /* len <= MAX_LINE here, so every read has room for at least 64 KiB */
        ssize_t k = read(c->fd, b + len, TCP_RBUF - len);
        if (k > 0) {
            in->cur.bytes += (uint64_t)k;
            len = tcp_lines(in, &c->s, b, len + (size_t)k);
            continue;
        }
        if (k == 0) {
            size_t pos = 0;
            exp_statsd_str line;
            if (exp_statsd_stream_finish(&c->s, b, len, &pos, &line) == EXP_STATSD_STREAM_LINE)
                exp_statsd_ingest_line(in, line.ptr, line.len);
            return -1;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        if (errno == EINTR)
            continue;
        in->cur.tcp_errors++;
        return -1;
    }
    if (keep_tail(rd, c, b, len) != 0) {
        in->cur.tcp_errors++;
        return -1;
    }
    return 0;
}

/* statsd.max_tcp_connections of the current configuration (its default when unset). Cannot
 * fail. */
static size_t max_conns(const exp_ingest *in) {
    size_t m = in->cfg->cfg->statsd.max_tcp_connections;
    return m ? m : TCP_MAX_CONNS_DEFAULT;
}

/* Accept every pending connection. Over statsd.max_tcp_connections a new connection is
 * accepted and closed at once (the client sees the close rather than hanging in the backlog);
 * the open ones keep going: an idle holder goes at its idle timeout. Inside a section. Cannot
 * fail: errors are counted (and logged at a bounded rate). */
static void tcp_accept(reader *rd, uint64_t now) {
    static exp_log_limit lim, lim_refused;
    exp_ingest *in = rd->in;
    for (;;) {
        int fd = accept4(rd->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            in->cur.tcp_errors++;
            exp_log_limited(&lim, 5, EXP_LOG_WARN, "statsd tcp accept failed", "err",
                            strerror(errno), NULL);
            if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
                /* Stop asking until one of our connections closes or a moment has passed
                 * (the descriptors may be held elsewhere), or this would spin. */
                struct epoll_event ev = {.events = 0, .data.ptr = NULL};
                if (epoll_ctl(rd->ep, EPOLL_CTL_MOD, rd->fd, &ev) == 0) {
                    rd->accept_paused = 1;
                    rd->paused_at_ms = exp_statsd_now_ms();
                }
            }
            return;
        }
        size_t cap = max_conns(in);
        if (rd->nconns >= cap) {
            close(fd);
            in->cur.tcp_refused_limit++;
            char m[24];
            snprintf(m, sizeof m, "%zu", cap);
            exp_log_limited(&lim_refused, 5, EXP_LOG_WARN, "statsd tcp connection refused",
                            "reason", "limit", "max_tcp_connections", m, NULL);
            continue;
        }
        tconn *c = calloc(1, sizeof *c);
        if (c) {
            c->fd = fd;
            c->active_ms = now;
            exp_statsd_stream_init(&c->s, MAX_LINE);
            struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
            if (epoll_ctl(rd->ep, EPOLL_CTL_ADD, fd, &ev) == 0) {
                conn_push_front(rd, c);
                rd->nconns++;
                in->cur.tcp_conns++;
                continue;
            }
        }
        free(c);
        close(fd);
        in->cur.tcp_errors++;
    }
}

/* Close the connections that received nothing for timeout_ms (0: no timeout), longest idle
 * first; what they held of an unterminated line is dropped. Outside a section. Returns the
 * milliseconds until the next one would time out, or -1 when none can. */
static int tcp_expire(reader *rd, uint64_t now, uint64_t timeout_ms) {
    if (!timeout_ms)
        return -1;
    while (rd->conns_tail) {
        tconn *c = rd->conns_tail;
        uint64_t due = c->active_ms + timeout_ms;
        if (due > now)
            return due - now > INT32_MAX ? INT32_MAX : (int)(due - now);
        rd->in->cur.tcp_closed_idle++;
        tcp_close(rd, c);
    }
    return -1;
}

/* Hand freed tail memory back to the system once a burst of closes has freed enough of it,
 * at most every TCP_TRIM_MS. Returns the milliseconds until a trim is due, or -1. */
static int tcp_trim(reader *rd, uint64_t now) {
    if (rd->freed < TCP_TRIM_BYTES)
        return -1;
    if (now - rd->trimmed_ms < TCP_TRIM_MS)
        return (int)(rd->trimmed_ms + TCP_TRIM_MS - now);
    malloc_trim(0);
    rd->freed = 0;
    rd->trimmed_ms = now;
    return -1;
}

#define TCP_EVENTS 64
#define TCP_DRAIN_ROUNDS 64

/* Read every connection epoll reported (and accept, when accept_ok). Inside a section. Cannot
 * fail: a connection that fails is closed. */
static void tcp_events(reader *rd, struct epoll_event *evs, int n, int accept_ok) {
    uint64_t now = exp_statsd_now_ms();
    for (int i = 0; i < n; i++) {
        tconn *c = evs[i].data.ptr;
        if (c == NULL) {
            if (accept_ok)
                tcp_accept(rd, now);
        } else if (c != (tconn *)(void *)rd) { /* rd itself tags the stop eventfd */
            conn_touch(rd, c, now);
            if (tcp_read(rd, c) != 0)
                tcp_close(rd, c);
        }
    }
}

/* The smaller of two epoll timeouts (-1: none). */
static int min_timeout(int a, int b) {
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

/* The TCP reader: one epoll loop over the listening socket, the stop eventfd and every
 * connection, with the idle timeout, heap trims and idle folds as its wake-up times. Stop:
 * accept nothing more, read what connections already sent (bounded), close them. Returns
 * NULL; cannot fail (errors are counted per connection). */
static void *tcp_thread(void *arg) {
    reader *rd = arg;
    exp_ingest *in = rd->in;
    struct epoll_event evs[TCP_EVENTS];
    for (;;) {
        exp_statsd_refresh_config(in); /* the idle timeout and the cap may change on reload */
        uint64_t now = exp_statsd_now_ms();
        if (rd->accept_paused && now - rd->paused_at_ms >= ACCEPT_RETRY_MS)
            resume_accept(rd);
        int timeout = tcp_expire(rd, now, in->cfg->cfg->statsd.tcp_idle_timeout_ns / 1000000);
        timeout = min_timeout(timeout, tcp_trim(rd, now));
        /* While counts are pending, idle for IDLE_FOLD_MS makes them visible; while accepting
         * is paused, wake to retry it. */
        if (exp_statsd_pending(in))
            timeout = min_timeout(timeout, IDLE_FOLD_MS);
        if (rd->accept_paused)
            timeout = min_timeout(timeout, ACCEPT_RETRY_MS);
        int n = epoll_wait(rd->ep, evs, TCP_EVENTS, timeout);
        if (n == 0) {
            if (exp_statsd_pending(in))
                exp_ingest_fold(in);
            continue;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (stopping(rd->L))
            break;
        exp_statsd_batch_begin(in);
        tcp_events(rd, evs, n, 1);
        exp_statsd_batch_end(in);
    }
    /* Stop: accept nothing more, read what connections already sent (bounded), close. */
    epoll_ctl(rd->ep, EPOLL_CTL_DEL, rd->L->stopfd, NULL);
    epoll_ctl(rd->ep, EPOLL_CTL_DEL, rd->fd, NULL);
    for (int round = 0; round < TCP_DRAIN_ROUNDS; round++) {
        int n = epoll_wait(rd->ep, evs, TCP_EVENTS, 0);
        if (n <= 0)
            break;
        exp_statsd_batch_begin(in);
        tcp_events(rd, evs, n, 0);
        exp_statsd_batch_end(in);
    }
    while (rd->conns)
        tcp_close(rd, rd->conns); /* an unterminated tail is not a line yet */
    exp_ingest_fold(in);
    return NULL;
}

/* ---- sockets ------------------------------------------------------------------------------- */

/* The receive buffer of a datagram socket. Warns when the kernel caps it below the request
 * (net.core.rmem_max without CAP_NET_ADMIN). Cannot fail (the default buffer stays). */
static void dg_options(int fd, size_t rcvbuf, const char *what) {
    if (!rcvbuf)
        return;
    int want = rcvbuf > INT32_MAX / 2 ? INT32_MAX / 2 : (int)rcvbuf;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
    int got = 0;
    socklen_t len = sizeof got;
    /* Linux reports twice the usable size it granted. */
    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) == 0 && got / 2 < want) {
        char w[24], g[24];
        snprintf(w, sizeof w, "%d", want);
        snprintf(g, sizeof g, "%d", got / 2);
        exp_log(EXP_LOG_WARN,
                "statsd receive buffer smaller than requested (raise "
                "net.core.rmem_max)",
                "listener", what, "requested", w, "granted", g, NULL);
    }
}

/* A bound Unix datagram socket. A stale socket file (nobody receiving) is replaced; a live
 * one is an error. -1 with a reason in err. */
static int unixgram_bind(const char *path, char *err, size_t errlen) {
    struct sockaddr_un su = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof su.sun_path) {
        snprintf(err, errlen, "socket path longer than %zu bytes", sizeof su.sun_path - 1);
        return -1;
    }
    memcpy(su.sun_path, path, strlen(path) + 1); /* fits: checked above */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    struct stat sb;
    if (lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode)) {
        int probe = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        int live = probe >= 0 && connect(probe, (struct sockaddr *)&su, sizeof su) == 0;
        if (probe >= 0)
            close(probe);
        if (live) {
            snprintf(err, errlen, "%s is in use by another process", path);
            close(fd);
            return -1;
        }
        unlink(path);
    }
    if (bind(fd, (struct sockaddr *)&su, sizeof su) != 0) {
        snprintf(err, errlen, "bind: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- start / stop ----------------------------------------------------------------------- */

/* Closes a reader's sockets and frees its buffers and its context. Cannot fail. */
static void free_reader(reader *rd) {
    exp_ingest_free(rd->in);
    rd->in = NULL;
    if (rd->fd >= 0)
        close(rd->fd);
    if (rd->ep >= 0)
        close(rd->ep);
    rd->fd = rd->ep = -1;
    free(rd->msgs);
    free(rd->iov);
    free(rd->bufs);
    free(rd->rbuf);
    rd->rbuf = NULL;
}

/* A listener for the settings sc, nothing bound yet: which listeners are enabled, the UDP
 * reader count (start_readers) and the other settings a reload cannot change, the stop
 * eventfd and one unstarted reader per socket (UDP readers first, then TCP, then Unix
 * datagram). NULL when out of memory (nothing is left allocated). */
static exp_statsd_listener *listener_new(reg_registry *r, exp_state *st, const cfg_statsd *sc) {
    exp_statsd_listener *L = calloc(1, sizeof *L);
    if (!L)
        return NULL;
    L->reg = r;
    L->st = st;
    L->stopfd = -1;
    exp_statsd_metrics_init(L);
    exp_statsd_created_init(L);
    const char *addrs[EXP_STATSD_LISTENER_KINDS] = {sc->listen_udp, sc->listen_tcp,
                                                    sc->listen_unixgram};
    for (int k = 0; k < EXP_STATSD_LISTENER_KINDS; k++) {
        L->enabled[k] = addrs[k] && *addrs[k];
        L->start_addr[k] = strdup(addrs[k] ? addrs[k] : "");
    }
    size_t nudp = L->enabled[EXP_STATSD_LISTENER_UDP] ? (sc->readers ? sc->readers : 1) : 0;
    L->start_readers = nudp > 64 ? 64 : nudp;
    L->start_rcvbuf = sc->read_buffer;
    L->start_cache = sc->cache_size;
    L->start_max_series = sc->max_series;
    atomic_init(&L->warned_gen, exp_state_generation(st));
    L->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    size_t nrd = L->start_readers + (size_t)L->enabled[EXP_STATSD_LISTENER_TCP] +
                 (size_t)L->enabled[EXP_STATSD_LISTENER_UNIXGRAM];
    L->rd = calloc(nrd ? nrd : 1, sizeof *L->rd);
    if (L->stopfd < 0 || !L->rd) {
        exp_statsd_listener_stop(L);
        return NULL;
    }
    L->nrd = nrd;
    for (size_t i = 0; i < L->nrd; i++)
        L->rd[i] = (reader){.L = L, .fd = -1, .ep = -1};
    return L;
}

/* Bind the sockets of the first start_readers readers to addr (one UDP port for all) and give
 * each its ingest context. 0, or -1 with a reason in err. */
static int start_udp(exp_statsd_listener *L, const char *addr, char *err, size_t errlen) {
    size_t n = L->start_readers;
    char why[640];
    int fds[64];
    if (exp_listen_n(addr, SOCK_DGRAM, n, fds, why, sizeof why) != 0) {
        snprintf(err, errlen, "statsd UDP listener on %s: %s", addr, why);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        L->rd[i].fd = fds[i];
        L->rd[i].in = exp_ingest_create(L, EXP_STATSD_LISTENER_UDP);
        dg_options(fds[i], L->start_rcvbuf, "udp");
    }
    exp_sock_name(fds[0], L->addr[EXP_STATSD_LISTENER_UDP],
                  sizeof L->addr[EXP_STATSD_LISTENER_UDP]);
    return 0;
}

/* The TCP reader rd: its listening socket on addr (non-blocking), its read buffer, and epoll
 * over the socket and the stop eventfd. 0, or -1 with a reason in err. */
static int start_tcp(exp_statsd_listener *L, reader *rd, const char *addr, char *err,
                     size_t errlen) {
    char why[640];
    rd->fd = exp_listen(addr, SOCK_STREAM, why, sizeof why);
    if (rd->fd < 0) {
        snprintf(err, errlen, "statsd TCP listener on %s: %s", addr, why);
        return -1;
    }
    fcntl(rd->fd, F_SETFL, fcntl(rd->fd, F_GETFL) | O_NONBLOCK);
    exp_sock_name(rd->fd, L->addr[EXP_STATSD_LISTENER_TCP],
                  sizeof L->addr[EXP_STATSD_LISTENER_TCP]);
    rd->in = exp_ingest_create(L, EXP_STATSD_LISTENER_TCP);
    rd->rbuf = malloc(TCP_RBUF);
    if (!rd->rbuf) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rd->ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event le = {.events = EPOLLIN, .data.ptr = NULL};
    struct epoll_event se = {.events = EPOLLIN, .data.ptr = rd};
    if (rd->ep < 0 || epoll_ctl(rd->ep, EPOLL_CTL_ADD, rd->fd, &le) != 0 ||
        epoll_ctl(rd->ep, EPOLL_CTL_ADD, L->stopfd, &se) != 0) {
        snprintf(err, errlen, "statsd TCP listener: epoll: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* The Unix datagram reader rd: its socket bound to path (removed again at stop). 0, or -1
 * with a reason in err. */
static int start_unixgram(exp_statsd_listener *L, reader *rd, const char *path, char *err,
                          size_t errlen) {
    char why[640];
    rd->fd = unixgram_bind(path, why, sizeof why);
    if (rd->fd < 0) {
        snprintf(err, errlen, "statsd Unix datagram listener on %s: %s", path, why);
        return -1;
    }
    L->unix_path = strdup(path);
    snprintf(L->addr[EXP_STATSD_LISTENER_UNIXGRAM], sizeof L->addr[0], "%s", path);
    rd->in = exp_ingest_create(L, EXP_STATSD_LISTENER_UNIXGRAM);
    dg_options(rd->fd, L->start_rcvbuf, "unixgram");
    return 0;
}

/* Bind every enabled listener, before any thread starts. 0, or -1 with a reason in err. */
static int bind_all(exp_statsd_listener *L, const cfg_statsd *sc, char *err, size_t errlen) {
    size_t ri = L->start_readers;
    if (ri && start_udp(L, sc->listen_udp, err, errlen) != 0)
        return -1;
    if (L->enabled[EXP_STATSD_LISTENER_TCP] &&
        start_tcp(L, &L->rd[ri++], sc->listen_tcp, err, errlen) != 0)
        return -1;
    if (L->enabled[EXP_STATSD_LISTENER_UNIXGRAM] &&
        start_unixgram(L, &L->rd[ri++], sc->listen_unixgram, err, errlen) != 0)
        return -1;
    return 0;
}

/* Start every reader thread (datagram readers get their receive buffers first). 0, or -1
 * with a reason in err (the threads already started keep running until stop). */
static int start_threads(exp_statsd_listener *L, char *err, size_t errlen) {
    for (size_t i = 0; i < L->nrd; i++) {
        reader *rd = &L->rd[i];
        if (!rd->in || (rd->ep < 0 && dg_setup(rd) != 0)) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    for (size_t i = 0; i < L->nrd; i++) {
        reader *rd = &L->rd[i];
        int e = pthread_create(&rd->th, NULL, rd->ep >= 0 ? tcp_thread : dg_thread, rd);
        if (e != 0) {
            snprintf(err, errlen, "starting a statsd reader thread: %s", strerror(e));
            return -1;
        }
        rd->started = 1;
    }
    return 0;
}

/* Logs "statsd listener started" for every enabled listener. Cannot fail. */
static void log_started(const exp_statsd_listener *L) {
    for (int k = 0; k < EXP_STATSD_LISTENER_KINDS; k++) {
        if (!L->enabled[k])
            continue;
        char nr[16];
        snprintf(nr, sizeof nr, "%zu", k == EXP_STATSD_LISTENER_UDP ? L->start_readers : (size_t)1);
        exp_log(EXP_LOG_INFO, "statsd listener started", "listener", exp_statsd_kind_names[k],
                "address", L->addr[k], "readers", nr, NULL);
    }
}

/* Bind, register the self-metric families (first: a clash with a declared metric is a start
 * error), start the readers (statsd.h). NULL with a reason in err; nothing is left running
 * then. */
exp_statsd_listener *exp_statsd_listener_start(reg_registry *r, exp_state *st, char *err,
                                               size_t errlen) {
    exp_config *c = exp_state_acquire(st);
    const cfg_statsd *sc = &c->cfg->statsd;
    exp_statsd_listener *L = listener_new(r, st, sc);
    int ok = 0;
    if (!L)
        snprintf(err, errlen, "out of memory");
    else if (exp_statsd_metrics_start(L, err, errlen) == REG_OK &&
             bind_all(L, sc, err, errlen) == 0 && start_threads(L, err, errlen) == 0)
        ok = 1;
    exp_config_release(c);
    if (!ok) {
        exp_statsd_listener_stop(L);
        return NULL;
    }
    log_started(L);
    return L;
}

/* Stop the readers, fold, close, free (statsd.h). NULL is a no-op. Cannot fail. */
void exp_statsd_listener_stop(exp_statsd_listener *L) {
    if (!L)
        return;
    /* seq_cst, relaxed would do: pairs with stopping(); the eventfd write and shutdown wake
     * the readers, and pthread_join below orders everything they did before the free. */
    atomic_store(&L->stopping, 1);
    if (L->stopfd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(L->stopfd, &one, sizeof one);
        (void)w;
    }
    for (size_t i = 0; i < L->nrd; i++)
        if (L->rd[i].started && L->rd[i].ep < 0)
            shutdown(L->rd[i].fd, SHUT_RD); /* wakes a datagram reader's receive */
    for (size_t i = 0; i < L->nrd; i++)
        if (L->rd[i].started)
            pthread_join(L->rd[i].th, NULL);
    for (size_t i = 0; i < L->nrd; i++)
        free_reader(&L->rd[i]);
    free(L->rd);
    if (L->unix_path) {
        unlink(L->unix_path);
        free(L->unix_path);
    }
    exp_statsd_metrics_free(L);
    if (L->stopfd >= 0)
        close(L->stopfd);
    exp_statsd_created_free(L);
    for (int k = 0; k < EXP_STATSD_LISTENER_KINDS; k++)
        free(L->start_addr[k]);
    free(L);
}

/* The bound address of one listener, NULL when disabled (statsd.h). Cannot fail. */
const char *exp_statsd_listener_address(const exp_statsd_listener *l,
                                        exp_statsd_listener_kind kind) {
    if (!l || (unsigned)kind >= EXP_STATSD_LISTENER_KINDS || !l->enabled[kind])
        return NULL;
    return l->addr[kind];
}
