/*
 * pause — the sandbox ("pause") image of the test cluster, and its smoke-test
 * server.  This machine has no registry, so the image every pod sandbox runs
 * is built here: this file, linked statically, alone in a FROM-scratch image.
 *
 *   pause                 wait for SIGTERM/SIGINT, reaping children (a pod's
 *                         PID 1 when the PID namespace is shared); exit 0
 *   pause --serve PORT    the same, answering every TCP connection on PORT
 *                         with "HTTP/1.0 200 OK … ok" (the 2-replica
 *                         Deployment up.sh --smoke proves the node with)
 *
 * Test tooling only: not part of the txagg services.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t pause_stop;

static void pause_on_term(int sig)
{
    (void)sig;
    pause_stop = 1;
}

static void pause_on_chld(int sig)
{
    (void)sig;
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static int pause_serve(int port)
{
    static const char reply[] = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
                                "Connection: close\r\n\r\nok\n";
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return perror("pause: socket"), 1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0) return perror("pause: bind"), 1;
    while (!pause_stop) {
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) continue; /* EINTR on a signal: the loop re-checks the flag */
        char buf[2048];
        struct timeval tv = {.tv_sec = 2};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        (void)!read(c, buf, sizeof buf); /* the request line; its content does not matter */
        (void)!write(c, reply, sizeof reply - 1);
        close(c);
    }
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    struct sigaction sa = {.sa_handler = pause_on_term}; /* no SA_RESTART: accept/pause return */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    struct sigaction sc = {.sa_handler = pause_on_chld, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
    sigaction(SIGCHLD, &sc, NULL);

    if (argc == 3 && !strcmp(argv[1], "--serve")) {
        int port = atoi(argv[2]);
        if (port <= 0 || port > 65535) return fprintf(stderr, "pause: bad port '%s'\n", argv[2]), 2;
        return pause_serve(port);
    }
    if (argc != 1) return fprintf(stderr, "usage: pause [--serve PORT]\n"), 2;
    while (!pause_stop) pause();
    return 0;
}
