/* Proxies, against real ones from Debian on loopback: tinyproxy (HTTP CONNECT, with and without
 * BasicAuth), microsocks (SOCKS5, with and without a password) and stunnel in front of tinyproxy
 * (an https proxy), installed by scripts/bootstrap.sh. Over each: ws and wss to the dev gateway reach READY and exchange events;
 * a refusal (credentials, the target port) is a CLOSED event with UBG_EPROXY and the proxy's
 * answer; the environment is followed, NO_PROXY bypasses it, and it can be turned off. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

extern char **environ;

#define BASIC "--heartbeat 200 --heartbeat-grace 2000 --key dev-key --echo"
#define SECRET "pr0xy-s3cret"

typedef struct {
    pid_t pid;
    int port;
    char dir[64];
} proxy_process;

/* A port nothing listens on now (the proxy is started on it at once). */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(bind(fd, (struct sockaddr *)&address, sizeof address) == 0);
    socklen_t length = sizeof address;
    CHECK(getsockname(fd, (struct sockaddr *)&address, &length) == 0);
    close(fd);
    return ntohs(address.sin_port);
}

static int accepts_connections(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&address, sizeof address) == 0;
    close(fd);
    return ok;
}

/* Proxies started by this test process, stopped if a check fails (test_fail calls
 * stop_every_proxy). Their output goes to /dev/null (stderr kept with UBG_PROXY_VERBOSE) and they
 * inherit no other descriptor, so even one left behind holds no pipe of the test runner's. */
static pid_t started[8];
static size_t started_count;

static void stop_every_proxy(void) {
    for (size_t i = 0; i < started_count; i++) kill(started[i], SIGTERM);
}

static void spawn_proxy(proxy_process *p, char *const argv[]) {
    CHECK_MSG(access(argv[0], X_OK) == 0, "%s is missing: run `make bootstrap` (it installs the proxies)", argv[0]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    if (!getenv("UBG_PROXY_VERBOSE")) posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    CHECK_MSG(posix_spawn(&p->pid, argv[0], &actions, NULL, argv, environ) == 0, "cannot start %s", argv[0]);
    posix_spawn_file_actions_destroy(&actions);
    CHECK(started_count < sizeof started / sizeof started[0]);
    started[started_count++] = p->pid;
    test_on_failure(stop_every_proxy);
    int64_t deadline = now_ms() + 10000 + slack_ms();
    while (!accepts_connections(p->port) && now_ms() < deadline) sleep_ms(20);
    CHECK_MSG(accepts_connections(p->port), "%s does not listen on port %d", argv[0], p->port);
}

/* tinyproxy in the foreground; `extra` lines go into its configuration (BasicAuth, ConnectPort). */
static void tinyproxy_start(proxy_process *p, const char *extra) {
    memset(p, 0, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "/tmp/ubg-tinyproxy-XXXXXX");
    CHECK(mkdtemp(p->dir) != NULL);
    p->port = free_port();
    char path[128];
    snprintf(path, sizeof path, "%s/tinyproxy.conf", p->dir);
    FILE *conf = fopen(path, "w");
    CHECK(conf != NULL);
    fprintf(conf, "User %s\nPort %d\nListen 127.0.0.1\nTimeout 30\nMaxClients 64\nAllow 127.0.0.1\nLogLevel Critical\n%s\n",
            getuid() == 0 ? "root" : "nobody", p->port, extra);
    fclose(conf);
    char *argv[] = {"/usr/bin/tinyproxy", "-d", "-c", path, NULL};
    spawn_proxy(p, argv);
}

static void microsocks_start(proxy_process *p, const char *user, const char *password) {
    memset(p, 0, sizeof *p);
    p->port = free_port();
    char port[16];
    snprintf(port, sizeof port, "%d", p->port);
    char *argv[] = {"/usr/bin/microsocks", "-i", "127.0.0.1", "-p", port, NULL, NULL, NULL, NULL, NULL};
    if (user) {
        argv[5] = "-u";
        argv[6] = (char *)user;
        argv[7] = "-P";
        argv[8] = (char *)password;
    }
    spawn_proxy(p, argv);
}

static void proxy_stop(proxy_process *p) {
    kill(p->pid, SIGTERM);
    waitpid(p->pid, NULL, 0);
    for (size_t i = 0; i < started_count; i++) {
        if (started[i] == p->pid) started[i--] = started[--started_count];
    }
    if (p->dir[0]) {
        char command[160];
        snprintf(command, sizeof command, "rm -rf %s", p->dir);
        CHECK(system(command) == 0);
    }
}

/* A client through `proxy` (NULL: as the environment says) to `url`: READY, then an event there
 * and its echo back. */
static void reaches_ready_and_echoes(const char *url, const char *ca, const char *proxy) {
    recorder r;
    recorder_init(&r);
    ubg_client_t client = make_client(NULL, url, "dev-key", ca, &r);
    if (proxy) CHECK_OK(ubg_client_set_proxy(client, proxy));
    CHECK_OK(ubg_client_connect(client));
    const recorded_event *ready = wait_event(&r, UBG_EVENT_READY, NULL, 10000 + slack_ms());
    const recorded_event *closed = ready ? NULL : wait_event(&r, UBG_EVENT_CLOSED, NULL, 0);
    CHECK_MSG(ready, "not READY through %s to %s: %s", proxy ? proxy : "the environment's proxy", url,
              closed && closed->message ? closed->message : "(no CLOSED)");
    CHECK_OK(ubg_client_send(client, "through_the_proxy", "{\"n\":7}"));
    const recorded_event *echo = wait_event(&r, UBG_EVENT_DISPATCH, "ECHO", 5000 + slack_ms());
    CHECK_MSG(echo && echo->data && strstr(echo->data, "through_the_proxy"), "no echo through %s", proxy ? proxy : "env");
    CHECK_OK(ubg_client_free(client));
    recorder_destroy(&r);
}

/* A client through `proxy` to `url` is refused: a CLOSED event with UBG_EPROXY (or `result`),
 * a message containing `expected` and never the secret, and a new attempt after it. */
static void refused_with(const char *url, const char *proxy, ubg_result_t result, const char *expected) {
    recorder r;
    recorder_init(&r);
    ubg_client_t client = make_client(NULL, url, "dev-key", NULL, &r);
    if (proxy) CHECK_OK(ubg_client_set_proxy(client, proxy));
    CHECK_OK(ubg_client_connect(client));
    const recorded_event *closed = wait_event(&r, UBG_EVENT_CLOSED, NULL, 10000 + slack_ms());
    CHECK_MSG(closed, "no CLOSED through %s", proxy ? proxy : "the environment's proxy");
    const char *message = closed->message ? closed->message : "";
    CHECK_MSG(closed->result == result && strstr(message, expected),
              "CLOSED %s \"%s\", expected %s with \"%s\"", ubg_result_name(closed->result), message,
              ubg_result_name(result), expected);
    CHECK_MSG(!strstr(message, SECRET), "the proxy password is in the message: %s", message);
    CHECK_MSG(closed->reconnect == 1, "no new attempt after a proxy refusal");
    CHECK_MSG(count_events(&r, UBG_EVENT_READY, NULL) == 0, "READY although the proxy refused");
    CHECK_OK(ubg_client_free(client));
    recorder_destroy(&r);
}

static void test_http_connect_carries_ws_and_wss(void) {
    devserver plain, secure;
    devserver_start(&plain, BASIC);
    devserver_start(&secure, "--tls " BASIC);
    proxy_process tp;
    tinyproxy_start(&tp, "");
    char proxy[128], url[512], tls_url[512];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", tp.port);
    devserver_url(&plain, "v=1", url, sizeof url);
    devserver_url(&secure, "v=1", tls_url, sizeof tls_url);
    reaches_ready_and_echoes(url, NULL, proxy);
    /* wss inside the tunnel: verified against the gateway's name (localhost), not the proxy's. */
    reaches_ready_and_echoes(tls_url, secure.ca, proxy);
    proxy_stop(&tp);
    devserver_stop(&secure);
    devserver_stop(&plain);
}

static void test_http_connect_credentials_and_refusals(void) {
    devserver gw;
    devserver_start(&gw, BASIC);
    char url[512];
    devserver_url(&gw, "v=1", url, sizeof url);
    proxy_process tp;
    tinyproxy_start(&tp, "BasicAuth bot " SECRET);
    char good[160], bad[160], none[160];
    snprintf(good, sizeof good, "http://bot:%s@127.0.0.1:%d", SECRET, tp.port);
    snprintf(bad, sizeof bad, "http://bot:wrong-%s@127.0.0.1:%d", SECRET, tp.port);
    snprintf(none, sizeof none, "http://127.0.0.1:%d", tp.port);
    reaches_ready_and_echoes(url, NULL, good);
    refused_with(url, bad, UBG_EPROXY, "requires authentication: 401 Unauthorized; the ones given were refused");
    refused_with(url, none, UBG_EPROXY, "requires authentication: 407 Proxy Authentication Required (it asks for Basic credentials); none were given");
    proxy_stop(&tp);
    /* A proxy that only tunnels to port 443 refuses the dev gateway's port with its status. */
    tinyproxy_start(&tp, "ConnectPort 443");
    snprintf(none, sizeof none, "http://127.0.0.1:%d", tp.port);
    refused_with(url, none, UBG_EPROXY, "refused the tunnel to 127.0.0.1:");
    proxy_stop(&tp);
    devserver_stop(&gw);
}

static void test_socks5_carries_ws_and_wss(void) {
    devserver plain, secure;
    devserver_start(&plain, BASIC);
    devserver_start(&secure, "--tls " BASIC);
    char url[512], tls_url[512], proxy[160];
    devserver_url(&plain, "v=1", url, sizeof url);
    devserver_url(&secure, "v=1", tls_url, sizeof tls_url);
    proxy_process ms;
    microsocks_start(&ms, NULL, NULL);
    snprintf(proxy, sizeof proxy, "socks5h://127.0.0.1:%d", ms.port);
    reaches_ready_and_echoes(url, NULL, proxy);
    reaches_ready_and_echoes(tls_url, secure.ca, proxy); /* the proxy resolves localhost */
    snprintf(proxy, sizeof proxy, "socks5://127.0.0.1:%d", ms.port);
    reaches_ready_and_echoes(tls_url, secure.ca, proxy); /* this client resolves localhost */
    reaches_ready_and_echoes(url, NULL, proxy);          /* a numeric host needs no lookup */
    proxy_stop(&ms);
    devserver_stop(&secure);
    devserver_stop(&plain);
}

static void test_socks5_credentials_and_refusals(void) {
    devserver gw;
    devserver_start(&gw, BASIC);
    char url[512], proxy[160];
    devserver_url(&gw, "v=1", url, sizeof url);
    proxy_process ms;
    microsocks_start(&ms, "bot", SECRET);
    snprintf(proxy, sizeof proxy, "socks5h://bot:%s@127.0.0.1:%d", SECRET, ms.port);
    reaches_ready_and_echoes(url, NULL, proxy);
    snprintf(proxy, sizeof proxy, "socks5h://bot:wrong-%s@127.0.0.1:%d", SECRET, ms.port);
    refused_with(url, proxy, UBG_EPROXY, "refused the username or password");
    snprintf(proxy, sizeof proxy, "socks5h://127.0.0.1:%d", ms.port);
    refused_with(url, proxy, UBG_EPROXY, "accepts none of the authentication methods offered");
    /* The tunnel's target refuses: the SOCKS reply code by name. */
    char closed_url[128];
    snprintf(closed_url, sizeof closed_url, "ws://127.0.0.1:%d/?v=1", free_port());
    snprintf(proxy, sizeof proxy, "socks5h://bot:%s@127.0.0.1:%d", SECRET, ms.port);
    refused_with(closed_url, proxy, UBG_EPROXY, "refused the tunnel to 127.0.0.1:");
    proxy_stop(&ms);
    devserver_stop(&gw);
}

static void test_the_environment_chooses_unless_told_not_to(void) {
    devserver gw;
    devserver_start(&gw, BASIC);
    char url[512];
    devserver_url(&gw, "v=1", url, sizeof url);
    proxy_process tp;
    tinyproxy_start(&tp, "BasicAuth bot " SECRET);
    char proxy[160];
    /* Wrong credentials in the environment: the refusal proves the proxy was used. (Each test
     * runs in a process of its own: setenv touches no other test.) */
    snprintf(proxy, sizeof proxy, "http://bot:wrong@127.0.0.1:%d", tp.port);
    CHECK(setenv("http_proxy", proxy, 1) == 0);
    refused_with(url, NULL, UBG_EPROXY, "requires authentication: 401");
    snprintf(proxy, sizeof proxy, "http://bot:%s@127.0.0.1:%d", SECRET, tp.port);
    CHECK(setenv("http_proxy", proxy, 1) == 0);
    reaches_ready_and_echoes(url, NULL, NULL);
    /* NO_PROXY sends it direct: the environment's proxy is a dead port, and READY comes. */
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", free_port());
    CHECK(setenv("http_proxy", proxy, 1) == 0);
    CHECK(setenv("NO_PROXY", "localhost, 127.0.0.0/8", 1) == 0);
    reaches_ready_and_echoes(url, NULL, NULL);
    CHECK(unsetenv("NO_PROXY") == 0);
    refused_with(url, NULL, UBG_ECONNECT, "127.0.0.1");
    /* Turned off: direct, whatever the environment says. */
    recorder r;
    recorder_init(&r);
    ubg_client_t client = make_client(NULL, url, "dev-key", NULL, &r);
    CHECK_OK(ubg_client_set_proxy_from_env(client, 0));
    CHECK_RC(ubg_client_set_proxy_from_env(client, 2), UBG_EINVAL);
    CHECK_OK(ubg_client_connect(client));
    CHECK_MSG(wait_event(&r, UBG_EVENT_READY, NULL, 10000 + slack_ms()), "not READY with the environment turned off");
    CHECK_OK(ubg_client_free(client));
    recorder_destroy(&r);
    CHECK(unsetenv("http_proxy") == 0);
    proxy_stop(&tp);
    devserver_stop(&gw);
}

static void test_the_setter_checks_its_url(void) {
    ubg_client_t client = NULL;
    CHECK_OK(ubg_client_create(NULL, "dev-key", &client));
    CHECK_OK(ubg_client_set_proxy(client, "socks5h://user:pa%40ss@proxy.example:1081"));
    CHECK_OK(ubg_client_set_proxy(client, NULL));
    CHECK_OK(ubg_client_set_proxy(client, ""));
    CHECK_OK(ubg_client_set_proxy(client, "https://proxy.example"));
    CHECK_RC(ubg_client_set_proxy(client, "ftp://proxy.example"), UBG_EINVAL);
    CHECK(strstr(ubg_client_last_error(client), "unsupported proxy scheme 'ftp'"));
    CHECK_RC(ubg_client_set_proxy(client, "gopher://user:" SECRET "@proxy.example"), UBG_EINVAL);
    CHECK(!strstr(ubg_client_last_error(client), SECRET));
    CHECK_RC(ubg_client_set_proxy(client, "http://proxy.example:70000"), UBG_EINVAL);
    CHECK_RC(ubg_client_set_proxy(NULL, "http://proxy.example"), UBG_EHANDLE);
    CHECK_OK(ubg_client_free(client));
}

/* stunnel (TLS) in front of `inner` on loopback: an https proxy. Its certificate, for 127.0.0.1,
 * is issued by the CA of `ca_file`'s directory (the dev gateway's), with the dev gateway's
 * certificates module. */
static void stunnel_start(proxy_process *p, int inner_port, const char *ca_file) {
    memset(p, 0, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "/tmp/ubg-stunnel-XXXXXX");
    CHECK(mkdtemp(p->dir) != NULL);
    char ca_dir[512];
    snprintf(ca_dir, sizeof ca_dir, "%s", ca_file);
    char *slash = strrchr(ca_dir, '/');
    CHECK(slash != NULL);
    *slash = 0;
    const char *python = getenv("UBG_PYTHON");
    if (!python) python = ".venv/bin/python3";
    char command[2048];
    snprintf(command, sizeof command,
             "PYTHONPATH=bindings/python %s -c 'import sys, pathlib; from utilbot_gateway.devserver import certificates; "
             "certificates.issue(pathlib.Path(sys.argv[1]), \"https-proxy\", [\"127.0.0.1\", \"localhost\"])' %s",
             python, ca_dir);
    CHECK_MSG(system(command) == 0, "could not issue the proxy's certificate: %s", command);
    p->port = free_port();
    char path[128];
    snprintf(path, sizeof path, "%s/stunnel.conf", p->dir);
    FILE *conf = fopen(path, "w");
    CHECK(conf != NULL);
    fprintf(conf,
            "foreground = yes\npid =\ndebug = 0\n[https-proxy]\naccept = 127.0.0.1:%d\nconnect = 127.0.0.1:%d\n"
            "cert = %s/https-proxy.pem\nkey = %s/https-proxy-key.pem\n",
            p->port, inner_port, ca_dir, ca_dir);
    fclose(conf);
    char *argv[] = {"/usr/bin/stunnel4", path, NULL};
    spawn_proxy(p, argv);
}

static void test_https_proxy_carries_ws_and_wss_inside_its_tls(void) {
    devserver plain, secure;
    devserver_start(&plain, BASIC);
    devserver_start(&secure, "--tls " BASIC);
    char url[512], tls_url[512], proxy[160];
    devserver_url(&plain, "v=1", url, sizeof url);
    devserver_url(&secure, "v=1", tls_url, sizeof tls_url);
    proxy_process tp, st;
    tinyproxy_start(&tp, "BasicAuth bot " SECRET);
    stunnel_start(&st, tp.port, secure.ca);
    snprintf(proxy, sizeof proxy, "https://bot:%s@127.0.0.1:%d", SECRET, st.port);
    /* TLS with the proxy, CONNECT inside it, then TLS with the gateway inside the tunnel. */
    reaches_ready_and_echoes(tls_url, secure.ca, proxy);
    reaches_ready_and_echoes(url, secure.ca, proxy);
    /* The proxy's certificate is checked: without the CA that issued it, no tunnel; and turning
     * the gateway's check off (for a development gateway) does not turn off the proxy's. */
    refused_with(url, proxy, UBG_EPROXY, "certificate verification failed");
    recorder r;
    recorder_init(&r);
    ubg_client_t insecure = make_client(NULL, url, "dev-key", NULL, &r);
    CHECK_OK(ubg_client_set_tls_insecure_skip_verify(insecure, 1));
    CHECK_OK(ubg_client_set_proxy(insecure, proxy));
    CHECK_OK(ubg_client_connect(insecure));
    const recorded_event *closed = wait_event(&r, UBG_EVENT_CLOSED, NULL, 10000 + slack_ms());
    CHECK_MSG(closed && closed->result == UBG_EPROXY && closed->message &&
                  strstr(closed->message, "certificate verification failed"),
              "an unverified https proxy was used: %s", closed && closed->message ? closed->message : "(no CLOSED)");
    CHECK_OK(ubg_client_free(insecure));
    recorder_destroy(&r);
    proxy_stop(&st);
    proxy_stop(&tp);
    devserver_stop(&secure);
    devserver_stop(&plain);
}

/* A hostile proxy: a thread that accepts connections, reads the client's first bytes, writes a
 * canned answer (after `first` when set: the answer to the client's second message), then closes
 * or holds the connection until the client goes. */
typedef struct {
    int listener;
    int port;
    const char *first;
    size_t first_len;
    const char *answer;
    size_t answer_len;
    int close_after;
    pthread_t thread;
} hostile_proxy;

static void *hostile_proxy_run(void *arg) {
    hostile_proxy *h = arg;
    for (;;) {
        int fd = accept(h->listener, NULL, NULL);
        if (fd < 0) return NULL;
        char buffer[4096];
        if (recv(fd, buffer, sizeof buffer, 0) > 0) {
            if (h->first) {
                if (send(fd, h->first, h->first_len, MSG_NOSIGNAL) < 0 || recv(fd, buffer, sizeof buffer, 0) <= 0) {
                    close(fd);
                    continue;
                }
            }
            if (h->answer_len && send(fd, h->answer, h->answer_len, MSG_NOSIGNAL) < 0) {
                close(fd);
                continue;
            }
            if (!h->close_after) {
                while (recv(fd, buffer, sizeof buffer, 0) > 0) {
                }
            }
        }
        close(fd);
    }
}

static void hostile_proxy_start(hostile_proxy *h) {
    h->listener = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(h->listener >= 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(bind(h->listener, (struct sockaddr *)&address, sizeof address) == 0);
    socklen_t length = sizeof address;
    CHECK(getsockname(h->listener, (struct sockaddr *)&address, &length) == 0);
    CHECK(listen(h->listener, 16) == 0);
    h->port = ntohs(address.sin_port);
    CHECK(pthread_create(&h->thread, NULL, hostile_proxy_run, h) == 0);
}

/* One hostile answer: the attempt ends with `result` and a message holding `expected`, within the
 * connect timeout (1.5 s here) and some slack; the client tries again. */
static void hostile_answer(const char *scheme, const char *first, size_t first_len, const char *answer,
                           size_t answer_len, int close_after, ubg_result_t result, const char *expected) {
    hostile_proxy h = {.first = first, .first_len = first_len, .answer = answer, .answer_len = answer_len,
                       .close_after = close_after};
    hostile_proxy_start(&h);
    char proxy[96];
    snprintf(proxy, sizeof proxy, "%s://127.0.0.1:%d", scheme, h.port);
    recorder r;
    recorder_init(&r);
    ubg_client_t client = make_client(NULL, "ws://gateway.invalid:9/?v=1", "dev-key", NULL, &r);
    CHECK_OK(ubg_client_set_proxy(client, proxy));
    CHECK_OK(ubg_client_set_timeouts(client, 1500, 0, 0));
    int64_t started_at = now_ms();
    CHECK_OK(ubg_client_connect(client));
    const recorded_event *closed = wait_event(&r, UBG_EVENT_CLOSED, NULL, 1500 + 5000 + slack_ms());
    CHECK_MSG(closed, "no CLOSED from a hostile %s proxy (%s)", scheme, expected);
    const char *message = closed->message ? closed->message : "";
    CHECK_MSG(closed->result == result && strstr(message, expected), "CLOSED %s \"%s\", expected %s with \"%s\"",
              ubg_result_name(closed->result), message, ubg_result_name(result), expected);
    CHECK_MSG(closed->at_ms - started_at < 1500 + 3000 + slack_ms(), "the attempt took %lld ms",
              (long long)(closed->at_ms - started_at));
    CHECK_MSG(closed->reconnect == 1, "no new attempt after a hostile proxy");
    CHECK_OK(ubg_client_free(client));
    recorder_destroy(&r);
    shutdown(h.listener, SHUT_RDWR);
    close(h.listener);
    pthread_join(h.thread, NULL);
}

static void test_hostile_proxies_give_clear_errors_in_time(void) {
    static const char garbage[] = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
    static const char body[] = "HTTP/1.1 200 Connection established\r\nContent-Length: 5\r\n\r\nhello";
    static const char chunked[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    static const char method_ok[] = {5, 0};
    static const char partial_reply[] = {5, 0, 0, 1, 127};
    static const char http_reply[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
    hostile_answer("http", NULL, 0, garbage, sizeof garbage - 1, 0, UBG_EPROXY, "is not an HTTP proxy");
    hostile_answer("http", NULL, 0, body, sizeof body - 1, 0, UBG_EPROXY, "answered CONNECT with 200 and a body");
    hostile_answer("http", NULL, 0, chunked, sizeof chunked - 1, 0, UBG_EPROXY, "(Transfer-Encoding)");
    hostile_answer("http", NULL, 0, "HTTP/1.1 200", 12, 1, UBG_EPROXY, "closed the connection during its handshake");
    hostile_answer("http", NULL, 0, NULL, 0, 0, UBG_ETIMEOUT, "while opening the tunnel through the proxy");
    hostile_answer("socks5h", NULL, 0, http_reply, sizeof http_reply - 1, 0, UBG_EPROXY, "is not a SOCKS5 proxy");
    hostile_answer("socks5h", method_ok, sizeof method_ok, partial_reply, sizeof partial_reply, 0, UBG_ETIMEOUT, "while opening the tunnel through the proxy");
    hostile_answer("socks5h", method_ok, sizeof method_ok, partial_reply, sizeof partial_reply, 1, UBG_EPROXY,
                   "closed the connection during its handshake");
    hostile_answer("socks5h", NULL, 0, NULL, 0, 0, UBG_ETIMEOUT, "while opening the tunnel through the proxy");
}

const test_case proxy_tests[] = {
    {"proxy: the setter checks its URL", test_the_setter_checks_its_url, 30},
    {"proxy: HTTP CONNECT (tinyproxy) carries ws and wss", test_http_connect_carries_ws_and_wss, 60},
    {"proxy: HTTP CONNECT credentials and refusals", test_http_connect_credentials_and_refusals, 60},
    {"proxy: SOCKS5 (microsocks) carries ws and wss, socks5 and socks5h", test_socks5_carries_ws_and_wss, 60},
    {"proxy: https (stunnel and tinyproxy) carries ws and wss inside its TLS",
     test_https_proxy_carries_ws_and_wss_inside_its_tls, 60},
    {"proxy: SOCKS5 credentials and refusals", test_socks5_credentials_and_refusals, 60},
    {"proxy: the environment chooses, NO_PROXY bypasses, and it can be turned off",
     test_the_environment_chooses_unless_told_not_to, 60},
    {"proxy: hostile proxies give clear errors in time", test_hostile_proxies_give_clear_errors_in_time, 120},
};
const size_t proxy_test_count = sizeof proxy_tests / sizeof proxy_tests[0];
