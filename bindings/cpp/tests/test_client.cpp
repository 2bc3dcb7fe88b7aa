// The C++ wrapper (bindings/cpp) against the dev gateway: pull and callback modes, errors as
// exceptions with their codes, move-only handles, a fatal refusal, wss with the dev CA and zlib.
// Run from the repository root (make test-cpp); the dev gateway is started per test.
#include <utilbot/gateway.hpp>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

extern char **environ;

using namespace std::chrono_literals;

namespace {

int failures = 0;

#define EXPECT(condition)                                                                           \
    do {                                                                                            \
        if (!(condition)) {                                                                         \
            std::cerr << "  FAIL " << __FILE__ << ":" << __LINE__ << ": " #condition "\n";          \
            ++failures;                                                                             \
        }                                                                                           \
    } while (0)

/// The dev gateway as a child process: it exits when its stdin (our pipe) closes.
class DevGateway {
public:
    explicit DevGateway(const std::string &flags) {
        const char *python = std::getenv("UBG_PYTHON");
        std::string command = std::string("PYTHONPATH=bindings/python exec ") + (python ? python : ".venv/bin/python3") +
                              " -m utilbot_gateway.devserver --heartbeat 200 --heartbeat-grace 2000 --key dev-key " + flags;
        int to_child[2], from_child[2];
        if (pipe(to_child) != 0 || pipe(from_child) != 0) throw std::runtime_error("pipe");
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, to_child[0], 0);
        posix_spawn_file_actions_adddup2(&actions, from_child[1], 1);
        posix_spawn_file_actions_addclose(&actions, to_child[1]);
        posix_spawn_file_actions_addclose(&actions, from_child[0]);
        std::vector<char *> argv = {const_cast<char *>("/bin/sh"), const_cast<char *>("-c"), command.data(), nullptr};
        if (posix_spawn(&pid_, "/bin/sh", &actions, nullptr, argv.data(), environ) != 0)
            throw std::runtime_error("cannot start the dev gateway");
        posix_spawn_file_actions_destroy(&actions);
        close(to_child[0]);
        close(from_child[1]);
        input_ = to_child[1];
        FILE *out = fdopen(from_child[0], "r");
        char line[2048];
        if (!fgets(line, sizeof line, out)) throw std::runtime_error("the dev gateway printed nothing");
        fclose(out);
        url_ = field(line, "url");
        ca_ = field(line, "ca");
    }
    ~DevGateway() {
        close(input_);
        waitpid(pid_, nullptr, 0);
    }
    std::string url(const std::string &query = "v=1") const { return url_ + "?" + query; }
    const std::string &ca() const { return ca_; }

private:
    static std::string field(const std::string &json, const std::string &key) {
        auto at = json.find("\"" + key + "\": \"");
        if (at == std::string::npos) return "";
        at += key.size() + 5;
        return json.substr(at, json.find('"', at) - at);
    }
    pid_t pid_ = -1;
    int input_ = -1;
    std::string url_, ca_;
};

/// Pulls until an event of `type` (and `name`) comes, or `timeout` passes.
std::optional<utilbot::Event> wait_for(utilbot::Client &client, utilbot::EventType type, std::string_view name = {},
                                       std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        auto event = client.next_event(200ms);
        if (event && event->type == type && (name.empty() || event->name == name)) return event;
        if (client.finished()) break;
    }
    return std::nullopt;
}

void handles_are_move_only_and_errors_carry_their_codes() {
    static_assert(!std::is_copy_constructible_v<utilbot::Client>);
    static_assert(std::is_nothrow_move_constructible_v<utilbot::Client>);
    static_assert(!std::is_copy_constructible_v<utilbot::Loop>);
    EXPECT(utilbot::version() == UBG_VERSION_STRING);
    utilbot::Client client("dev-key");
    try {
        client.url("http://not-a-websocket-url/");
        EXPECT(false);
    } catch (const utilbot::Error &error) {
        EXPECT(error.code() == UBG_EINVAL);
        EXPECT(std::string(error.name()) == "UBG_EINVAL");
        EXPECT(std::string(error.what()).find("UBG_EINVAL: ") == 0);
    }
    try {
        client.send("x", "{}");
        EXPECT(false);
    } catch (const utilbot::Error &error) {
        EXPECT(error.code() == UBG_ESTATE); // not connected yet
    }
    utilbot::Client moved(std::move(client));
    EXPECT(moved.get() != nullptr);
    EXPECT(client.get() == nullptr); // NOLINT(bugprone-use-after-move): checking the moved-from state
    EXPECT(moved.state() == utilbot::State::idle);
    try {
        utilbot::Client empty("");
        EXPECT(false);
    } catch (const utilbot::Error &error) {
        EXPECT(error.code() == UBG_EINVAL);
    }
}

void pull_mode_identifies_sends_and_closes() {
    DevGateway gateway("");
    utilbot::Client client("dev-key");
    client.url(gateway.url()).reconnect(50ms, 400ms);
    client.connect();
    EXPECT(wait_for(client, utilbot::EventType::ready).has_value());
    EXPECT(client.state() == utilbot::State::ready);
    try {
        client.send("x", "{not json");
        EXPECT(false);
    } catch (const utilbot::Error &error) {
        EXPECT(error.code() == UBG_EJSON);
        EXPECT(std::string(error.what()).find("invalid JSON at byte") != std::string::npos);
    }
    client.send("send_servers", R"({"guilds":3,"guildMembers":30,"cachedGuildMembers":10})");
    auto count = wait_for(client, utilbot::EventType::dispatch, "GLOBAL_GUILD_COUNT");
    EXPECT(count && count->data.find("\"guilds\":3") != std::string_view::npos);
    client.close(1000);
    auto closed = wait_for(client, utilbot::EventType::closed);
    EXPECT(closed && closed->code == 1000 && !closed->reconnect);
    while (client.next_event(1s)) {
    }
    EXPECT(client.finished());
    EXPECT(client.state() == utilbot::State::closed);
    EXPECT(client.stats().messages_out >= 3);
}

void callbacks_run_a_std_function_on_a_loop_of_its_own() {
    DevGateway gateway("--tls");
    utilbot::Loop loop;
    utilbot::Client client("dev-key", &loop);
    std::mutex lock;
    std::condition_variable changed;
    std::vector<std::string> names;
    bool done = false;
    client.url(gateway.url("v=1&compression=zlib")).tls_ca(gateway.ca()).reconnect(50ms, 400ms);
    client.on_event([&](const utilbot::Event &event) {
        std::lock_guard<std::mutex> guard(lock);
        if (event.type == utilbot::EventType::ready) {
            // Calling the client from its own callback is allowed.
            client.send("send_servers", R"({"guilds":7,"guildMembers":70,"cachedGuildMembers":1})");
        } else if (event.type == utilbot::EventType::dispatch) {
            names.emplace_back(event.name); // copied: the view dies with the callback
            if (event.name == "GLOBAL_GUILD_COUNT") client.close(1000);
        } else if (event.type == utilbot::EventType::state && event.state == utilbot::State::closed) {
            done = true;
            changed.notify_all();
        }
    });
    client.connect();
    std::unique_lock<std::mutex> guard(lock);
    EXPECT(changed.wait_for(guard, 15s, [&] { return done; }));
    EXPECT(names.size() >= 2 && names.front() == "bot_connect_success" && names.back() == "GLOBAL_GUILD_COUNT");
}

void a_wrong_key_is_fatal() {
    DevGateway gateway("");
    utilbot::Client client("wrong-key");
    client.url(gateway.url()).reconnect(50ms, 400ms);
    client.connect();
    auto fatal = wait_for(client, utilbot::EventType::fatal);
    EXPECT(fatal && fatal->code == 4001);
    EXPECT(client.state() == utilbot::State::failed);
}

} // namespace

int main() {
    struct {
        const char *name;
        void (*run)();
    } tests[] = {
        {"handles are move-only and errors carry their codes", handles_are_move_only_and_errors_carry_their_codes},
        {"pull mode identifies, sends and closes", pull_mode_identifies_sends_and_closes},
        {"callbacks run a std::function on a loop of its own (wss, zlib)", callbacks_run_a_std_function_on_a_loop_of_its_own},
        {"a wrong key is fatal", a_wrong_key_is_fatal},
    };
    for (const auto &test : tests) {
        int before = failures;
        try {
            test.run();
        } catch (const std::exception &error) {
            std::cerr << "  FAIL: exception: " << error.what() << "\n";
            ++failures;
        }
        std::cout << (failures == before ? "ok   " : "FAIL ") << "c++: " << test.name << "\n";
    }
    std::cout << (failures ? "c++ tests failed\n" : "c++ tests passed\n");
    return failures ? 1 : 0;
}
