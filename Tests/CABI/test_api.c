/* The C API without a server: argument checks, handle checks, names and codes. */
#include <string.h>

#include "harness.h"

static void ignore_event(ubg_client_t client, const ubg_event_t *event, void *user_data) {
    (void)client;
    (void)event;
    (void)user_data;
}

static void test_version_and_names(void) {
    /* The header's macros are the one place the version is written; the library agrees. */
    char numbers[32];
    snprintf(numbers, sizeof numbers, "%d.%d.%d", UBG_VERSION_MAJOR, UBG_VERSION_MINOR, UBG_VERSION_PATCH);
    CHECK(strcmp(numbers, UBG_VERSION_STRING) == 0);
    CHECK(strcmp(ubg_version(), UBG_VERSION_STRING) == 0);
    CHECK(UBG_VERSION_NUMBER == ((UBG_VERSION_MAJOR << 16) | (UBG_VERSION_MINOR << 8) | UBG_VERSION_PATCH));
    CHECK(strcmp(ubg_result_name(UBG_OK), "UBG_OK") == 0);
    CHECK(strcmp(ubg_result_name(UBG_EHANDLE), "UBG_EHANDLE") == 0);
    CHECK(strcmp(ubg_result_name((ubg_result_t)999), "UBG_UNKNOWN") == 0);
    CHECK(strcmp(ubg_result_string(UBG_EJSON), "invalid JSON") == 0);
    CHECK(strcmp(ubg_close_code_name(4001), "Wrong Auth Key") == 0);
    CHECK(strcmp(ubg_close_code_name(4006), "No Heartbeat") == 0);
    CHECK(ubg_close_code_name(4999) == NULL);
    CHECK(ubg_close_code_is_fatal(4000) && ubg_close_code_is_fatal(4001) && ubg_close_code_is_fatal(4007));
    CHECK(!ubg_close_code_is_fatal(4006) && !ubg_close_code_is_fatal(1000) && !ubg_close_code_is_fatal(-5));
    CHECK(strcmp(ubg_state_name(UBG_STATE_READY), "READY") == 0);
    CHECK(strcmp(ubg_state_name((ubg_state_t)42), "UNKNOWN") == 0);
}

/* The C enum and the Swift table of codes (ErrorCode.swift) must agree, number for name. */
static void test_result_enum_matches_the_library_table(void) {
#define NAMED(code) {code, #code}
    static const struct { ubg_result_t code; const char *name; } codes[] = {
        NAMED(UBG_OK), NAMED(UBG_EINVAL), NAMED(UBG_ESTATE), NAMED(UBG_ERESOLVE),
        NAMED(UBG_ECONNECT), NAMED(UBG_ETIMEOUT), NAMED(UBG_ETLS), NAMED(UBG_EHANDSHAKE), NAMED(UBG_EPROTOCOL),
        NAMED(UBG_ETOOLARGE), NAMED(UBG_EUTF8), NAMED(UBG_EJSON), NAMED(UBG_EDECOMPRESS), NAMED(UBG_ECLOSED),
        NAMED(UBG_EIO), NAMED(UBG_EQUEUEFULL), NAMED(UBG_EREFUSED), NAMED(UBG_EHANDLE), NAMED(UBG_EPROXY),
    };
#undef NAMED
    size_t known = 0;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        CHECK_MSG(strcmp(ubg_result_name(codes[i].code), codes[i].name) == 0, "%s is %s in the library",
                  codes[i].name, ubg_result_name(codes[i].code));
        CHECK(strcmp(ubg_result_string(codes[i].code), "unknown result code") != 0);
    }
    for (int value = 0; value < 64; value++)
        known += strcmp(ubg_result_name((ubg_result_t)value), "UBG_UNKNOWN") != 0;
    CHECK_MSG(known == sizeof codes / sizeof codes[0], "the library has %zu codes, the header %zu", known,
              sizeof codes / sizeof codes[0]);
}

static void test_null_and_freed_handles_are_errors_not_crashes(void) {
    ubg_client_t client = NULL;
    CHECK_RC(ubg_client_create(NULL, NULL, &client), UBG_EINVAL);
    CHECK_RC(ubg_client_create(NULL, "", &client), UBG_EINVAL);
    CHECK_RC(ubg_client_create(NULL, "k", NULL), UBG_EINVAL);
    CHECK_RC(ubg_client_create((ubg_loop_t)(uintptr_t)0xdead0, "k", &client), UBG_EHANDLE);
    CHECK_RC(ubg_client_connect(NULL), UBG_EHANDLE);
    CHECK_RC(ubg_client_send(NULL, "x", NULL), UBG_EHANDLE);
    CHECK_RC(ubg_client_free(NULL), UBG_OK);
    CHECK(strstr(ubg_client_last_error(NULL), "handle") != NULL);

    CHECK_OK(ubg_client_create(NULL, "key", &client));
    CHECK_OK(ubg_client_free(client));
    /* Use after free and double free are detected. */
    CHECK_RC(ubg_client_free(client), UBG_EHANDLE);
    CHECK_RC(ubg_client_connect(client), UBG_EHANDLE);
    CHECK_RC(ubg_client_set_url(client, "ws://x/"), UBG_EHANDLE);
    ubg_state_t state;
    CHECK_RC(ubg_client_get_state(client, &state), UBG_EHANDLE);
    CHECK_RC(ubg_client_get_state((ubg_client_t)(uintptr_t)1, &state), UBG_EHANDLE);
}

static void test_bad_arguments_say_why(void) {
    ubg_client_t client = NULL;
    CHECK_OK(ubg_client_create(NULL, "key", &client));
    CHECK_RC(ubg_client_set_url(client, NULL), UBG_EINVAL);
    CHECK_RC(ubg_client_set_url(client, "http://example.com/"), UBG_EINVAL);
    CHECK(strstr(ubg_client_last_error(client), "scheme") != NULL);
    CHECK_RC(ubg_client_set_url(client, "ws://h/?compression=gzip"), UBG_EINVAL);
    CHECK_RC(ubg_client_set_compression(client, 2), UBG_EINVAL);
    CHECK_RC(ubg_client_set_tls_insecure_skip_verify(client, -1), UBG_EINVAL);
    CHECK_RC(ubg_client_set_reconnect(client, 0, 10), UBG_EINVAL);
    CHECK_RC(ubg_client_set_reconnect(client, 100, 10), UBG_EINVAL);
    CHECK_RC(ubg_client_set_limits(client, 10, 0, 0), UBG_EINVAL);
    CHECK_RC(ubg_client_set_log_level(client, (ubg_log_level_t)9), UBG_EINVAL);
    CHECK_RC(ubg_client_set_identity(client, "", NULL), UBG_EINVAL);
    CHECK_RC(ubg_client_set_url(client, "ws://h/\xff"), UBG_EINVAL);
    /* Calls in the wrong state. */
    CHECK_RC(ubg_client_send(client, "x", NULL), UBG_ESTATE);
    CHECK_RC(ubg_client_close(client, 1000), UBG_ESTATE);
    CHECK_RC(ubg_client_close(client, 1005), UBG_EINVAL);
    ubg_stats_t stats;
    stats.size = 0;
    CHECK_RC(ubg_client_get_stats(client, &stats), UBG_EINVAL);
    CHECK_RC(ubg_client_get_stats(client, NULL), UBG_EINVAL);
    stats.size = sizeof stats;
    CHECK_OK(ubg_client_get_stats(client, &stats));
    CHECK(stats.state == UBG_STATE_IDLE && stats.last_latency_us == -1 && stats.size == sizeof stats);
    ubg_event_t event;
    event.size = sizeof event;
    CHECK_RC(ubg_client_next_event(client, 0, &event), UBG_ETIMEOUT);
    CHECK_RC(ubg_client_next_event(client, 0, NULL), UBG_EINVAL);
    ubg_event_t batch[4];
    batch[0].size = sizeof batch[0];
    size_t count = 7;
    CHECK_RC(ubg_client_next_events(client, 0, batch, 4, &count), UBG_ETIMEOUT);
    CHECK(count == 0);
    CHECK_RC(ubg_client_next_events(client, 0, batch, 4, NULL), UBG_EINVAL);
    CHECK_RC(ubg_client_next_events(client, 0, NULL, 4, &count), UBG_EINVAL);
    CHECK_RC(ubg_client_next_events(client, 0, batch, 0, &count), UBG_EINVAL);
    CHECK(strstr(ubg_client_last_error(client), "capacity"));
    batch[0].size = 0;
    CHECK_RC(ubg_client_next_events(client, 0, batch, 4, &count), UBG_EINVAL);
    batch[0].size = 1u << 20; /* garbage: the stride would write far past the array */
    CHECK_RC(ubg_client_next_events(client, 0, batch, 4, &count), UBG_EINVAL);
    batch[0].size = sizeof batch[0];
    ubg_client_t with_callback = NULL;
    CHECK_OK(ubg_client_create(NULL, "key", &with_callback));
    CHECK_OK(ubg_client_set_event_callback(with_callback, ignore_event, NULL));
    CHECK_RC(ubg_client_next_events(with_callback, 0, batch, 4, &count), UBG_ESTATE);
    CHECK_OK(ubg_client_free(with_callback));
    int fd = -1;
    CHECK_OK(ubg_client_get_event_fd(client, &fd));
    CHECK(fd >= 0);
    CHECK_OK(ubg_client_free(client));
}

static void test_send_validates_json_and_names(void) {
    ubg_client_t client = NULL;
    CHECK_OK(ubg_client_create(NULL, "key", &client));
    CHECK_OK(ubg_client_set_url(client, "ws://127.0.0.1:1/"));
    CHECK_OK(ubg_client_connect(client));
    CHECK_RC(ubg_client_connect(client), UBG_ESTATE);
    CHECK_RC(ubg_client_set_url(client, "ws://127.0.0.1:2/"), UBG_ESTATE);
    CHECK_RC(ubg_client_send(client, "send_servers", "{\"guilds\": 3,}"), UBG_EJSON);
    CHECK(strstr(ubg_client_last_error(client), "invalid JSON at byte") != NULL);
    CHECK_RC(ubg_client_send(client, "identify", "{}"), UBG_EINVAL);
    CHECK_RC(ubg_client_send(client, "", "{}"), UBG_EINVAL);
    CHECK_RC(ubg_client_send(client, NULL, "{}"), UBG_EINVAL);
    CHECK_OK(ubg_client_send(client, "send_servers", "{\"guilds\": 3}"));
    CHECK_OK(ubg_client_send(client, "no_data", NULL));
    CHECK_OK(ubg_client_free(client));
}

static void test_loops_are_created_and_freed(void) {
    ubg_loop_t loop = NULL;
    CHECK_RC(ubg_loop_create(NULL), UBG_EINVAL);
    CHECK_OK(ubg_loop_create(&loop));
    ubg_client_t client = NULL;
    CHECK_OK(ubg_client_create(loop, "key", &client));
    CHECK_RC(ubg_loop_free(loop), UBG_ESTATE);
    CHECK_OK(ubg_client_free(client));
    CHECK_OK(ubg_loop_free(loop));
    CHECK_RC(ubg_loop_free(loop), UBG_EHANDLE);
    CHECK_OK(ubg_loop_free(NULL));
}

const test_case api_tests[] = {
    {"api: version and names", test_version_and_names, 10},
    {"api: result enum matches the library's table", test_result_enum_matches_the_library_table, 10},
    {"api: NULL and freed handles", test_null_and_freed_handles_are_errors_not_crashes, 10},
    {"api: bad arguments say why", test_bad_arguments_say_why, 10},
    {"api: send validates JSON and names", test_send_validates_json_and_names, 10},
    {"api: loops", test_loops_are_created_and_freed, 10},
};
const size_t api_test_count = sizeof api_tests / sizeof api_tests[0];
