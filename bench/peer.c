/* peer.c - the server processes a bench starts and stops (peer.h). */
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "peer.h"

#define MAX_PEERS 8

static pid_t started[MAX_PEERS];
static int nstarted;

int peer_start(pid_t *pid, const char *name, char *const argv[], int quiet, http_client *probe) {
    *pid = fork();
    if (*pid < 0) {
        *pid = 0;
        return -1;
    }
    if (*pid == 0) {
        setsid();
        if (quiet) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    if (nstarted < MAX_PEERS)
        started[nstarted++] = *pid;
    for (double deadline = now_s() + 30; now_s() < deadline; sleep_ms(20)) {
        int status;
        if (waitpid(*pid, &status, WNOHANG) == *pid) {
            fprintf(stderr, "%s exited while starting (wait status %d)\n", name, status);
            *pid = 0;
            return -1;
        }
        if (http_request(probe, "GET", "/-/ready", "", 0) == 200)
            return 0;
    }
    fprintf(stderr, "%s: not ready within 30 s\n", name);
    peer_stop(pid, name);
    return -1;
}

void peer_stop(pid_t *pid, const char *name) {
    if (*pid <= 0)
        return;
    kill(-*pid, SIGTERM);
    int status = 0;
    double deadline = now_s() + 30;
    while (waitpid(*pid, &status, WNOHANG) == 0) {
        if (now_s() > deadline) {
            fprintf(stderr, "%s did not stop within 30 s of SIGTERM: killed\n", name);
            kill(-*pid, SIGKILL);
            waitpid(*pid, &status, 0);
            break;
        }
        sleep_ms(10);
    }
    if (WIFSIGNALED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "%s ended with %s %d after SIGTERM\n", name,
                WIFSIGNALED(status) ? "signal" : "exit status",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    for (int i = 0; i < nstarted; i++)
        if (started[i] == *pid)
            started[i] = 0;
    *pid = 0;
}

void peer_kill_all(void) {
    for (int i = 0; i < nstarted; i++)
        if (started[i] > 0)
            kill(-started[i], SIGKILL);
}

char *peer_gauge_body(size_t n, size_t first, size_t *len) {
    size_t cap = 64 + n * 96, used = 0;
    char *body = malloc(cap);
    if (body == NULL)
        exit(1);
    used += (size_t)snprintf(body, cap, "# TYPE bench_gauge gauge\n");
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(body + used, cap - used,
                                 "bench_gauge{service=\"svc-%zu\",endpoint=\"/api/v1/item/%zu\"} "
                                 "%zu\n",
                                 i % 100, first + i, i % 1000);
    *len = used;
    return body;
}

int peer_build_abacus(char *out, size_t cap) {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    snprintf(out, cap, "%s/../exporter/abacus", dirname(self));
    return 0;
}

char **peer_abacus_argv(char *argv[PEER_ARGV_MAX], const char *bin, const char *listen,
                        const char *const *extra) {
    static const char *const fixed[] = {"--config.file=/dev/null", "--statsd.listen-udp=",
                                        "--statsd.listen-tcp=", "--log.level=warn"};
    size_t n = 0;
    argv[n++] = (char *)bin;
    argv[n++] = (char *)listen;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        argv[n++] = (char *)fixed[i];
    for (size_t i = 0; extra && extra[i] && i < PEER_EXTRA_MAX; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    return argv;
}
