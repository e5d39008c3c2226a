/* The workers' /health /ready /metrics listener answers without I/O;
 * SIGTERM stops an interruptible sleep promptly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "http.h"
#include "metrics.h"
#include "signals.h"

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    return ntohs(a.sin_port);
}

/* "<status> <body>" of one curl request. */
static void fetch(int port, const char *method, const char *path, int *status, char *body, size_t n)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "curl -s -X %s -o /dev/stdout -w '\\n%%{http_code}' http://127.0.0.1:%d%s", method, port,
             path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t got = fread(body, 1, n - 1, p);
    body[got] = '\0';
    pclose(p);
    char *nl = strrchr(body, '\n');
    assert_non_null(nl);
    *status = atoi(nl + 1);
    *nl = '\0';
}

static int ready_flag;
static char last_query[64];
static int ready_fn(void *arg, const char *query)
{
    (void)arg;
    snprintf(last_query, sizeof last_query, "%s", query ? query : "(none)");
    if (query && !strcmp(query, "bad")) return HTTP_BAD_QUERY;
    return ready_flag;
}

static void test_listener_serves_health_ready_and_metrics(void **st)
{
    (void)st;
    int port = free_port();
    char err[256], body[65536];
    int status;
    metric *m = metrics_counter("t_listener_hits_total", "Test counter", NULL);
    metrics_add(m, 7);
    http_listener *l = http_listener_start("127.0.0.1", port, HTTP_LISTEN_METRICS, ready_fn, NULL, err, sizeof err);
    assert_non_null(l);

    fetch(port, "GET", "/health", &status, body, sizeof body);
    assert_int_equal(status, 200);
    assert_string_equal(body, "{\"status\":\"ok\"}");

    ready_flag = 0;
    fetch(port, "GET", "/ready", &status, body, sizeof body);
    assert_int_equal(status, 503);
    ready_flag = 1;
    fetch(port, "GET", "/ready", &status, body, sizeof body);
    assert_int_equal(status, 200);
    assert_string_equal(last_query, "(none)");
    fetch(port, "GET", "/ready?deps=redis", &status, body, sizeof body);
    assert_int_equal(status, 200);
    assert_string_equal(last_query, "deps=redis");
    fetch(port, "GET", "/ready?bad", &status, body, sizeof body);
    assert_int_equal(status, 400);
    assert_non_null(strstr(body, "\"detail\""));

    fetch(port, "GET", "/metrics", &status, body, sizeof body);
    assert_int_equal(status, 200);
    assert_non_null(strstr(body, "t_listener_hits_total 7\n"));

    fetch(port, "GET", "/nope", &status, body, sizeof body);
    assert_int_equal(status, 404);
    assert_non_null(strstr(body, "\"detail\""));
    fetch(port, "POST", "/health", &status, body, sizeof body);
    assert_int_equal(status, 405);
    assert_string_equal(body, "{\"detail\":\"method not allowed (use GET or HEAD)\"}");

    /* A second listener on the same port fails with a message, not a crash. */
    http_listener *dup = http_listener_start("127.0.0.1", port, 0, NULL, NULL, err, sizeof err);
    assert_null(dup);
    assert_non_null(strstr(err, "listen"));
    http_listener_stop(l);
}

/* The api's probe listener: health and readiness only, its /metrics stays
 * behind the token on the main port. */
static void test_listener_without_metrics_flag_answers_404_for_metrics(void **st)
{
    (void)st;
    char err[256], body[4096];
    int status;
    http_listener *l = http_listener_start("127.0.0.1", 0, 0, NULL, NULL, err, sizeof err);
    assert_non_null(l);
    int port = http_listener_port(l);
    assert_true(port > 0);
    fetch(port, "GET", "/health", &status, body, sizeof body);
    assert_int_equal(status, 200);
    fetch(port, "GET", "/ready", &status, body, sizeof body);
    assert_int_equal(status, 200);
    fetch(port, "GET", "/metrics", &status, body, sizeof body);
    assert_int_equal(status, 404);
    http_listener_stop(l);
}

/* One builder of civetweb's listening_ports for all four binaries. */
static void test_listen_spec_brackets_ipv6_and_refuses_overflow(void **st)
{
    (void)st;
    char buf[64];
    assert_int_equal(http_listen_spec("127.0.0.1", 8000, buf, sizeof buf), 0);
    assert_string_equal(buf, "127.0.0.1:8000");
    assert_int_equal(http_listen_spec("api.internal", 9101, buf, sizeof buf), 0);
    assert_string_equal(buf, "api.internal:9101");
    assert_int_equal(http_listen_spec("::1", 8000, buf, sizeof buf), 0);
    assert_string_equal(buf, "[::1]:8000");
    assert_int_equal(http_listen_spec("a-very-long-host-name.example", 8000, buf, 16), -1);
}

static void test_sigterm_interrupts_sleep_and_sets_the_stop_flag(void **st)
{
    (void)st;
    sig_install();
    assert_false(sig_stopping());
    assert_int_equal(sig_sleep_ms(20), 0);
    raise(SIGTERM);
    assert_true(sig_stopping());
    /* Returns "stopping" instead of sleeping a minute (the harness would time out). */
    assert_int_equal(sig_sleep_ms(60000), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listener_serves_health_ready_and_metrics),
        cmocka_unit_test(test_listener_without_metrics_flag_answers_404_for_metrics),
        cmocka_unit_test(test_listen_spec_brackets_ipv6_and_refuses_overflow),
        cmocka_unit_test(test_sigterm_interrupts_sleep_and_sets_the_stop_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
